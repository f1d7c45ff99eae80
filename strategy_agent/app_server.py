"""``python -m strategy_agent app``: the runner first, then Streamlit's server, one process.

Strategies marked running resume as soon as the process starts, before any
browser connects, so a headless server that restarts keeps trading. The web
server runs in this same process and its pages get this process's runner
(``ui_runtime.get_runtime``). When the server stops (Ctrl+C, SIGTERM) the
threads stop after their current cycle and give their leases back, their
stored status left ``running`` so the next start resumes them.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strategy_agent.ui_runtime import AppRuntime

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"


def streamlit_args(host: str, port: int) -> list[str]:
    """``streamlit run`` arguments: headless, on ``host:port``, no file watcher.

    Without a watcher an edited module is never reloaded under the running
    threads (a reload would forget the process runner and start a second one).
    """
    return [
        "run",
        str(APP_SCRIPT),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
    ]


def serve(*, host: str, port: int, db: Path | None = None) -> int:
    """Resume what was running, then serve the app until the server is stopped."""
    from streamlit.web import cli as streamlit_cli

    from strategy_agent import ui_runtime

    if db is not None:
        os.environ[ui_runtime.DB_ENV] = str(db)
    # until Streamlit installs its own handler, SIGTERM still hands the leases back
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        _announce(ui_runtime.start_process_runtime())
        streamlit_cli.main.main(
            args=streamlit_args(host, port), prog_name="streamlit", standalone_mode=False
        )
    finally:
        ui_runtime.stop_process_runtime()
    return 0


def _announce(runtime: AppRuntime) -> None:
    if runtime.resume_error:
        print(f"warning: could not resume strategies: {runtime.resume_error}", flush=True)
    resumed = ", ".join(runtime.resumed) or "none"
    print(f"database {runtime.db_path}; resumed: {resumed}", flush=True)
    waiting = runtime.runner.waiting_ids()
    if waiting:
        print(
            f"waiting for the lease of {', '.join(waiting)} (its last owner may have died; "
            f"it resumes once that lease is stale)",
            flush=True,
        )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)

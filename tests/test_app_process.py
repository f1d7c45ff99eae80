"""``python -m strategy_agent app``: running strategies resume when the process starts.

No browser connects in these tests: cycles must advance on their own, and keep
advancing, each cycle once, after the process is killed and started again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from strategy_agent.app_server import streamlit_args
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.leases import lease_holder
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.gated_policy import assert_each_cycle_once, wait_for

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_app(db: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "STRATEGY_AGENT_DB": str(db),
        "STRATEGY_AGENT_STEP_DELAY_S": "0.05",
        "STRATEGY_AGENT_LEASE_STALE_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "strategy_agent", "app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def cycles(db: Path, sid: str) -> int:
    with SqliteStore(db) as store:
        return store.cycle_count(sid)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_running_strategies_resume_when_the_process_starts(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with SqliteStore(db) as store:
        running = store.create_strategy(UserRequest(), now_ms=1)
        paused = store.create_strategy(UserRequest(), now_ms=2)
        store.set_status(running, "running", None, 3)
        store.set_status(paused, "paused", None, 3)
    port = free_port()
    app = start_app(db, port)
    try:
        wait_for(lambda: cycles(db, running) >= 3, timeout_s=20)  # no browser needed
        wait_for(lambda: healthy(port), timeout_s=10)  # and the pages are served
        app.kill()  # a crash: no chance to hand the lease back
        app.wait(10)
        before = cycles(db, running)
        port = free_port()
        app = start_app(db, port)
        wait_for(lambda: cycles(db, running) >= before + 3, timeout_s=20)
        wait_for(lambda: healthy(port), timeout_s=10)
        app.send_signal(signal.SIGTERM)  # a clean stop hands the lease back at once
        app.wait(15)
    finally:
        if app.poll() is None:
            app.kill()
    with SqliteStore(db) as store:
        assert store.get_strategy(running).status == "running"  # resumes on the next start
        assert lease_holder(store, running) is None
        assert store.cycle_count(paused) == 0
    assert_each_cycle_once(db, running)


def test_streamlit_is_served_headless_on_the_given_address() -> None:
    args = streamlit_args("127.0.0.1", 8501)
    assert args[:2] == ["run", str(ROOT / "app.py")]
    assert "--server.headless=true" in args
    assert "--server.address=127.0.0.1" in args and "--server.port=8501" in args

"""The README's offline LLM demo runs from the app's own environment (no test tools in it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_fake_llm_server_starts_without_pytest_installed() -> None:
    # `make run` installs the runtime requirements only: pytest must not be needed
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['hypothesis'] = None\n"
        "from tests.fakes.fake_llm_server import FakeLlmServer\n"
        "server = FakeLlmServer().start(); print(server.api_base); server.stop()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://127.0.0.1:")

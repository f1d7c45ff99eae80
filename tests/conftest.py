"""Test-wide guards: no real network, litellm offline, fresh temp databases."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.fakes.fake_llm_server import FakeLlmServer

# CI explores the same examples every run (a red CI is always reproducible);
# local runs keep drawing new ones, so they keep finding new bugs.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# the fake Binance's ``fake_exchange`` fixture, for every test
pytest_plugins = ["tests.fakes.fake_exchange"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _allowed(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    if isinstance(address, tuple) and address:
        return str(address[0]) in _LOOPBACK
    return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may not reach the network (tried {address!r})")
    _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    """A fresh database file path per test."""
    yield tmp_path / "strategy_agent.db"


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    """A started fake LLM server, stopped after the test (JSON-mode refusals forgotten)."""
    from strategy_agent.decision.llm_transport import forget_format_refusals

    forget_format_refusals()
    server = FakeLlmServer().start()
    try:
        yield server
    finally:
        server.stop()

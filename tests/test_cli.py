"""The command line as a user runs it: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from strategy_agent.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_run_then_report_json_reconciles(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--cycles", "40", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    cycle_lines = [line for line in out.splitlines() if line.startswith("#")]
    assert len(cycle_lines) == 40 and "equity" in cycle_lines[0]
    assert "summary: equity" in out and "resume with:" in out

    assert main(["report", "--db", str(db_path), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["cycles"] == 40 and report["failed_cycles"] == 0
    assert report["reconciled"] is True
    assert report["status"] == "paused"
    assert report["fills"] >= 1
    expected = (
        report["initial_capital"]
        + report["realized_pnl"]
        + report["unrealized_pnl"]
        - report["fees_paid"]
    )
    assert report["equity"] == pytest.approx(expected, rel=1e-9)


def test_resume_continues_numbering(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["run", "--cycles", "5", "--db", str(db_path), "--quiet"])
    (report,) = _reports(db_path, capsys)
    main(["run", "--resume", report["strategy_id"], "--cycles", "3", "--db", str(db_path)])
    out = capsys.readouterr().out
    assert "starting at cycle 6" in out and "#00008" in out
    (after,) = _reports(db_path, capsys)
    assert after["cycles"] == 8


def test_text_report_and_empty_states(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(db_path)]) == 2
    assert "run a strategy first" in capsys.readouterr().err
    main(["run", "--cycles", "3", "--db", str(db_path), "--quiet"])
    capsys.readouterr()
    assert main(["report", "--db", str(db_path)]) == 0
    assert "Demo strategy" in capsys.readouterr().out


def test_config_file_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "x.db")
    assert (
        main(
            ["run", "--config", str(ROOT / "examples/rsi_margin.toml"), "--cycles", "3", "--db", db]
        )
        == 0
    )
    assert "RSI reversion 2x" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[trading]\nsymbols = []\n[llm]\napi_key = "sk-abc"\n')
    assert main(["run", "--config", str(bad), "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "api_key_env" in err and "sk-abc" not in err
    assert main(["run", "--resume", "nope", "--db", db]) == 2
    assert "nope" in capsys.readouterr().err


def test_unknown_builtin_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm]\nprovider = "builtin"\nmodel_id = "moon"\n')
    assert main(["run", "--config", str(cfg), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "moon" in err and "ema_crossover" in err


def test_module_entry_point_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "strategy_agent",
            "run",
            "--config",
            str(tmp_path / "missing.toml"),
            "--db",
            str(tmp_path / "x.db"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "config file not found" in proc.stderr and "Traceback" not in proc.stderr


def _reports(db_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    main(["report", "--db", str(db_path), "--json"])
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_llm_strategy_from_example_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/openai_compatible.toml drives decisions through the fake LLM over HTTP."""
    from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

    server = FakeLlmServer(auto_reply=rsi_plan).start()
    try:
        text = (ROOT / "examples/openai_compatible.toml").read_text()
        config = tmp_path / "llm.toml"
        config.write_text(text.replace("http://127.0.0.1:8765/v1", server.api_base))
        db = tmp_path / "llm.db"
        assert main(["run", "--config", str(config), "--cycles", "5", "--db", str(db)]) == 0
        assert len(server.requests) == 5
        first = server.requests[0].body
        assert first["model"] == "demo-model"
        assert "BTC/USDT" in first["messages"][-1]["content"]
        capsys.readouterr()
        main(["report", "--db", str(db), "--json"])
        (report,) = json.loads(capsys.readouterr().out)
        assert report["model"] == "openai/demo-model" and report["reconciled"]
        assert report["cycles"] == 5
    finally:
        server.stop()


def test_resume_refuses_a_strategy_someone_else_runs(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live lease is refused with who holds it; "running" alone (a crash) is not."""
    import time

    from strategy_agent.trading_history.leases import acquire_lease, release_lease
    from strategy_agent.trading_history.store import SqliteStore

    main(["run", "--cycles", "2", "--db", str(db_path), "--quiet"])
    (report,) = _reports(db_path, capsys)
    sid = report["strategy_id"]
    owner = "app pid 4242 on trading-box (auto-run #1)"
    with SqliteStore(db_path) as store:
        store.set_status(sid, "running", None, now_ms=1)
        acquire_lease(store, sid, owner, int(time.time() * 1000), 30_000)
    assert main(["run", "--resume", sid, "--cycles", "1", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "app pid 4242 on trading-box" in err and "auto-run" in err  # who, and doing what
    assert "Traceback" not in err
    with SqliteStore(db_path) as store:
        release_lease(store, sid, owner)  # the app paused it, or died long ago
    assert main(["run", "--resume", sid, "--cycles", "1", "--db", str(db_path)]) == 0
    (after,) = _reports(db_path, capsys)
    assert after["cycles"] == 3 and after["status"] == "paused"


def test_a_stopped_strategy_cannot_be_resumed(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from strategy_agent.trading_history.store import SqliteStore

    main(["run", "--cycles", "2", "--db", str(db_path), "--quiet"])
    (report,) = _reports(db_path, capsys)
    with SqliteStore(db_path) as store:
        store.set_status(report["strategy_id"], "stopped", None, now_ms=1)
    args = ["run", "--resume", report["strategy_id"], "--cycles", "1", "--db", str(db_path)]
    assert main(args) == 2
    assert "has ended" in capsys.readouterr().err
    (after,) = _reports(db_path, capsys)
    assert after["cycles"] == 2


def test_unrunnable_config_is_refused_before_anything_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from strategy_agent.trading_history.store import SqliteStore

    cfg = tmp_path / "live.toml"
    cfg.write_text('[exchange]\nexchange_id = "simulated"\ntrading_mode = "testnet"\n')
    db = tmp_path / "x.db"
    assert main(["run", "--config", str(cfg), "--db", str(db)]) == 2
    assert "paper only" in capsys.readouterr().err
    with SqliteStore(db) as store:
        assert store.list_strategies() == []

"""The backtest CLI's refusals a new user meets: a window outside the data, a file given
for a symbol no config trades. One line each, what is wrong and what to use, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.cli import main
from tests.backtest.helpers import SMALL_CSV, builtin_config, write_gapped_csv


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["backtest", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("from_day", "to_day"), [("2023-06-01", "2023-06-07"), ("2025-01-01", "2025-01-02")]
)
def test_a_window_before_the_simulated_data_names_the_first_decision(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str], from_day: str, to_day: str
) -> None:
    config = builtin_config(tmp_path / "a.toml", "EMA")  # 1h, lookback 48
    err = refusal(
        capsys, "--config", str(config), "--from", from_day, "--to", to_day, "--db", str(db_path)
    )
    assert (
        "the window ends before the first decision possible, 2025-01-03 00:00 UTC (after a full "
        "lookback of 48 candles from the data's first candle, 2025-01-01 00:00): "
        "use --to 2025-01-03 or later"
    ) in err
    assert "to 2025-01-01 00:00" not in err  # no range that ends before it starts


def test_a_window_after_the_csv_data_names_the_last_decision(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = builtin_config(tmp_path / "a.toml", "EMA")
    err = refusal(
        capsys, "--config", str(config), "--from", "2025-02-01", "--to", "2025-02-03",
        "--data", f"csv:{SMALL_CSV}", "--db", str(db_path),
    )  # fmt: skip
    assert (
        "decisions are possible from 2025-01-03 00:00 to 2025-01-10 23:00 UTC (the data's "
        "last candle): the window starts after the last: use --from 2025-01-10 or earlier"
    ) in err


def test_data_shorter_than_a_lookback_says_so(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = builtin_config(tmp_path / "a.toml", "EMA")
    short = write_gapped_csv(tmp_path / "short.csv", bars=30)
    err = refusal(
        capsys, "--config", str(config), "--from", "2025-01-01", "--to", "2025-01-09",
        "--data", f"csv:{short}", "--db", str(db_path),
    )  # fmt: skip
    assert (
        "30 candles from 2025-01-01 00:00 to 2025-01-02 05:00 UTC, fewer than a full lookback "
        "of 48 plus one to decide on: use more data or a smaller lookback"
    ) in err


def test_a_file_for_a_symbol_no_config_trades_names_both_symbols(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = builtin_config(tmp_path / "a.toml", "EMA")  # BTC/USDT
    err = refusal(
        capsys, "--config", str(config), "--from", "2025-01-03", "--to", "2025-01-05",
        "--data", f"csv:XRP/USDT={SMALL_CSV}", "--db", str(db_path),
    )  # fmt: skip
    assert (
        f"--data csv:XRP/USDT={SMALL_CSV}: a file is given for XRP/USDT, which no config "
        f"trades, and none for BTC/USDT: write csv:BTC/USDT=FILE"
    ) in err


def test_a_window_between_two_candle_opens_says_to_widen_it(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = builtin_config(tmp_path / "a.toml", "EMA")
    err = refusal(
        capsys, "--config", str(config), "--from", "2025-01-05T10:15", "--to", "2025-01-05T10:45",
        "--db", str(db_path),
    )  # fmt: skip
    assert "but no 1h candle opens in the window: widen it" in err

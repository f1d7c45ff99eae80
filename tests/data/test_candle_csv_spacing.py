"""A candle file spaced at another interval than the config's is named as such, not as holes."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.data.candle_csv import CandleFileError, read_candle_csv

H = 3_600_000
START = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def write(path: Path, stamps: list[int]) -> Path:
    rows = [f"{ts},100,101,99,100,1" for ts in stamps]
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("spacing_ms", "file_interval", "config_interval"),
    [(H, "1h", "15m"), (4 * H, "4h", "1h"), (H // 4, "15m", "1h"), (24 * H, "1d", "1h")],
)
def test_a_file_at_another_interval_names_both_intervals(
    tmp_path: Path, spacing_ms: int, file_interval: str, config_interval: str
) -> None:
    path = write(tmp_path / "c.csv", [START + i * spacing_ms for i in range(10)])
    with pytest.raises(CandleFileError) as caught:
        read_candle_csv(path, config_interval)
    assert str(caught.value) == (
        f"{path}: the file's candles are {file_interval} apart; the config's interval is "
        f'{config_interval}: use a {config_interval} file or set interval = "{file_interval}"'
    )


def test_a_regular_spacing_that_is_no_interval_is_named_in_minutes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", [START + i * 90 * 60_000 for i in range(10)])
    with pytest.raises(CandleFileError) as caught:
        read_candle_csv(path, "15m")
    assert str(caught.value) == (
        f"{path}: the file's candles are 90 minutes apart; the config's interval is 15m: "
        f"use a 15m file"
    )


def test_a_file_at_the_config_interval_with_a_hole_still_names_the_hole(tmp_path: Path) -> None:
    stamps = [START + i * H for i in range(10) if i != 4]
    path = write(tmp_path / "c.csv", stamps)
    with pytest.raises(CandleFileError, match=r"line 6 .*1 candle\(s\) missing after line 5"):
        read_candle_csv(path, "1h")


def test_one_row_off_the_grid_is_named_by_its_line_not_as_a_spacing(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", [START, START + H + 60_000])
    with pytest.raises(CandleFileError, match=r"line 3: ts 2025-01-01T01:01:00Z is not the open"):
        read_candle_csv(path, "1h")

"""Candle CSV files: epoch ms or ISO 8601 times; bad rows refused with their line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.data.candle_csv import CandleFileError, read_candle_csv
from strategy_agent.errors import ConfigurationError

T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
H = 3_600_000
HEADER = "ts,open,high,low,close,volume\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text(text)
    return path


def _lines(count: int, start: int = 0) -> list[str]:
    return [f"{T0 + (start + i) * H},100,102,99,101,{10 + i}\n" for i in range(count)]


def test_epoch_ms_and_iso_times_are_read_as_open_times(tmp_path):
    path = _write(
        tmp_path,
        "Open, High,TS,low,close,volume,trades\n"  # any order and case; extra columns ignored
        "100,102,2025-01-01T00:00:00Z,99,101,10,7\n"
        f"101,103,{T0 + H},100,102,11,8\n"
        "102,104,2025-01-01T03:00:00+01:00,101,103,12,9\n"  # 02:00 UTC
        "103,105,2025-01-01 03:00,102,104,13,9\n"  # no offset: UTC
        "\n",  # a trailing blank line is fine
    )

    frame = read_candle_csv(path, "1h")

    assert frame["ts"].tolist() == [T0, T0 + H, T0 + 2 * H, T0 + 3 * H]
    assert frame["close"].tolist() == [101.0, 102.0, 103.0, 104.0]
    assert list(frame.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert str(frame["ts"].dtype) == "int64"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [*_lines(3), _lines(1, 2)[0]],
            r"line 5 repeats the candle of line 4 \(2025-01-01T02:00:00Z\)",
        ),
        (
            _lines(2) + _lines(1, 3) + _lines(1, 2),
            r"line 5 \(2025-01-01T02:00:00Z\) comes before line 4 .*sort the file by ts",
        ),
        (
            _lines(2) + _lines(2, 4),
            r"line 4 \(2025-01-01T04:00:00Z\): 2 candle\(s\) missing after line 3",
        ),
        (
            [*_lines(2), f"{T0 + 2 * H},100,NaN,99,101,5\n"],
            r"line 4: high is 'NaN', not a finite number",
        ),
        ([*_lines(2), f"{T0 + 2 * H},100,102,99,,5\n"], "line 4: close is empty"),
        ([*_lines(1), "\n", *_lines(1, 1)], "line 3: ts is empty"),
        ([*_lines(1), f"{T0 + H},100,102,99,101,inf\n"], "line 3: volume is 'inf'"),
        ([*_lines(1), "yesterday,100,102,99,101,5\n"], "line 3: ts 'yesterday' is neither epoch"),
        (
            [*_lines(1), f"{(T0 + H) // 1000},100,102,99,101,5\n"],
            "line 3: ts 1735693200 is not epoch milliseconds",
        ),
        (
            [*_lines(1), f"{T0 + H + 60000},100,102,99,101,5\n"],
            "line 3: ts 2025-01-01T01:01:00Z is not the open time of a 1h candle",
        ),
        (
            [*_lines(1), f"{T0 + H},100,102,100.5,101,5\n"],
            r"line 3: need low <= open, close <= high",
        ),
        ([*_lines(1), f"{T0 + H},0,102,0,101,5\n"], "line 3: prices must be > 0"),
        ([*_lines(1), f"{T0 + H},100,102,99,101,-1\n"], "line 3: volume must be >= 0"),
    ],
)
def test_bad_rows_are_refused_with_their_line_number(tmp_path, body, message):
    path = _write(tmp_path, HEADER + "".join(body))

    with pytest.raises(CandleFileError, match=message) as caught:
        read_candle_csv(path, "1h")

    assert str(caught.value).startswith(str(path))
    assert isinstance(caught.value, ConfigurationError)


def test_an_unsorted_file_is_called_unsorted_even_if_a_hole_comes_first(tmp_path):
    body = _lines(2) + _lines(1, 3) + _lines(1, 2)  # 00:00, 01:00, 03:00, 02:00

    with pytest.raises(
        CandleFileError, match=r"line 5 \(2025-01-01T02:00:00Z\) comes before line 4"
    ):
        read_candle_csv(_write(tmp_path, HEADER + "".join(body)), "1h")


def test_a_bad_value_is_reported_before_the_sequence(tmp_path):
    body = [*_lines(2), f"{T0 + 2 * H},100,NaN,99,101,5\n", *_lines(1, 2)]  # NaN on 4, dup on 5

    with pytest.raises(CandleFileError, match="line 4: high"):
        read_candle_csv(_write(tmp_path, HEADER + "".join(body)), "1h")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,open,high,low,close\n1,2,3,4,5\n", "line 1 .*lacks ts, volume"),
        (HEADER, "no candles after the header"),
        ("", "not a readable CSV file"),
    ],
)
def test_a_file_without_the_right_header_or_rows_is_refused(tmp_path, text, message):
    with pytest.raises(CandleFileError, match=message):
        read_candle_csv(_write(tmp_path, text), "1h")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CandleFileError, match="no such file"):
        read_candle_csv(tmp_path / "nope.csv", "1h")

"""Backtest progress: snapshots for the page, one line for the CLI."""

from __future__ import annotations

import io
import threading

import pytest

from strategy_agent.backtest.progress import (
    LineReporter,
    Progress,
    format_duration,
    render_line,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_snapshot_counts_cycles_spend_and_projects_the_eta() -> None:
    clock = FakeClock()
    progress = Progress(120, clock=clock)
    first = progress.snapshot()
    assert (first.cycles_done, first.eta_s, first.tokens, first.cost_usd) == (0, None, 0, 0.0)
    clock.now += 12.0
    for _ in range(30):
        progress.advance(tokens=1_000, cost_usd=0.0005)
    snap = progress.snapshot()
    assert (snap.cycles_done, snap.cycles_total, snap.tokens) == (30, 120, 30_000)
    assert snap.fraction == 0.25
    assert snap.elapsed_s == pytest.approx(12.0)
    assert snap.eta_s == pytest.approx(36.0)  # 12 s for 30 cycles, 90 to go
    assert snap.cost_usd == pytest.approx(0.015)
    assert render_line(snap) == (
        "30/120 cycles   25%  elapsed 0:12  ETA 0:36  30,000 tokens  $0.0150"
    )


def test_an_unknown_price_makes_the_dollars_unknown_and_the_end_stops_the_clock() -> None:
    clock = FakeClock()
    progress = Progress(10, clock=clock)
    progress.advance(tokens=10, cost_usd=None)
    progress.advance(tokens=10, cost_usd=0.01)
    clock.now += 5
    progress.finish("stopped", "budget of $1.00 reached")
    clock.now += 100
    snap = progress.snapshot()
    assert snap.cost_usd is None and snap.eta_s is None
    assert snap.elapsed_s == pytest.approx(5.0)
    assert render_line(snap) == (
        "2/10 cycles   20%  elapsed 0:05  20 tokens  $?  stopped: budget of $1.00 reached"
    )


def test_parallel_workers_are_all_counted() -> None:
    progress = Progress(8_000)
    threads = [
        threading.Thread(target=lambda: [progress.advance(tokens=3) for _ in range(1_000)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = progress.snapshot()
    assert (snap.cycles_done, snap.tokens, snap.fraction) == (8_000, 24_000, 1.0)


def test_a_pipe_gets_one_line_per_ten_percent_and_the_end() -> None:
    out = io.StringIO()
    progress = Progress(40, listeners=[LineReporter(out, is_tty=False)])
    for _ in range(40):
        progress.advance()
    progress.finish("done")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # the first cycle (it started), 10 %, 20 % ... 100 %: one line each, then the end
    expected = ["1/40"] + [f"{4 * k}/40" for k in range(1, 11)] + ["40/40"]
    assert [line.split()[0] for line in lines] == expected
    assert lines[-1].endswith("done")


def test_a_terminal_line_is_redrawn_in_place_and_ends_with_a_newline() -> None:
    out = io.StringIO()
    reporter = LineReporter(out, is_tty=True)
    progress = Progress(3, listeners=[reporter])
    for _ in range(3):
        progress.advance(tokens=5)
    progress.finish("failed", "the LLM refused the key")
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert "failed: the LLM refused the key" in text.split("\r")[-1]
    progress.advance()  # after the end nothing more is written
    assert out.getvalue() == text


def test_durations_read_as_clock_times() -> None:
    assert [format_duration(s) for s in (None, 0, 59.6, 61, 3_725)] == [
        "-",
        "0:00",
        "1:00",
        "1:01",
        "1:02:05",
    ]

"""The main flows in a real browser: create, step, auto-run, compare (no key, no network)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser


def _shot(page: Any, name: str) -> None:
    page.wait_for_timeout(600)  # let charts finish their transition
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _settle(page: Any) -> None:
    """Wait until the app has finished its current run (a click during a rerun can be lost)."""
    page.wait_for_timeout(200)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def _go(page: Any, title: str) -> None:
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title, level=1).wait_for()


def _create_strategy(page: Any, name: str, shot: str | None = None) -> None:
    _go(page, "Strategies")
    page.get_by_role("button", name="New strategy").click()
    name_input = page.get_by_label("Strategy name")
    name_input.fill(name)
    name_input.press("Enter")
    if shot:
        _shot(page, shot)
    page.get_by_role("button", name="Create strategy").click()
    page.get_by_text(re.compile(f"Created {re.escape(name)}")).wait_for()
    _settle(page)


def _curve_points(page: Any) -> int:
    """Points of the first trace of the first plotly chart (the equity curve)."""
    return int(
        page.evaluate(
            "() => { const p = document.querySelector('.js-plotly-plot');"
            " return p && p.data ? p.data[0].x.length : 0; }"
        )
    )


def test_create_a_strategy_on_the_embedded_default(page: Any) -> None:
    _create_strategy(page, "Browser demo", shot="00_new_strategy_form")
    card = page.locator("[class*='st-key-card_']").filter(has_text="Browser demo")
    card.get_by_role("button", name="Start").wait_for()
    page.get_by_text("builtin/ema_crossover").first.wait_for()
    _shot(page, "01_strategies_created")


def test_run_one_cycle_and_see_the_decision(page: Any) -> None:
    _create_strategy(page, "Lab demo")
    _go(page, "Prompt lab")
    page.get_by_role("button", name="Run one cycle").click()
    page.get_by_role("heading", name="Guardrails").wait_for()
    page.get_by_role("heading", name="Plan").wait_for()
    assert page.get_by_text("No cycle yet").count() == 0
    page.get_by_text("What the model saw (context)").click()
    _shot(page, "02_prompt_lab_cycle")


def test_auto_run_grows_the_equity_curve(page: Any) -> None:
    _create_strategy(page, "Auto demo")
    page.get_by_role("button", name="Start").first.click()
    page.get_by_text(re.compile("Started")).wait_for()
    _go(page, "Portfolio")
    page.locator(".js-plotly-plot").first.wait_for()
    first = _curve_points(page)
    deadline = time.monotonic() + 20
    while _curve_points(page) <= first and time.monotonic() < deadline:
        page.wait_for_timeout(500)  # the page refreshes itself every 2 s while running
    assert _curve_points(page) > first
    _shot(page, "03_portfolio_auto_run")
    _go(page, "Strategies")
    _settle(page)
    page.get_by_role("button", name="Pause").first.click()
    page.get_by_text(re.compile("Paused")).first.wait_for()


def test_open_the_leaderboard(page: Any) -> None:
    _create_strategy(page, "Board demo")
    card = page.locator("[class*='st-key-card_']").filter(has_text="Board demo")
    card.get_by_role("button", name="Step").click()
    page.get_by_text(re.compile("Cycle 1 of")).wait_for()
    _settle(page)
    card.get_by_role("button", name="Step").click()  # a benchmark needs two recorded cycles
    page.get_by_text(re.compile("Cycle 2 of")).wait_for()
    _go(page, "Leaderboard")
    page.get_by_text("Ranking").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    legend = page.locator(".js-plotly-plot .legendtext").all_text_contents()
    assert any((text or "").startswith("Board demo") for text in legend), legend
    # each strategy's own buy-and-hold line is drawn (dashed, toggled with its strategy)
    dashed = page.locator(".js-plotly-plot .scatterlayer .trace path.js-line[style*='dasharray']")
    assert dashed.count() >= 1
    _shot(page, "04_leaderboard")
    _go(page, "Decisions")
    page.get_by_text(re.compile(r"Timeline · \d+ cycles")).wait_for()
    _shot(page, "05_decisions")
    _go(page, "Digest")
    page.get_by_text("Trade digest by instrument").wait_for()
    _shot(page, "06_digest")


def test_run_a_small_backtest_and_read_the_comparison(page: Any) -> None:
    _create_strategy(page, "Backtest A")
    _create_strategy(page, "Backtest B")
    _go(page, "Backtest")
    # the two newest strategies are picked; their stored configs replay the simulated market
    page.get_by_text("Backtest B ·").first.wait_for()
    page.get_by_role("button", name="Estimate").click()
    page.get_by_text("Built-in rules call no LLM: this backtest costs nothing.").wait_for()
    _shot(page, "07_backtest_estimate")
    page.get_by_role("button", name="Run backtest").click()
    page.get_by_text(re.compile(r"Backtest done: [\d,]+ cycles")).wait_for(timeout=120_000)
    page.get_by_text("Equity curves").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for()
    legend = page.locator(".js-plotly-plot .legendtext").all_text_contents()
    assert {"Backtest A", "Backtest B"} <= set(legend), legend
    _shot(page, "08_backtest_comparison")
    page.get_by_role("link", name="See these runs on the Leaderboard").click()
    page.get_by_role("heading", name="Leaderboard", level=1).wait_for()
    page.get_by_text(
        re.compile(r"Backtest · simulated \(data sha256 [0-9a-f]{12}\)")
    ).first.wait_for()
    _shot(page, "09_leaderboard_with_backtests")

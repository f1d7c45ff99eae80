"""Leaderboard queries: metrics per strategy, LLM costs, normalised curves, buy-and-hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.models import HistoryRecord, UserRequest, interval_ms
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import leaderboard as lb
from strategy_agent.views import leaderboard_windows as windows
from tests.app.helpers import BLOWN_EQUITY, Populated, request, write_equity

HOUR = interval_ms("1h")


def test_one_row_per_strategy_each_in_its_own_window(
    store: SqliteStore, history: Populated
) -> None:
    board = lb.leaderboard(store)
    assert set(board.table["id"]) == {history.trend_id, history.hold_id}
    # 150 cycles on BTC/ETH/SOL and 40 cycles on BTC/ETH: two windows, never ranked together
    assert [group.ids for group in board.windows] in (
        [[history.trend_id], [history.hold_id]],
        [[history.hold_id], [history.trend_id]],
    )
    labels = {group.ids[0]: group.label for group in board.windows}
    assert labels[history.trend_id].startswith("simulated market (seed 42) · 1h · BTC, ETH, SOL · ")
    assert labels[history.hold_id].startswith("simulated market (seed 42) · 1h · BTC, ETH · ")
    trend = board.table.set_index("id").loc[history.trend_id]
    assert trend["Model"] == "builtin/ema_crossover"
    assert trend["Prompt"] == "built-in rule"
    assert trend["Sharpe"] is not None and np.isfinite(trend["Sharpe"])
    assert trend["LLM cost (USD)"] is None  # built-in rules cost nothing known


def _synthetic(store: SqliteStore, history: Populated, name: str, equity: list[float]) -> str:
    sid = store.create_strategy(request(name, "noop", ["BTC/USDT", "ETH/USDT"]), 5)
    write_equity(history.db, sid, equity)
    return sid


def test_only_strategies_over_the_same_window_are_ranked_together(
    store: SqliteStore, history: Populated
) -> None:
    steady = _synthetic(store, history, "Steady", [10_000.0 + 10 * i for i in range(40)])
    better = _synthetic(store, history, "Better", [10_000.0 + 20 * i for i in range(40)])
    short = _synthetic(store, history, "Lucky six", [10_000.0 * 1.1**i for i in range(1, 7)])
    board = lb.leaderboard(store)
    groups = {tuple(sorted(group.ids)) for group in board.windows}
    assert tuple(sorted([steady, better])) in groups
    assert (short,) in groups  # 6 cycles: its own window, not above the 40-cycle ones
    window = next(group for group in board.windows if steady in group.ids)
    ranked = board.group_table(window)
    assert list(ranked["id"]) == [better, steady] and list(ranked["#"]) == [1, 2]
    table = board.table.set_index("id")
    assert table.loc[short, "Return (%)"] > table.loc[better, "Return (%)"]
    assert pd.isna(table.loc[short, "Sharpe"])  # 6 cycles: not annualised, and not 0


def test_a_failed_last_cycle_neither_widens_the_window_nor_counts_as_a_decision(
    store: SqliteStore, history: Populated
) -> None:
    from strategy_agent.models import HistoryRecord

    clean = _synthetic(store, history, "Clean", [10_000.0 + 10 * i for i in range(40)])
    failed = _synthetic(store, history, "Failed last", [10_000.0 + 10 * i for i in range(40)])
    error = HistoryRecord(
        ts=41 * 3_600_000, kind="error", reference_id=f"{failed}-000041",
        payload={"cycle": 41, "stage": "compose", "error": "AuthenticationError"},
    )  # fmt: skip
    store.write_cycle(failed, [error], [], [], None)
    board = lb.leaderboard(store)
    assert any({clean, failed} <= set(group.ids) for group in board.windows)
    table = board.table.set_index("id")
    assert table.loc[failed, "Cycles"] == table.loc[clean, "Cycles"] == 40


def test_missing_figures_rank_last_whatever_the_direction() -> None:
    frame = pd.DataFrame(
        {
            "Strategy": ["a", "b", "c", "d"],
            "Return (%)": [1.0, 3.0, None, 2.0],
            "Sharpe": [0.5, None, 1.5, float("-inf")],  # -inf: an "n/a" cell's marker
            "Max drawdown (%)": [20.0, None, 5.0, 10.0],
            "id": ["a", "b", "c", "d"],
        }
    )
    assert list(windows.rank(frame, "Return (%)")["id"]) == ["b", "d", "a", "c"]
    by_sharpe = windows.rank(frame, "Sharpe")
    assert list(by_sharpe["id"]) == ["c", "a", "b", "d"]  # ties of missing keep return order
    assert by_sharpe["#"].tolist()[:2] == [1, 2] and by_sharpe["#"].isna().tolist()[2:] == [
        True,
        True,
    ]
    by_drawdown = windows.rank(frame, "Max drawdown (%)")  # lower is better
    assert list(by_drawdown["id"]) == ["c", "d", "a", "b"]
    assert by_drawdown["#"].tolist()[:3] == [1, 2, 3] and pd.isna(by_drawdown["#"].iloc[3])
    assert list(windows.rank(frame, "Strategy")["id"]) == ["a", "b", "c", "d"]
    assert list(windows.rank(frame, "no such column")["id"]) == ["b", "d", "a", "c"]


def test_too_few_trades_to_judge_is_flagged(store: SqliteStore, history: Populated) -> None:
    table = lb.leaderboard(store).table.set_index("id")
    hold = table.loc[history.hold_id]
    assert hold["Trades"] == 0 and hold["Note"] == "Too few trades to judge (0 closed)"
    trades = len(store.load_trades(history.trend_id))
    note = table.loc[history.trend_id, "Note"]
    assert (note == f"Too few trades to judge ({trades} closed)") == (trades < 10)


def test_curves_start_at_100_one_candle_before_the_first_cycle(
    store: SqliteStore, history: Populated
) -> None:
    board = lb.leaderboard(store)
    curve = board.curves[f"Hold ({history.hold_id})"]
    first_cycle_ts = store.equity_series(history.hold_id, max_points=2)[0].ts
    assert curve["value"].iloc[0] == 100.0
    assert curve["ts"].iloc[0] == first_cycle_ts - HOUR
    latest = store.latest_equity(history.hold_id)
    assert latest is not None
    assert curve["value"].iloc[-1] == pytest.approx(latest.equity / 10_000 * 100)


def _compose(store: SqliteStore, sid: str, cycle: int, cost: float | None) -> None:
    payload = {"cycle": cycle, "outcomes": [], "cost_usd": cost}
    record = HistoryRecord(ts=cycle, kind="compose", reference_id=f"{sid}-{cycle}", payload=payload)
    store.write_cycle(sid, [record], [], [], None)


def test_llm_cost_is_summed_incrementally(store: SqliteStore) -> None:
    llm = UserRequest.model_validate(
        {
            "llm": {"provider": "openai", "model_id": "gpt-4o-mini"},
            "trading": {"custom_prompt": "x"},
        }
    )
    sid = store.create_strategy(llm, 1)
    requests = {row.id: row.request for row in store.list_strategies()}
    assert lb.llm_costs(store, requests) == {}  # no cycle, no known cost
    for cycle, cost in enumerate((0.01, 0.02, None), start=1):
        _compose(store, sid, cycle, cost)
    assert lb.llm_costs(store, requests) == {sid: pytest.approx(0.03)}
    _compose(store, sid, 4, 0.5)
    assert lb.llm_costs(store, requests) == {sid: pytest.approx(0.53)}
    row = lb.leaderboard(store).table.set_index("id").loc[sid]
    assert row["LLM cost (USD)"] == pytest.approx(0.53)
    assert row["Cost per trade (USD)"] is None  # no trade yet


def test_cost_per_trade_divides_by_closed_trades(
    store: SqliteStore, history: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strategy_agent.trading_history import run_figures

    monkeypatch.setattr(run_figures, "llm_usage", lambda *args: (None, 0.3))
    row = lb.leaderboard(store).table.set_index("id").loc[history.trend_id]
    assert row["Trades"] == len(store.load_trades(history.trend_id)) > 0
    assert row["Cost per trade (USD)"] == pytest.approx(0.3 / row["Trades"])


def test_metrics_agree_with_the_store_summaries(store: SqliteStore, history: Populated) -> None:
    table = lb.leaderboard(store).table.set_index("id")
    for summary in store.summaries():
        row = table.loc[summary.strategy_id]
        assert row["Return (%)"] == pytest.approx(summary.pnl_pct)
        assert row["Max drawdown (%)"] == pytest.approx(summary.max_drawdown_pct)
        assert row["Trades"] == summary.trade_count
        assert row["Fees (USDT)"] == pytest.approx(summary.fees_paid)
        assert row["Cycles"] == summary.cycles
        if summary.win_rate is None:
            assert row["Win rate (%)"] is None or np.isnan(row["Win rate (%)"])
        else:
            assert row["Win rate (%)"] == pytest.approx(summary.win_rate * 100)


def test_profit_factor_uses_net_pnl_of_closed_trades(
    store: SqliteStore, history: Populated
) -> None:
    trades = store.load_trades(history.trend_id)
    nets = [(t.realized_pnl or 0.0) - t.fees for t in trades]
    assert lb.trade_net_pnls(store, history.trend_id) == pytest.approx(nets)


def test_every_figure_is_the_run_metrics_of_the_strategy(
    store: SqliteStore, history: Populated
) -> None:
    strategy = store.get_strategy(history.trend_id)
    run = lb.strategy_figures(store, strategy).run
    row = lb.leaderboard(store).table.set_index("id").loc[history.trend_id]
    assert run.periods_per_year == pytest.approx(365.25 * 24)  # from the 1h interval
    assert row["Sharpe"] == run.sharpe and row["Calmar"] == run.calmar
    assert row["CAGR (%)"] == run.cagr_pct and row["Volatility (%)"] == run.volatility_pct
    assert row["Exposure (%)"] == run.exposure_time_pct and 0 < run.exposure_time_pct <= 100
    assert row["Expectancy (USDT)"] == pytest.approx(np.mean(lb.trade_net_pnls(store, strategy.id)))
    assert row["Drawdown duration"] == run.max_drawdown_duration_ms


def test_prompt_label() -> None:
    assert lb.prompt_label(request("a", "ema_crossover")) == "built-in rule"
    templated = UserRequest.model_validate({"trading": {"template_id": "balanced_trend"}})
    assert lb.prompt_label(templated) == "template: balanced_trend"
    # an LLM strategy without a prompt of its own runs the default template, and says so
    no_prompt = UserRequest.model_validate({"llm": {"provider": "openai", "model_id": "gpt-4o"}})
    assert lb.prompt_label(no_prompt) == "default template: balanced_trend"
    long_text = "word " * 40
    custom = UserRequest.model_validate({"trading": {"custom_prompt": long_text}})
    label = lb.prompt_label(custom)
    assert len(label) == lb.PROMPT_LABEL_CHARS and label.endswith("…")


def test_empty_database_gives_an_empty_table(tmp_path) -> None:
    with SqliteStore(tmp_path / "empty.db") as empty:
        board = lb.leaderboard(empty)
    assert board.table.empty and board.benchmarks == {} and board.curves == {}


def _blown(store: SqliteStore, history: Populated) -> str:
    sid = store.create_strategy(request("Blown", "noop"), 5)
    write_equity(history.db, sid, BLOWN_EQUITY)
    return sid


def test_a_blown_up_account_is_shown_as_such_and_the_others_still_render(
    store: SqliteStore, history: Populated
) -> None:
    sid = _blown(store, history)
    board = lb.leaderboard(store)
    table = board.table.set_index("id")
    blown = table.loc[sid]
    assert blown["Return (%)"] == pytest.approx(-105.2)  # -520 on 10,000: worse than -100 %
    assert blown["Equity (USDT)"] == pytest.approx(-520.0)
    assert blown["Max drawdown (%)"] == pytest.approx(105.2)
    assert pd.isna(blown["Sharpe"]) and pd.isna(blown["Sortino"])
    assert blown["Note"] == (
        "Account blown: equity -520.00 USDT; Too few trades to judge (0 closed)"
    )
    assert board.unavailable[sid].columns == lb.ANNUALISED_COLUMNS
    assert pd.isna(blown["CAGR (%)"]) and pd.isna(blown["Calmar"])
    assert "returns after equity falls to 0 or below are undefined" in board.unavailable[sid].reason
    trend = table.loc[history.trend_id]
    assert np.isfinite(trend["Sharpe"])


def test_a_row_that_cannot_be_read_shows_why_and_the_others_render(
    store: SqliteStore, history: Populated
) -> None:
    with store.db.conn:  # a config this build no longer accepts (e.g. stored by a newer one)
        store.db.execute(
            "UPDATE strategies SET config = json_set(config, '$.trading.interval', '7h') "
            "WHERE id = ?",
            [history.hold_id],
        )
    board = lb.leaderboard(store)
    table = board.table.set_index("id")
    broken = table.loc[history.hold_id]
    assert broken["Strategy"] == "Hold"
    assert pd.isna(broken["Return (%)"]) and broken["Note"] == "Could not be read"
    unavailable = board.unavailable[history.hold_id]
    assert set(unavailable.columns) >= {"Return (%)", "Sharpe", "Equity (USDT)"}
    assert "stored configuration" in unavailable.reason and "7h" in unavailable.reason
    assert np.isfinite(table.loc[history.trend_id, "Return (%)"])


def test_each_strategy_has_its_own_buy_and_hold_from_its_recorded_candles(
    store: SqliteStore, history: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    import strategy_agent.factory as factory

    def no_market(*args: object, **kwargs: object) -> None:
        raise AssertionError("a page query built a market")

    monkeypatch.setattr(factory, "build_market", no_market)
    board = lb.leaderboard(store)
    for sid, symbols in ((history.hold_id, ("BTC/USDT", "ETH/USDT")), (history.trend_id, None)):
        row = store.get_strategy(sid)
        bench = board.benchmarks[f"{row.name} ({sid})"]
        cycles = store.equity_series(sid, max_points=2)
        first, last = cycles[0].ts, cycles[-1].ts
        assert int(bench["ts"].iloc[0]) == first and int(bench["ts"].iloc[-1]) == last
        fee = row.request.exchange.fee_bps / 10_000  # paid on entry and on exit
        assert bench["value"].iloc[0] == pytest.approx(100.0 / (1 + fee))
        source = SimulatedMarketDataSource(
            seed=42, clock=ManualClock(last), origin_ms=DEFAULT_ORIGIN_MS
        )
        ratios = []
        for symbol in symbols or row.request.trading.symbols:
            frame = source.history(symbol, "1h")
            close_at = dict(zip(frame["ts"] + HOUR, frame["close"], strict=True))
            ratios.append(close_at[last] / close_at[first])
        held = np.mean(ratios) * (1 - fee) / (1 + fee)
        assert bench["value"].iloc[-1] == pytest.approx(held * 100)
        assert board.table.set_index("id").loc[sid, "Buy & hold (%)"] == pytest.approx(
            (held - 1) * 100
        )

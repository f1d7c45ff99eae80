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
from tests.app.helpers import BLOWN_EQUITY, Populated, request, write_equity

HOUR = interval_ms("1h")


def test_one_row_per_strategy_best_return_first(store: SqliteStore, history: Populated) -> None:
    board = lb.leaderboard(store)
    assert set(board.table["id"]) == {history.trend_id, history.hold_id}
    returns = list(board.table["Return (%)"])
    assert returns == sorted(returns, reverse=True)
    trend = board.table.set_index("id").loc[history.trend_id]
    assert trend["Model"] == "builtin/ema_crossover"
    assert trend["Prompt"] == "built-in rule"
    assert trend["Sharpe"] is not None and np.isfinite(trend["Sharpe"])
    assert trend["LLM cost (USD)"] is None  # built-in rules cost nothing known


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


def test_cost_per_trade_divides_by_closed_trades(store: SqliteStore, history: Populated) -> None:
    row = lb._row(store, store.get_strategy(history.trend_id), 0.3)
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


def test_ratios_wait_for_enough_points() -> None:
    few = np.arange(10, dtype=np.int64) * HOUR
    many = np.arange(lb.MIN_RATIO_POINTS, dtype=np.int64) * HOUR
    assert lb._periods_per_year(few) is None
    assert lb._periods_per_year(many) == pytest.approx(365.25 * 24)


def test_prompt_label() -> None:
    assert lb.prompt_label(request("a", "ema_crossover")) == "built-in rule"
    templated = UserRequest.model_validate({"trading": {"template_id": "balanced_trend"}})
    assert lb.prompt_label(templated) == "template: balanced_trend"
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
    assert blown["Note"] == "Account blown: equity -520.00 USDT"
    assert board.unavailable[sid].columns == ["Sharpe", "Sortino"]
    assert "returns after equity falls to 0 or below are undefined" in board.unavailable[sid].reason
    trend = table.loc[history.trend_id]
    assert np.isfinite(trend["Sharpe"]) and pd.isna(trend["Note"])
    assert list(board.table["id"]).index(sid) == len(board.table) - 1  # worst return last


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
        assert bench["value"].iloc[0] == pytest.approx(100.0)
        source = SimulatedMarketDataSource(
            seed=42, clock=ManualClock(last), origin_ms=DEFAULT_ORIGIN_MS
        )
        ratios = []
        for symbol in symbols or row.request.trading.symbols:
            frame = source.history(symbol, "1h")
            close_at = dict(zip(frame["ts"] + HOUR, frame["close"], strict=True))
            ratios.append(close_at[last] / close_at[first])
        assert bench["value"].iloc[-1] == pytest.approx(np.mean(ratios) * 100)
        assert board.table.set_index("id").loc[sid, "Buy & hold (%)"] == pytest.approx(
            (np.mean(ratios) - 1) * 100
        )

"""What a strategy card says about its recent fallbacks (``fallback_text``, ``alert_text``)."""

from __future__ import annotations

from pathlib import Path

from strategy_agent.models import HistoryRecord, UserRequest
from strategy_agent.trading_history.fallbacks import FallbackAlert, FallbackStats
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.strategies import (
    StrategyCard,
    alert_text,
    escape_markdown,
    fallback_note,
    fallback_summary,
    fallback_text,
    strategy_cards,
)

API = "http://127.0.0.1:11434/v1"


def card(stats: FallbackStats | None, api_base: str | None = API) -> StrategyCard:
    return StrategyCard(
        strategy_id="s1",
        name="LLM",
        status="running",
        status_reason=None,
        mode="paper",
        model="openai/local",
        exchange="simulated",
        market_type="spot",
        symbols=["BTC/USDT"],
        interval="1h",
        initial_capital=10_000.0,
        equity=10_000.0,
        pnl_pct=0.0,
        cycles=10,
        trades=0,
        fallback=stats,
        api_base=api_base,
    )


def stats(fallbacks: int, streak: int, no_reply: bool = True, **extra: object) -> FallbackStats:
    return FallbackStats(
        window=10,
        fallbacks=fallbacks,
        streak=streak,
        last_cycle=10,
        last_reason="local could not be reached (Connection refused)",
        no_reply=no_reply,
        fallback_policy="noop",
        **extra,  # type: ignore[arg-type]
    )


def test_ongoing_outage_says_how_many_why_and_where() -> None:
    assert fallback_text(card(stats(5, 3))) == (
        "LLM unreachable: 5 of the last 10 cycles fell back to noop, the last 3 in a row "
        f"(local could not be reached (Connection refused); api_base {API})"
    )
    assert fallback_text(card(stats(4, 4))) is not None
    assert "fell back to noop, all in a row (" in (fallback_text(card(stats(4, 4))) or "")


def test_unusable_replies_and_no_api_base() -> None:
    text = fallback_text(card(stats(1, 1, no_reply=False), api_base=None))
    assert text == (
        "LLM replies unusable: 1 of the last 10 cycles fell back to noop "
        "(local could not be reached (Connection refused))"
    )


def test_recovered_then_clean() -> None:
    text = fallback_text(card(stats(2, 0, recovered_cycle=9)))
    assert text is not None and text.startswith(
        "LLM answering again since cycle #9: 2 of the last 10 cycles fell back to noop"
    )
    assert fallback_text(card(None)) is None
    assert fallback_text(card(stats(0, 0))) is None


def test_long_reasons_are_cut_and_alerts_name_their_cycles() -> None:
    long = FallbackStats(window=10, fallbacks=1, streak=1, last_reason="x " * 400, no_reply=True)
    text = fallback_text(card(long)) or ""
    assert "…" in text and len(text) < 500 and "fell back to no plan" in text
    alert = FallbackAlert(
        ts=0,
        compose_id="s1-000005",
        cycle=5,
        since_cycle=3,
        consecutive_fallbacks=3,
        reason="r",
        message="m",
        no_reply=True,
    )
    assert alert_text(alert) == "Alert at cycle #5: 3 cycles in a row fell back (#3 to #5)"


def test_note_parts_and_reasons_shown_as_written() -> None:
    note = fallback_note(card(stats(3, 3)))
    assert note is not None and note.ongoing and note.api_base == API
    assert (note.headline, note.summary) == (
        "LLM unreachable",
        "3 of the last 10 cycles fell back to noop, all in a row",
    )
    every = fallback_note(card(FallbackStats(window=10, fallbacks=10, streak=10, no_reply=True)))
    assert every is not None and every.summary == "all of the last 10 cycles fell back to no plan"
    assert escape_markdown("cost $0.02 *now* [x]") == r"cost \$0.02 \*now\* \[x\]"


def test_summary_of_the_ongoing_run() -> None:
    assert fallback_summary(stats(5, 3)) == "the last 3 cycles fell back to noop (5 of the last 10)"
    assert fallback_summary(stats(2, 1)) == "the last cycle fell back to noop (2 of the last 10)"
    assert fallback_summary(stats(10, 10)) == "all of the last 10 cycles fell back to noop"


def _write(store: SqliteStore, sid: str, cycle: int, fell_back: bool, alert: bool = False) -> None:
    payload = {"cycle": cycle, "fallback_used": fell_back, "outcomes": []}
    if fell_back:
        payload.update(fallback_reason="unreachable", fallback_policy="noop", raw_reply=None)
    ref = f"{sid}-{cycle:06d}"
    records = [HistoryRecord(ts=cycle, kind="compose", reference_id=ref, payload=payload)]
    if alert:
        body = {"cycle": cycle, "since_cycle": cycle - 2, "consecutive_fallbacks": 3}
        records.append(HistoryRecord(ts=cycle, kind="alert", reference_id=ref, payload=body))
    store.write_cycle(sid, records, [], [], None)


def test_a_long_outage_keeps_its_alert_after_it_leaves_the_window(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(UserRequest(), 0)
    for cycle in range(1, 16):  # cycles 1..15 all fell back; the alert is at cycle 3
        _write(store, sid, cycle, True, alert=cycle == 3)
    (shown,) = strategy_cards(store)
    assert shown.fallback is not None and shown.fallback.oldest_cycle == 6
    assert shown.alert is not None and shown.alert.cycle == 3  # the run that raised it goes on
    _write(store, sid, 16, False)  # the model answers again, then a short new run
    _write(store, sid, 17, True)
    _write(store, sid, 18, True)
    (shown,) = strategy_cards(store)
    assert shown.fallback is not None and shown.fallback.streak == 2
    assert shown.alert is None  # cycle 3's alert belongs to a run that ended, out of the window
    store.close()

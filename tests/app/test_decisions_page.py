"""Decisions page: the paged timeline, its filters, and one cycle opened in full."""

from __future__ import annotations

from tests.app.helpers import TREND_CYCLES, Populated, open_page, texts


def _timeline(app):
    return next(df.value for df in app.dataframe if "Rationale" in df.value.columns)


def test_timeline_is_newest_first_and_paged(populated: Populated) -> None:
    app = open_page("decisions", selected_strategy=populated.trend_id)
    assert f"{TREND_CYCLES} cycles · page 1 of 6" in texts(app)
    rows = _timeline(app)
    assert len(rows) == 25
    assert list(rows["Cycle"][:3]) == [TREND_CYCLES, TREND_CYCLES - 1, TREND_CYCLES - 2]
    assert "Tokens" not in rows.columns  # a built-in rule: no LLM columns
    app.number_input(key="dec_page").set_value(6).run()
    assert list(_timeline(app)["Cycle"])[-1] == 1


def test_filter_by_action_keeps_matching_cycles_only(populated: Populated) -> None:
    app = open_page("decisions", selected_strategy=populated.trend_id)
    app.selectbox(key="dec_action").set_value("buy").run()
    rows = _timeline(app)
    assert 0 < len(rows) < TREND_CYCLES
    assert all("buy" in actions for actions in rows["Actions"])


def test_open_cycle_shows_its_full_record(populated: Populated) -> None:
    app = open_page("decisions", selected_strategy=populated.trend_id)
    app.selectbox(key="dec_action").set_value("buy").run()
    page = texts(app)
    assert "Plan" in page and "Guardrails" in page and "Fills" in page
    fills = next(df.value for df in app.dataframe if "Filled qty" in df.value.columns)
    assert "filled" in set(fills["Status"])


def test_no_match_says_to_widen_the_filters(populated: Populated) -> None:
    app = open_page("decisions", selected_strategy=populated.hold_id)
    app.selectbox(key="dec_action").set_value("sell").run()
    assert "No cycle matches these filters" in texts(app)


def test_failed_cycles_are_listed_with_stage_and_reason(populated: Populated) -> None:
    from strategy_agent.models import HistoryRecord
    from strategy_agent.trading_history.store import SqliteStore

    cycle = TREND_CYCLES + 1  # the cycle after the last stored one
    with SqliteStore(populated.db) as store:
        last_ts = store.last_cycle_ts(populated.trend_id)
        assert last_ts is not None
        record = HistoryRecord(
            ts=last_ts + 3_600_000,
            kind="error",
            reference_id=f"{populated.trend_id}-{cycle:06d}",
            payload={"cycle": cycle, "stage": "data", "error": "exchange unreachable: retry"},
        )
        store.write_cycle(populated.trend_id, [record], [], [], None)
    app = open_page("decisions", selected_strategy=populated.trend_id)
    assert any(e.label == "Recent failed cycles (1)" for e in app.expander)
    assert "failed at **data**: exchange unreachable: retry" in texts(app)

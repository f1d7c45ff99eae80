"""Helpers of the app tests: page paths, a real-engine history, rendering a page."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from strategy_agent.models import UserRequest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = {
    "strategies": "app_pages/strategies.py",
    "prompt_lab": "app_pages/prompt_lab.py",
    "portfolio": "app_pages/portfolio.py",
    "decisions": "app_pages/decisions.py",
    "digest": "app_pages/digest.py",
    "leaderboard": "app_pages/leaderboard.py",
}
TREND_CYCLES = 150
HOLD_CYCLES = 40


@dataclass(frozen=True)
class Populated:
    db: Path
    trend_id: str  # ema_crossover on BTC/ETH/SOL: trades and closed round trips
    hold_id: str  # buy_and_hold on BTC/ETH: open positions


def request(name: str, model_id: str, symbols: list[str] | None = None) -> UserRequest:
    trading: dict[str, object] = {"strategy_name": name}
    if symbols:
        trading["symbols"] = symbols
    return UserRequest.model_validate(
        {"llm": {"provider": "builtin", "model_id": model_id}, "trading": trading}
    )


def run_cycles(db: Path, strategy_id: str, cycles: int) -> None:
    from strategy_agent.factory import open_runtime
    from strategy_agent.trading_history.store import SqliteStore

    with SqliteStore(db) as store:
        runtime = open_runtime(store, strategy_id)
        for _ in range(cycles):
            runtime.step()
        store.set_status(strategy_id, "paused", None, int(time.time() * 1000))


def open_page(name: str, **session: object) -> AppTest:
    """Render one page through the app's router (``session`` pre-sets session state)."""
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in session.items():
        app.session_state[key] = value
    app.switch_page(PAGES[name])
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    """Every piece of text on the page, joined (markdown, captions, alerts, metrics...)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "code"):
        parts.extend(str(el.value) for el in getattr(app, kind))
    parts.extend(f"{m.label} {m.value}" for m in app.metric)
    return "\n".join(parts)


BLOWN_EQUITY = [10_000.0 - 260.0 * i for i in range(40)] + [-520.0]  # ends 41 cycles later at -520


def write_equity(
    db: Path, strategy_id: str, equities: list[float], gross: float = 0.0, start_ts: int = 0
) -> None:
    """One recorded cycle per value of ``equities`` (hourly from ``start_ts``), no fill.

    A synthetic history for states the engine reaches rarely (a blown-up book);
    the last point carries ``gross`` as its gross exposure.
    """
    from strategy_agent.models import EquityPoint, HistoryRecord
    from strategy_agent.trading_history.store import SqliteStore

    with SqliteStore(db) as store:
        for index, equity in enumerate(equities, start=1):
            ts = start_ts + index * 3_600_000
            record = HistoryRecord(
                ts=ts,
                kind="compose",
                reference_id=f"{strategy_id}-{index:06d}",
                payload={"cycle": index, "outcomes": []},
            )
            point = EquityPoint(
                ts=ts,
                strategy_id=strategy_id,
                cash=equity - (gross if index == len(equities) else 0.0),
                equity=equity,
                realized_pnl=equity - 10_000.0,
                unrealized_pnl=0.0,
                fees_paid=0.0,
                gross_exposure=gross if index == len(equities) else 0.0,
                net_exposure=gross if index == len(equities) else 0.0,
            )
            store.write_cycle(strategy_id, [record], [], [], point)


def shown(element: Any) -> Any:
    """The table an ``st.dataframe`` element displays: its cells as formatted text.

    ``element.value`` is the data underneath (numbers); this is what a reader
    sees (``"-105.20 %"``, ``"n/a"``), decoded from the element's styler.
    """
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    frame = convert_arrow_bytes_to_pandas_df(element.proto.arrow_data.styler.display_values)
    frame.columns = list(element.value.columns)
    return frame


def stored_strategies(db: Path) -> list[Any]:
    """Every strategy stored in ``db`` (``StrategyRow``), oldest first."""
    from strategy_agent.trading_history.store import SqliteStore

    with SqliteStore(db) as store:
        return list(store.list_strategies())


def open_form() -> AppTest:
    """The Strategies page with the New strategy form open (no exception)."""
    app = open_page("strategies")
    app.button(key="open_form").click().run()
    assert not app.exception
    return app


def submit_form(app: AppTest) -> AppTest:
    """Click Create on the open form and rerun (no exception)."""
    app.button(key="form_submit").click().run()
    assert not app.exception, [e.message for e in app.exception]
    return app

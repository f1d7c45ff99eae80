"""Render time of every app page on a big database (100 backtest runs + 5 live strategies).

    python bench/ui_pages.py [--full] [--backtests 100] [--batch 10] [--live 5]
                             [--cycles 1000] [--db PATH] [--reruns 3]

By default each strategy has 1,000 cycles (about 460 MB, seeded in about 15 s);
``--full`` gives the README's figure, 10,000 cycles each (4.6 GB, a few minutes
to seed). A database seeded in a temporary folder is deleted afterwards;
``--db`` keeps (or reuses) one.

Seeds the database with bulk SQL (one transaction per strategy; the rows have
the shapes the engine writes: a cycles row and four checkpoints per cycle, the
features one with the cycle's last closed candle per symbol, fills, closed
trades, an equity point): ``--backtests`` backtest runs in batches of
``--batch`` (each batch its own data, so its own Leaderboard group; every
third batch in-sample for its model), each stored in ``runs`` and ended with
``finish_run`` as the backtest driver ends it, plus ``--live`` live
strategies without a run. Then it renders each page with ``AppTest`` and
prints the first render (cold: no memoised query) and the best of
``--reruns`` reruns on unchanged data. Every page should stay under 1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS  # noqa: E402
from strategy_agent.models import TradingConfig, UserRequest, interval_ms  # noqa: E402
from strategy_agent.trading_history.store import SqliteStore  # noqa: E402

PAGES = [
    "app_pages/strategies.py",
    "app_pages/prompt_lab.py",
    "app_pages/portfolio.py",
    "app_pages/decisions.py",
    "app_pages/digest.py",
    "app_pages/leaderboard.py",
    "app_pages/backtest.py",
]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
BUDGET_S = 1.0
DEFAULT_CYCLES = 1_000
FULL_CYCLES = 10_000


def _request(index: int) -> UserRequest:
    llm = (
        {"provider": "openai", "model_id": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}
        if index % 2
        else {"provider": "builtin", "model_id": "ema_crossover"}
    )
    trading = TradingConfig(
        strategy_name=f"Bench strategy {index:02d}",
        symbols=SYMBOLS,
        custom_prompt="Follow the trend; cut losers fast." if index % 2 else None,
    )
    return UserRequest.model_validate({"llm": llm, "trading": trading.model_dump()})


def _compose_payload(cycle: int, rng: random.Random, prices: dict[str, float], llm: bool) -> str:
    outcomes = []
    items = []
    for symbol in SYMBOLS:
        action = rng.choice(["noop", "noop", "noop", "buy", "sell", "flat"])
        status = rng.choice(["accepted", "accepted", "accepted", "clamped", "rejected"])
        reasons = [] if status == "accepted" else [f"{symbol}: per-instrument cap 40 % of equity"]
        outcomes.append(
            {
                "symbol": symbol,
                "action": action,
                "status": status,
                "requested_qty": 0.1,
                "final_target_qty": 0.1,
                "order_qty": 0.05,
                "reasons": reasons,
            }
        )
        items.append(
            {
                "instrument": {"symbol": symbol, "exchange_id": None, "quote_ccy": None},
                "action": action,
                "target_qty": 0.1,
                "confidence": 0.7,
                "rationale": f"{symbol} trend {'up' if action == 'buy' else 'flat'}",
            }
        )
    payload = {
        "policy": "openai/gpt-4o-mini" if llm else "builtin/ema_crossover",
        "latency_ms": rng.uniform(200, 900) if llm else rng.uniform(0.1, 1.0),
        "fallback_used": rng.random() < 0.02,
        "cycle": cycle,
        "notes": "Trend intact on BTC; ETH choppy.",
        "proposal": {"ts": 0, "items": items, "notes": None, "model_meta": None},
        "outcomes": outcomes,
        "equity_before": 10_000.0,
        "prices": prices,
    }
    if llm:
        payload.update(
            {
                "model": "openai/gpt-4o-mini",
                "prompt_tokens": rng.randint(900, 1400),
                "completion_tokens": rng.randint(80, 200),
                "cost_usd": rng.uniform(0.0002, 0.0006),
                "raw_reply": json.dumps({"items": [], "notes": "hold"}),
            }
        )
    return json.dumps(payload)


def seed(db_path: Path, backtests: int, batch: int, live: int, cycles: int) -> None:
    """Write ``backtests`` backtest runs and ``live`` live strategies of ``cycles`` cycles."""
    from strategy_agent.trading_history.runs import create_run, finish_run

    store = SqliteStore(db_path)
    try:
        for index in range(backtests + live):
            request = _request(index)
            now = int(time.time() * 1000)
            if index < backtests:
                name = f"Bench config {index % batch:02d} · backtest"
                trading = request.trading.model_copy(update={"strategy_name": name})
                request = request.model_copy(update={"trading": trading})
            sid = store.create_strategy(request, now_ms=now)
            _seed_strategy(store, sid, request, cycles, random.Random(index))
            if index >= backtests:
                store.set_status(sid, "paused", None, now)
                continue
            step = interval_ms(request.trading.interval)
            first = DEFAULT_ORIGIN_MS + request.trading.lookback * step
            number = index // batch
            run = create_run(
                store,
                kind="backtest",
                strategy_id=sid,
                request=request,
                data_source="simulated",
                data_hash=hashlib.sha256(f"bench batch {number}".encode()).hexdigest(),
                window_from_ms=first,
                window_to_ms=first + (cycles - 1) * step,
                batch_id=f"bench{number:03d}",
                now_ms=now,
                in_sample="in-sample for this model: bench" if number % 3 == 2 else None,
            )
            finish_run(store, run.id, "done", now_ms=now, tokens=0, cost_usd=None)
            store.set_status(sid, "stopped", "backtest done", now)
    finally:
        store.close()


def _seed_strategy(
    store: SqliteStore, sid: str, request: UserRequest, cycles: int, rng: random.Random
) -> None:
    step = interval_ms(request.trading.interval)
    start = DEFAULT_ORIGIN_MS + request.trading.lookback * step
    prices = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0}
    equity = request.trading.initial_capital
    llm = not request.llm.is_builtin
    records, fills, trades, points, rows = [], [], [], [], []
    for cycle in range(1, cycles + 1):
        ts = start + cycle * step
        cid = f"{sid}-{cycle:06d}"
        opens = prices
        prices = {s: p * (1 + rng.gauss(0, 0.006)) for s, p in prices.items()}
        equity *= 1 + rng.gauss(0.00005, 0.002)
        compose = _compose_payload(cycle, rng, prices, llm)
        candles = {
            s: {
                "ts": ts - step,
                "open": opens[s],
                "high": max(opens[s], p) * 1.002,
                "low": min(opens[s], p) * 0.998,
                "close": p,
                "volume": rng.uniform(10, 100),
            }
            for s, p in prices.items()
        }
        rows.append((sid, cycle, cid, ts, 1))
        records += [
            (
                ts,
                sid,
                "features",
                cid,
                json.dumps(
                    {"by_symbol": {s: {"close": p} for s, p in prices.items()}, "candles": candles}
                ),
                None,
            ),
            (ts, sid, "compose", cid, compose, json.loads(compose).get("cost_usd")),
            (ts, sid, "instructions", cid, json.dumps({"instructions": []}), None),
            (ts, sid, "execution", cid, json.dumps({"results": []}), None),
        ]
        if cycle % 10 == 0:
            symbol = rng.choice(SYMBOLS)
            side = "buy" if (cycle // 10) % 2 else "sell"
            fills.append(
                (ts, sid, cid, f"{cid}:{symbol}", symbol, side, 0.01, prices[symbol], 0.5, 0.0)
            )
        if cycle % 20 == 0:
            pnl = rng.gauss(5, 30)
            trades.append(_trade(sid, cid, rng.choice(SYMBOLS), ts - 10 * step, ts, pnl))
        exposure = equity * 0.3
        points.append(
            (ts, sid, equity * 0.5, equity, 0.0, 0.0, cycle * 0.01, exposure, exposure, cycle)
        )
    with store.db.conn:
        conn = store.db.conn
        conn.executemany(
            "INSERT INTO cycles (strategy_id, cycle, compose_id, ts, ok) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO history_records (ts, strategy_id, kind, reference_id, payload, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            records,
        )
        conn.executemany(
            "INSERT INTO fills (ts, strategy_id, compose_id, instruction_id, symbol, side, "
            "quantity, price, fee, realized_pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fills,
        )
        conn.executemany(
            "INSERT INTO trades (strategy_id, trade_id, symbol, type, side, quantity, entry_ts, "
            "exit_ts, entry_price, exit_price, realized_pnl, realized_pnl_pct, fees, holding_ms, "
            "compose_id, instruction_id, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            trades,
        )
        conn.executemany(
            "INSERT INTO equity (ts, strategy_id, cash, equity, realized_pnl, unrealized_pnl, "
            "fees_paid, gross_exposure, net_exposure, cycle) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            points,
        )


def _trade(sid: str, cid: str, symbol: str, entry: int, exit_: int, pnl: float) -> tuple:
    """A closed long of 0.01 at 60,000 whose P&L before fees is ``pnl`` (fee 1.0)."""
    quantity, entry_price, fees = 0.01, 60_000.0, 1.0
    exit_price = entry_price + pnl / quantity
    pnl_pct = (pnl - fees) / (quantity * entry_price) * 100.0  # net of fees, as the ledger does
    payload = {
        "trade_id": cid,
        "compose_id": cid,
        "instruction_id": f"{cid}:{symbol}",
        "strategy_id": sid,
        "trade_ts": exit_,
        "entry_ts": entry,
        "exit_ts": exit_,
        "instrument": {"symbol": symbol, "exchange_id": None, "quote_ccy": None},
        "side": "sell",
        "type": "long",
        "quantity": quantity,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "realized_pnl": pnl,
        "realized_pnl_pct": pnl_pct,
        "fees": fees,
        "holding_ms": exit_ - entry,
        "leverage": None,
        "note": None,
    }
    return (
        sid, cid, symbol, "long", "sell", quantity, entry, exit_, entry_price, exit_price, pnl,
        pnl_pct, fees, exit_ - entry, cid, f"{cid}:{symbol}", json.dumps(payload),
    )  # fmt: skip


def time_pages(db_path: Path, reruns: int) -> list[tuple[str, float, float]]:
    """(page, first render s, best of ``reruns`` reruns s) for every page."""
    import logging

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from strategy_agent.views import memo

    # "missing ScriptRunContext" noise of a bare run (streamlit resets its loggers' levels)
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    os.environ["STRATEGY_AGENT_DB"] = str(db_path)
    results = []
    for page in PAGES:
        st.cache_resource.clear()
        memo.clear()  # every page starts cold: its first render pays for its own queries
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        app.switch_page(page)
        started = time.perf_counter()
        app.run()
        first = time.perf_counter() - started
        if app.exception:
            raise SystemExit(f"{page} raised: {app.exception[0].message}")
        best = float("inf")
        for _ in range(reruns):
            started = time.perf_counter()
            app.run()
            best = min(best, time.perf_counter() - started)
        results.append((page, first, best))
    st.cache_resource.clear()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backtests", type=int, default=100, help="backtest runs")
    parser.add_argument("--batch", type=int, default=10, help="runs per backtest batch")
    parser.add_argument("--live", type=int, default=5, help="live strategies (no run row)")
    parser.add_argument(
        "--cycles", type=int, help=f"cycles per strategy (default {DEFAULT_CYCLES:,})"
    )
    parser.add_argument(
        "--full", action="store_true", help=f"{FULL_CYCLES:,} cycles per strategy (4.6 GB)"
    )
    parser.add_argument("--db", type=Path, help="reuse (or create) this database file")
    parser.add_argument("--reruns", type=int, default=3)
    args = parser.parse_args()
    cycles = args.cycles or (FULL_CYCLES if args.full else DEFAULT_CYCLES)
    folder = None if args.db else Path(tempfile.mkdtemp(prefix="ui-bench-"))
    db_path = args.db if folder is None else folder / "bench.db"
    try:
        return _run(db_path, args, cycles)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(db_path: Path, args: argparse.Namespace, cycles: int) -> int:
    if not db_path.exists():
        started = time.perf_counter()
        seed(db_path, args.backtests, max(1, args.batch), args.live, cycles)
        print(
            f"seeded {args.backtests} backtest runs + {args.live} live strategies x "
            f"{cycles:,} cycles into {db_path} in {time.perf_counter() - started:.1f} s "
            f"({db_path.stat().st_size / 1e6:.0f} MB)"
        )
    print(f"{'page':<24} {'first render':>13} {'rerun (best)':>13}", flush=True)
    slow = []
    for page, first, best in time_pages(db_path, args.reruns):
        flag = "" if max(first, best) < BUDGET_S else "  <-- over 1 s"
        print(f"{page:<24} {first:>11.3f} s {best:>11.3f} s{flag}")
        if max(first, best) >= BUDGET_S:
            slow.append(page)
    if slow:
        print(f"over budget: {', '.join(slow)}")
        return 1
    print("every page renders under 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

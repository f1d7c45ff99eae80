"""The same EMA 12/26 crossover on the same 8,760 candles: Strategy Agent's replay vs backtesting.py.

Run: ``.venv/bin/python bench/vs_backtesting_py.py [--cycles 8760] [--seed 42]``
(needs the dev dependency ``backtesting``: ``pip install -r requirements-dev.txt``).

One symbol (BTC/USDT) of the simulated market, hourly. Both sides trade the
same rule on the same candles with the same fills, fees and sizing:

- Rule: long while EMA 12 > EMA 26, flat otherwise (``builtin/ema_crossover``,
  no shorting). The EMAs are Strategy Agent's: computed on each decision's
  window of the last 120 closed candles, seeded with the mean of the window's
  first 12 (26) closes, as TA-Lib seeds them; backtesting.py gets the same
  definition as its indicator (``windowed_ema``, computed in its ``init``).
- Fills: a decision on the close of candle t fills at the open of t+1
  (Strategy Agent's default ``fill_at = "next_open"``; backtesting.py's
  default ``trade_on_close=False``), no slippage (``slippage_bps = 0``,
  ``spread = 0``).
- Fees: 10 bps of each fill's notional (``fee_bps = 10``; ``commission =
  0.001``, which backtesting.py charges at entry and at exit).
- Sizing: a long of 0.95 x equity at the decision's close (the rule's
  ``SIZE_FRACTION`` with ``max_position_pct = 1``), floored to the simulated
  market's BTC lot of 0.00001 (backtesting.py trades whole units:
  ``FractionalBacktest(fractional_unit=1e-5)`` and the same sizing in ``next``).
- End: both close the open position after the last decision (Strategy Agent's
  "Stop and close" cycle, ``StrategyRuntime.close_positions``), so both end in
  cash and the final equities compare without a mark.

Wall times: Strategy Agent from ``open_runtime`` to the last cycle written
(candles, features, composer, guardrails, paper fills, ledger, SQLite
history); backtesting.py's ``Backtest.run`` (its indicators, simulation and
statistics). Both figures and their ratio are printed as they come out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

from strategy_agent.clock import ManualClock  # noqa: E402
from strategy_agent.data import simulated_market  # noqa: E402
from strategy_agent.decision.builtin_policies import SIZE_FRACTION  # noqa: E402
from strategy_agent.factory import open_runtime  # noqa: E402
from strategy_agent.models import UserRequest  # noqa: E402
from strategy_agent.replay_speed import relaxed_collector  # noqa: E402
from strategy_agent.trading_history.store import SqliteStore  # noqa: E402

SYMBOL = "BTC/USDT"
LOOKBACK = 120
FEE_BPS = 10.0
LOT = 1e-5  # the simulated market's BTC lot (SimulatedMarketRules)
CAPITAL = 10_000.0
AGREE = 0.001  # final equities must agree within 0.1 %


def request(seed: int) -> UserRequest:
    return UserRequest.model_validate(
        {
            "llm": {"provider": "builtin", "model_id": "ema_crossover"},
            "exchange": {"fee_bps": FEE_BPS, "slippage_bps": 0.0, "fill_at": "next_open"},
            "trading": {
                "strategy_name": "vs backtesting.py",
                "symbols": [SYMBOL],
                "initial_capital": CAPITAL,
                "lookback": LOOKBACK,
                "max_position_pct": 1.0,
                "seed": seed,
            },
        }
    )


def strategy_agent_run(seed: int, cycles: int, db_path: Path) -> tuple[float, int, float]:
    """Wall seconds, closed trades and final equity of the replay (then one closing cycle)."""
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(request(seed), now_ms=0)
        started = time.perf_counter()
        with relaxed_collector():  # as a backtest run steps
            runtime = open_runtime(store, sid, fast_replay=True)
            for _ in range(cycles):
                if not runtime.step().ok:
                    raise SystemExit("a Strategy Agent cycle failed: the comparison is void")
            runtime.close_positions()
            runtime.flush()
        wall = time.perf_counter() - started
        point = store.latest_equity(sid)
        assert point is not None
        return wall, len(store.load_trades(sid)), point.equity


def candles(seed: int, cycles: int) -> pd.DataFrame:
    """Candles 0 .. lookback + cycles + 1 of the simulated BTC/USDT (what both sides see)."""
    clock = ManualClock(simulated_market.DEFAULT_ORIGIN_MS)
    source = simulated_market.SimulatedMarketDataSource([SYMBOL], seed=seed, clock=clock)
    frame = source.history(SYMBOL, "1h", 0, LOOKBACK + cycles + 2, closed_only=False)
    frame.index = pd.to_datetime(frame.pop("ts"), unit="ms")
    return frame.rename(columns=str.capitalize)


def windowed_ema(close: np.ndarray, period: int, window: int = LOOKBACK) -> np.ndarray:
    """At each bar, the EMA ``period`` of the last ``window`` closes, seeded with the mean of
    their first ``period`` (NaN until ``window`` bars exist): Strategy Agent's definition."""
    close = np.asarray(close, dtype=float)
    out = np.full(len(close), np.nan)
    if len(close) < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(close, window)
    alpha = 2.0 / (period + 1)
    value = windows[:, :period].mean(axis=1)
    for position in range(period, window):
        value = (1.0 - alpha) * value + alpha * windows[:, position]
    out[window - 1 :] = value
    return out


def backtesting_run(data: pd.DataFrame, cycles: int) -> tuple[float, int, float]:
    """Wall seconds, trades and final equity of backtesting.py on the same candles."""
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    last_decision = LOOKBACK + cycles - 1  # the candle of Strategy Agent's last decision

    class EmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(windowed_ema, self.data.Close, 12)
            self.slow = self.I(windowed_ema, self.data.Close, 26)

        def next(self) -> None:
            candle = len(self.data) - 1
            if candle > last_decision:  # the closing cycle, then nothing
                if candle == last_decision + 1 and self.position:
                    self.position.close()
                return
            if self.fast[-1] > self.slow[-1]:
                if not self.position:
                    lots = math.floor(SIZE_FRACTION * self.equity / self.data.Close[-1] + 1e-9)
                    self.buy(size=lots)
            elif self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = FractionalBacktest(
            data, EmaCross, cash=CAPITAL, commission=FEE_BPS / 1e4, fractional_unit=LOT
        )
        started = time.perf_counter()
        stats = test.run()
        wall = time.perf_counter() - started
    return wall, int(stats["# Trades"]), float(stats["Equity Final [$]"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=8_760)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    data = candles(args.seed, args.cycles)
    with tempfile.TemporaryDirectory() as tmp:
        ours = strategy_agent_run(args.seed, args.cycles, Path(tmp) / "vs.db")
    theirs = backtesting_run(data, args.cycles)
    print(
        f"EMA 12/26 crossover, {SYMBOL} 1h, {args.cycles:,} decisions (seed {args.seed}), "
        f"fills at the next open, fees {FEE_BPS:g} bps, long 95 % of equity "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    print(f"  {'':<22} {'wall s':>8} {'trades':>7} {'final equity':>14}")
    print(f"  {'Strategy Agent replay':<22} {ours[0]:>8.2f} {ours[1]:>7} {ours[2]:>14,.2f}")
    print(f"  {'backtesting.py':<22} {theirs[0]:>8.2f} {theirs[1]:>7} {theirs[2]:>14,.2f}")
    gap = abs(ours[2] - theirs[2]) / theirs[2]
    print(
        f"  wall time ratio (Strategy Agent / backtesting.py): {ours[0] / theirs[0]:.1f}x; "
        f"final equities differ by {gap * 100:.4f} %"
    )
    if ours[1] != theirs[1] or gap > AGREE:
        print("  DISAGREE: the trades or the final equity differ beyond 0.1 %")
        return 1
    print("  agree: same number of trades, final equity within 0.1 %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

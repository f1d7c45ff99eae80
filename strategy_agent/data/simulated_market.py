"""A deterministic, offline market: seeded candles for any symbol at any interval.

Model (per interval, in log prices): a market factor shared by every symbol plus
an idiosyncratic part, a volatility regime shared by the market (Markov switching
between calm, normal and stressed), and occasional jumps (market-wide and per
symbol). Bars open at the previous close; wicks and volume grow with volatility.

Determinism: the path of a symbol depends only on (seed, interval, origin, the
symbol's pricing key), never on which symbols or ranges were asked before. Bars
are generated in fixed blocks, each from an RNG seeded by (seed, interval, block
index) for the factor and additionally by ``zlib.crc32`` of the pricing key for
the symbol; a block starts from the previous block's last close and regime, so
blocks are generated in order and cached.

Pricing key: ``BTC/USDT``, ``BTC/USDC`` and ``BTC/USDT:USDT`` share one path
(the base asset, when the quote is a USD coin); other pairs use the pair itself.
Intervals are independent markets: the 1h and 1d paths are not aggregates of
each other.
"""

from __future__ import annotations

import math
import threading
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy_agent.clock import Clock
from strategy_agent.data.candle_rows import candles_from_columns
from strategy_agent.data.interfaces import MarketDataSource
from strategy_agent.models import Candle, InstrumentRef, interval_ms

DEFAULT_ORIGIN_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DEFAULT_SYMBOLS = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "DOGE/USDT",
    "AVAX/USDT",
    "LINK/USDT",
    "DOT/USDT",
)
# The markets a strategy may trade here: each default spot pair and its USDT-settled
# perpetual (same price path). The source prices any symbol; validation uses this list.
SIMULATED_SYMBOLS: tuple[str, ...] = DEFAULT_SYMBOLS + tuple(f"{s}:USDT" for s in DEFAULT_SYMBOLS)
BLOCK_BARS = 2048
COLUMNS = ("open", "high", "low", "close", "volume")

_YEAR_MS = 365.25 * 86_400_000
_DAY_MS = 86_400_000
_USD_QUOTES = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "DAI", "TUSD"})
_FACTOR_STREAM = 0
_SYMBOL_STREAM = 1

# Regimes 0 calm, 1 normal, 2 stressed: volatility multiplier, mean duration, next-state odds.
_REGIME_VOL = np.array([0.6, 1.0, 2.0])
_REGIME_DAYS = np.array([4.0, 6.0, 1.5])
_REGIME_NEXT = np.array([[0.0, 0.9, 0.1], [0.6, 0.0, 0.4], [0.2, 0.8, 0.0]])
_MARKET_JUMPS_PER_YEAR = 10.0
_IDIO_JUMPS_PER_YEAR = 6.0
_JUMP_MEAN, _JUMP_STD = -0.005, 0.03
_WICK_SCALE = 0.6


@dataclass(frozen=True)
class SymbolProfile:
    """What makes one simulated asset itself: level, volatility, market beta, turnover."""

    start_price: float
    annual_vol: float
    market_loading: float  # correlation of the diffusion part with the market factor
    daily_notional: float  # quote-currency volume of an average day


_KNOWN_PROFILES = {
    "BTC": SymbolProfile(60_000.0, 0.55, 0.90, 1.5e9),
    "ETH": SymbolProfile(3_000.0, 0.70, 0.85, 8.0e8),
    "SOL": SymbolProfile(150.0, 0.90, 0.80, 3.0e8),
}


def pricing_key(symbol: str) -> str:
    """The key a symbol's path is generated from (``BTC/USDT:USDT`` -> ``BTC``)."""
    pair = symbol.strip().upper().split(":", 1)[0]
    base, _, quote = pair.partition("/")
    return base if quote in _USD_QUOTES and base else pair


def symbol_profile(symbol: str) -> SymbolProfile:
    """The asset profile: fixed for BTC, ETH, SOL; derived from the key's crc32 otherwise."""
    key = pricing_key(symbol)
    if key in _KNOWN_PROFILES:
        return _KNOWN_PROFILES[key]
    digest = zlib.crc32(key.encode())
    unit = [((digest >> shift) & 0xFF) / 255.0 for shift in (0, 8, 16, 24)]
    return SymbolProfile(
        start_price=round(100.0 ** unit[0], 4),  # log-uniform in 1..100
        annual_vol=0.6 + 0.6 * unit[1],
        market_loading=0.55 + 0.3 * unit[2],
        daily_notional=2e7 + 2e8 * unit[3],
    )


@dataclass
class _FactorPath:
    """The shared market part of one interval: regime, factor shocks, market jumps."""

    regime: np.ndarray
    shock: np.ndarray
    jump: np.ndarray

    @property
    def bars(self) -> int:
        return len(self.shock)


@dataclass
class _SymbolPath:
    """Generated OHLCV columns of one pricing key at one interval."""

    ohlcv: np.ndarray  # shape (5, bars), rows in COLUMNS order

    @property
    def bars(self) -> int:
        return int(self.ohlcv.shape[1])


class SimulatedMarketDataSource(MarketDataSource):
    """Seeded candles for any symbol; the clock decides which candles are closed.

    Candle ``i`` of an interval opens at ``origin_ms + i * interval_ms`` and is
    closed once ``clock.now_ms() >= open + interval_ms``. With a ``ManualClock``
    the caller steps time; with ``SystemClock(speed=...)`` candles appear live.
    """

    def __init__(
        self,
        symbols: list[str] | None = None,
        seed: int = 42,
        *,
        clock: Clock,
        origin_ms: int = DEFAULT_ORIGIN_MS,
        exchange_id: str = "simulated",
    ) -> None:
        self._symbols = [_clean_symbol(s) for s in symbols or []]
        self._seed = int(seed) % 2**63  # SeedSequence needs a non-negative entropy
        self._clock = clock
        self._origin_ms = int(origin_ms)
        self._exchange_id = exchange_id
        self._lock = threading.Lock()
        self._factors: dict[int, _FactorPath] = {}
        self._paths: dict[tuple[str, int], _SymbolPath] = {}
        self._instruments: dict[str, InstrumentRef] = {}

    @property
    def origin_ms(self) -> int:
        return self._origin_ms

    def available_symbols(self) -> list[str]:
        """The default list plus the symbols given at creation (any other symbol works too)."""
        listed = list(DEFAULT_SYMBOLS)
        listed.extend(s for s in self._symbols if s not in listed)
        return listed

    def latest_closed_index(self, interval: str) -> int:
        """Index of the newest candle closed at the clock's now; -1 when none is closed yet."""
        step_ms = interval_ms(interval)
        elapsed_ms = self._clock.now_ms() - self._origin_ms
        return max(elapsed_ms // step_ms, 0) - 1

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        """The last ``lookback`` closed candles of each symbol, oldest first, grouped by symbol."""
        if lookback < 0:
            raise ValueError(f"lookback must be >= 0, got {lookback}")
        end = self.latest_closed_index(interval) + 1
        start = max(end - lookback, 0)
        candles: list[Candle] = []
        for symbol in dict.fromkeys(_clean_symbol(s) for s in symbols):
            candles.extend(self._candles(symbol, interval, start, end))
        return candles

    def next_open(self, symbol: str, interval: str, ts: int) -> tuple[int, float] | None:
        """``(open time, open)`` of the candle opening at or after ``ts`` (within one interval),
        generated whether or not the clock has reached it: only a fill price reads this
        (``NextOpenPrices``), never a decision. ``None`` before the origin."""
        step_ms = interval_ms(interval)
        index = -(-(ts - self._origin_ms) // step_ms)  # ceil: the first open at or after ts
        if index < 0:
            return None
        opened = self._origin_ms + index * step_ms
        return opened, float(self._ohlcv(_clean_symbol(symbol), step_ms, index, index + 1)[0, 0])

    def history(
        self,
        symbol: str,
        interval: str,
        start_index: int = 0,
        end_index: int | None = None,
        *,
        closed_only: bool = True,
    ) -> pd.DataFrame:
        """Candles ``start_index`` to ``end_index`` (exclusive) as a frame, for bulk use.

        Columns: ts (open time, epoch ms), open, high, low, close, volume.
        ``end_index=None`` means through the latest closed candle. With
        ``closed_only`` (the default) the range is cut at the clock, so a chart
        or replay cannot see the future; pass ``closed_only=False`` to read the
        deterministic path beyond it.
        """
        symbol = _clean_symbol(symbol)
        step_ms = interval_ms(interval)
        closed_end = self.latest_closed_index(interval) + 1
        end = closed_end if end_index is None else end_index
        if closed_only:
            end = min(end, closed_end)
        start = max(start_index, 0)
        end = max(end, start)
        ohlcv = self._ohlcv(symbol, step_ms, start, end)
        frame = pd.DataFrame(dict(zip(COLUMNS, ohlcv, strict=True)))
        frame.insert(0, "ts", self._origin_ms + np.arange(start, end, dtype=np.int64) * step_ms)
        return frame

    # -- candles -------------------------------------------------------------------

    def _candles(self, symbol: str, interval: str, start: int, end: int) -> list[Candle]:
        if end <= start:
            return []
        step_ms = interval_ms(interval)
        first_ts = self._origin_ms + start * step_ms
        stamps = range(first_ts, first_ts + (end - start) * step_ms, step_ms)
        ohlcv = self._ohlcv(symbol, step_ms, start, end)
        return candles_from_columns(self._instrument(symbol), interval, stamps, ohlcv)

    def _instrument(self, symbol: str) -> InstrumentRef:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            quote = symbol.split(":", 1)[0].partition("/")[2] or None
            instrument = InstrumentRef(
                symbol=symbol, exchange_id=self._exchange_id, quote_ccy=quote
            )
            self._instruments[symbol] = instrument
        return instrument

    # -- generation ------------------------------------------------------------------

    def _ohlcv(self, symbol: str, step_ms: int, start: int, end: int) -> np.ndarray:
        """Rows open..volume of bars ``[start, end)``, generating blocks as needed."""
        if end <= start:
            return np.empty((len(COLUMNS), 0))
        key = pricing_key(symbol)
        with self._lock:
            path = self._ensure_path(key, step_ms, end)
        return path.ohlcv[:, start:end]

    def _ensure_factor(self, step_ms: int, bars: int) -> _FactorPath:
        factor = self._factors.get(step_ms)
        have = 0 if factor is None else factor.bars
        if factor is not None and have >= bars:
            return factor
        state = 1 if factor is None else int(factor.regime[-1])
        blocks = []
        for block in range(have // BLOCK_BARS, _blocks_for(bars)):
            generated = _factor_block(self._seed, step_ms, block, state)
            state = int(generated.regime[-1])
            blocks.append(generated)
        if factor is not None:
            blocks.insert(0, factor)
        factor = _FactorPath(
            regime=np.concatenate([b.regime for b in blocks]),
            shock=np.concatenate([b.shock for b in blocks]),
            jump=np.concatenate([b.jump for b in blocks]),
        )
        self._factors[step_ms] = factor
        return factor

    def _ensure_path(self, key: str, step_ms: int, bars: int) -> _SymbolPath:
        path = self._paths.get((key, step_ms))
        have = 0 if path is None else path.bars
        if path is not None and have >= bars:
            return path
        factor = self._ensure_factor(step_ms, bars)
        profile = symbol_profile(key)
        last_close = profile.start_price if path is None else float(path.ohlcv[3, -1])
        chunks = [] if path is None else [path.ohlcv]
        for block in range(have // BLOCK_BARS, _blocks_for(bars)):
            window = slice(block * BLOCK_BARS, (block + 1) * BLOCK_BARS)
            ohlcv = _symbol_block(
                self._seed, step_ms, block, key, profile, last_close, factor, window
            )
            last_close = float(ohlcv[3, -1])
            chunks.append(ohlcv)
        path = _SymbolPath(np.concatenate(chunks, axis=1))
        self._paths[(key, step_ms)] = path
        return path


def _clean_symbol(symbol: str) -> str:
    cleaned = symbol.strip()
    if not cleaned:
        raise ValueError("symbol must not be blank; use a ccxt symbol such as 'BTC/USDT'")
    return cleaned


def _blocks_for(bars: int) -> int:
    return -(-bars // BLOCK_BARS)


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(entropy)))


def _factor_block(seed: int, step_ms: int, block: int, state: int) -> _FactorPath:
    """One block of the market factor, starting in regime ``state``."""
    rng = _rng(seed, step_ms, block, _FACTOR_STREAM)
    regime = _regime_path(rng, state, BLOCK_BARS, step_ms)
    shock = rng.standard_normal(BLOCK_BARS)
    jump_prob = min(0.2, _MARKET_JUMPS_PER_YEAR * step_ms / _YEAR_MS)
    happens = rng.random(BLOCK_BARS) < jump_prob
    jump = np.where(happens, rng.normal(_JUMP_MEAN, _JUMP_STD, BLOCK_BARS), 0.0)
    return _FactorPath(regime=regime, shock=shock, jump=jump)


def _regime_path(rng: np.random.Generator, state: int, bars: int, step_ms: int) -> np.ndarray:
    """Markov regime per bar, drawn run by run (geometric run lengths)."""
    leave_prob = np.minimum(0.9, step_ms / (_REGIME_DAYS * _DAY_MS))
    regime = np.empty(bars, dtype=np.int8)
    position = 0
    while position < bars:
        run = int(rng.geometric(leave_prob[state]))
        regime[position : position + run] = state
        position += run
        state = int(np.searchsorted(np.cumsum(_REGIME_NEXT[state]), rng.random(), side="right"))
    return regime


def _symbol_block(
    seed: int,
    step_ms: int,
    block: int,
    key: str,
    profile: SymbolProfile,
    open_price: float,
    factor: _FactorPath,
    window: slice,
) -> np.ndarray:
    """One block of OHLCV rows for ``key``, opening at ``open_price``."""
    rng = _rng(seed, step_ms, block, _SYMBOL_STREAM, zlib.crc32(key.encode()))
    idio = rng.standard_normal(BLOCK_BARS)
    jump_prob = min(0.2, _IDIO_JUMPS_PER_YEAR * step_ms / _YEAR_MS)
    idio_jump = np.where(
        rng.random(BLOCK_BARS) < jump_prob, rng.normal(0.0, _JUMP_STD, BLOCK_BARS), 0.0
    )
    wick_up = np.abs(rng.standard_normal(BLOCK_BARS))
    wick_down = np.abs(rng.standard_normal(BLOCK_BARS))
    volume_noise = rng.normal(0.0, 0.3, BLOCK_BARS)

    bar_vol = (
        profile.annual_vol * math.sqrt(step_ms / _YEAR_MS) * _REGIME_VOL[factor.regime[window]]
    )
    loading = profile.market_loading
    diffusion = loading * factor.shock[window] + math.sqrt(1.0 - loading**2) * idio
    jumps = factor.jump[window] * loading * profile.annual_vol / 0.6 + idio_jump
    log_return = bar_vol * diffusion - 0.5 * bar_vol**2 + jumps

    log_close = math.log(open_price) + np.cumsum(log_return)
    close = np.exp(log_close)
    opens = np.concatenate(([open_price], close[:-1]))
    # exp(-x) <= 1 and IEEE rounding is monotonic, so low <= open,close <= high holds exactly.
    high = np.maximum(opens, close) * np.exp(_WICK_SCALE * bar_vol * wick_up)
    low = np.minimum(opens, close) * np.exp(-_WICK_SCALE * bar_vol * wick_down)
    activity = (0.4 + 0.6 * np.abs(log_return) / bar_vol) * _REGIME_VOL[factor.regime[window]]
    notional = profile.daily_notional * step_ms / _DAY_MS * activity * np.exp(volume_noise - 0.045)
    volume = notional / opens
    return np.vstack([opens, high, low, close, volume])

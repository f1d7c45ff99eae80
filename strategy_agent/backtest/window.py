"""The candles a backtest replays: where they come from, loaded once, and each run's window.

``--data`` names the source (``DataSpec``): ``simulated`` (the offline market,
the same candles paper trading on it sees), ``store:<exchange>`` (candles
downloaded with ``download``), ``csv:FILE`` (one symbol) or
``csv:SYMBOL=FILE,SYMBOL=FILE``. Without it, each config's own data is used
(its ``[replay]``, else its exchange: the simulated market, or the store).

A batch loads its candles once (``load_batch``) and every run replays them
through its own ``ReplayMarketDataSource`` and clock, so runs side by side see
the same candles. A run decides on the close of every candle whose open time
(epoch ms UTC) is in its window ``[first_ms, last_ms]`` (``RunWindow``): the
first is the later of ``--from`` and the first candle with a full lookback
behind it (as paper trading on the same data starts), the last the earlier of ``--to``
and the last candle in the data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from strategy_agent.clock import ManualClock
from strategy_agent.data.candle_csv import read_candle_csv
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.data.symbols import SIMULATED_EXCHANGE
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import Candle, InstrumentRef, ReplayConfig, UserRequest, interval_ms
from strategy_agent.trading_history.candle_store import CandleSeries, read_candles
from strategy_agent.trading_history.runs import candles_sha256, file_sha256
from strategy_agent.trading_history.store import SqliteStore

DataKind = Literal["simulated", "store", "csv"]
SourceFactory = Callable[..., ReplayMarketDataSource]  # (frames, interval, *, clock, exchange_id)
_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class DataSpec:
    """Where a backtest's candles come from. ``files``: (symbol, path) of CSV files; a
    symbol ``""`` is the only symbol of the configs."""

    kind: DataKind
    exchange_id: str | None = None
    files: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """``simulated``, ``store:okx`` or ``csv:FILE[,FILE]`` (the run's ``data_source``)."""
        if self.kind == "store":
            return f"store:{self.exchange_id}"
        if self.kind == "csv":
            return "csv:" + ",".join(path for _, path in self.files)
        return "simulated"


def parse_data_spec(text: str) -> DataSpec:
    """``simulated``, ``store:EXCHANGE``, ``csv:FILE`` or ``csv:SYMBOL=FILE,SYMBOL=FILE``."""
    kind, _, rest = text.strip().partition(":")
    if kind == "simulated" and not rest:
        return DataSpec("simulated")
    if kind == "store" and rest.strip():
        return DataSpec("store", exchange_id=rest.strip())
    if kind == "csv" and rest.strip():
        files = []
        for item in rest.split(","):
            symbol, sep, path = item.partition("=")
            if sep and not (symbol.strip() and path.strip()):
                raise ConfigurationError(f"--data {text!r}: write csv:SYMBOL=FILE,SYMBOL=FILE")
            files.append((symbol.strip(), path.strip()) if sep else ("", item.strip()))
        return DataSpec("csv", files=tuple(files))
    raise ConfigurationError(
        f"--data {text!r}: use simulated, store:EXCHANGE (candles downloaded with `download`), "
        f"csv:FILE or csv:SYMBOL=FILE,SYMBOL=FILE"
    )


def default_spec(request: UserRequest) -> DataSpec:
    """The data a config names itself: its ``[replay]``, else its exchange's."""
    replay = request.replay
    if replay is not None and replay.source == "csv":
        return DataSpec("csv", files=tuple(sorted(replay.csv_files.items())))
    if request.exchange.exchange_id == SIMULATED_EXCHANGE and replay is None:
        return DataSpec("simulated")
    return DataSpec("store", exchange_id=request.exchange.exchange_id)


def csv_files(spec: DataSpec, symbols: Sequence[str]) -> dict[str, str]:
    """``{symbol: file}`` of a CSV spec for a config's ``symbols``; an error names what lacks."""
    named = {symbol: path for symbol, path in spec.files if symbol}
    bare = [path for symbol, path in spec.files if not symbol]
    if bare:
        if len(bare) > 1 or named or len(set(symbols)) > 1:
            raise ConfigurationError(
                f"--data {spec.label}: with several symbols ({', '.join(symbols)}) name each "
                f"file: csv:BTC/USDT=btc.csv,ETH/USDT=eth.csv"
            )
        return {symbol: bare[0] for symbol in symbols}
    missing = [symbol for symbol in symbols if symbol not in named]
    if missing:
        typed = "csv:" + ",".join(f"{symbol}={path}" for symbol, path in spec.files)
        extra = [symbol for symbol in named if symbol not in symbols]
        given = (
            f"a file is given for {', '.join(extra)}, which no config trades, and none for "
            if extra
            else "no file is given for "
        )
        raise ConfigurationError(
            f"--data {typed}: {given}{', '.join(missing)}: write csv:"
            + ",".join(f"{symbol}=FILE" for symbol in missing)
        )
    return {symbol: named[symbol] for symbol in symbols}


@dataclass(frozen=True)
class RunWindow:
    """The candles a run decides on: open times ``first_ms`` to ``last_ms`` (epoch ms UTC)."""

    first_ms: int
    last_ms: int
    interval: str

    @property
    def step_ms(self) -> int:
        return interval_ms(self.interval)

    @property
    def cycles(self) -> int:
        return (self.last_ms - self.first_ms) // self.step_ms + 1

    def describe(self) -> str:
        return (
            f"{utc(self.first_ms)} to {utc(self.last_ms)} UTC "
            f"({self.cycles:,} candles of {self.interval})"
        )


@dataclass
class BatchData:
    """Candles loaded once for a batch: one frame per (symbol, interval), oldest first."""

    spec: DataSpec
    frames: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    exchange_id: str = "replay"
    file_hash: str | None = None  # of the CSV file(s), else None (candles are hashed)

    def frame(self, symbol: str, interval: str) -> pd.DataFrame:
        return self.frames[(symbol, interval)]

    def window(
        self, symbols: Sequence[str], interval: str, lookback: int, from_ms: int, to_ms: int
    ) -> RunWindow:
        """The candles a config decides on between ``from_ms`` and ``to_ms`` (see module doc)."""
        step = interval_ms(interval)
        frames = [self.frame(symbol, interval) for symbol in symbols]
        # as paper trading starts: on the candle after a full lookback
        earliest = max(int(f["ts"].iloc[0]) for f in frames) + lookback * step
        latest = min(int(f["ts"].iloc[-1]) for f in frames)
        first = max(-(-from_ms // step) * step, earliest)
        last = min(to_ms // step * step, latest)
        if last < first:
            start = earliest - lookback * step  # the data's first candle (of every symbol)
            if self.spec.kind == "simulated":
                latest = max(latest, earliest)  # loaded through --to only; the market goes on
            raise ConfigurationError(
                f"no {interval} candle to decide on from {utc(from_ms)} to {utc(to_ms)} UTC in "
                f"{self.spec.label} ({', '.join(symbols)}): "
                + _why_no_window(interval, lookback, start, earliest, latest, from_ms, to_ms)
            )
        return RunWindow(first, last, interval)

    def source(
        self,
        symbols: Sequence[str],
        window: RunWindow,
        clock: ManualClock,
        cut_ms: int | None = None,
        factory: SourceFactory | None = None,
    ) -> ReplayMarketDataSource:
        """The run's data source on ``clock``: the candles up to the one after the window
        (where the last decision fills), or up to ``cut_ms`` (a truncated replay).
        ``factory`` builds it from the frames (tests plant a faulty source this way)."""
        end = window.last_ms + window.step_ms if cut_ms is None else cut_ms
        frames = {}
        for symbol in dict.fromkeys(symbols):
            frame = self.frame(symbol, window.interval)
            frames[symbol] = frame[frame["ts"].to_numpy() <= end]
        build = factory or ReplayMarketDataSource
        return build(frames, window.interval, clock=clock, exchange_id=self.exchange_id)

    def closes(self, symbols: Sequence[str], interval: str, candle_ts: np.ndarray) -> np.ndarray:
        """Closes of the candles opening at ``candle_ts``: one row per time, a column per symbol."""
        columns = []
        for symbol in symbols:
            frame = self.frame(symbol, interval).set_index("ts")["close"]
            columns.append(frame.reindex(candle_ts).to_numpy(dtype=float))
        return np.column_stack(columns) if columns else np.empty((len(candle_ts), 0))

    def data_hash(self, needs: Sequence[tuple[Sequence[str], RunWindow, int]]) -> str:
        """sha256 of the CSV file(s) read, else of the candles the runs are served
        (``candles_sha256``): per (symbols, window, lookback), the lookback before the window
        through the candle after it."""
        if self.file_hash is not None:
            return self.file_hash
        served: dict[tuple[str, str], tuple[int, int]] = {}
        for symbols, window, lookback in needs:
            start = window.first_ms - lookback * window.step_ms
            for symbol in symbols:
                key = (symbol, window.interval)
                low, high = served.get(key, (start, window.last_ms + window.step_ms))
                served[key] = (min(low, start), max(high, window.last_ms + window.step_ms))
        return candles_sha256(self._candles(served))

    def _candles(self, served: dict[tuple[str, str], tuple[int, int]]) -> list[Candle]:
        candles: list[Candle] = []
        for (symbol, interval), (low, high) in sorted(served.items()):
            frame = self.frame(symbol, interval)
            stamps = frame["ts"].to_numpy()
            rows = frame[(stamps >= low) & (stamps <= high)][_COLUMNS].itertuples(index=False)
            instrument = InstrumentRef(symbol=symbol, exchange_id=self.exchange_id)
            for ts, open_, high_, low_, close, volume in rows:
                candles.append(
                    Candle.model_construct(
                        ts=int(ts),
                        instrument=instrument,
                        open=float(open_),
                        high=float(high_),
                        low=float(low_),
                        close=float(close),
                        volume=float(volume),
                        interval=interval,  # type: ignore[arg-type]  # a config's interval
                    )
                )
        return candles


def load_batch(
    spec: DataSpec,
    requests: Sequence[UserRequest],
    to_ms: int,
    store: SqliteStore | None = None,
) -> BatchData:
    """Load every (symbol, interval) the configs trade, once, through ``to_ms`` (epoch ms)
    plus one candle (where the last decision fills). Errors name what is missing."""
    needs = {(s, r.trading.interval) for r in requests for s in r.trading.symbols}
    data = BatchData(spec)
    if spec.kind == "simulated":
        seeds = {r.trading.seed for r in requests}
        if len(seeds) > 1:
            raise ConfigurationError(
                f"the configs trade different simulated markets (trading.seed "
                f"{', '.join(map(str, sorted(seeds)))}): give them the same seed to compare "
                f"them on the same candles"
            )
        source = SimulatedMarketDataSource(seed=seeds.pop(), clock=ManualClock(0))
        data.exchange_id = SIMULATED_EXCHANGE
        for symbol, interval in sorted(needs):
            step = interval_ms(interval)
            end = max((to_ms - DEFAULT_ORIGIN_MS) // step + 2, 1)  # through the fill candle
            data.frames[(symbol, interval)] = source.history(
                symbol, interval, 0, end, closed_only=False
            )
    elif spec.kind == "store":
        if store is None:
            raise ConfigurationError("a backtest on stored candles needs the database (--db)")
        assert spec.exchange_id is not None
        data.exchange_id = spec.exchange_id
        for symbol, interval in sorted(needs):
            rows = read_candles(store, CandleSeries(spec.exchange_id, symbol, interval))
            if not rows:
                raise ConfigurationError(
                    f"no stored {interval} candles of {symbol} from {spec.exchange_id} in "
                    f"{store.path}: download them first (python -m strategy_agent download "
                    f"--exchange {spec.exchange_id} --symbols {symbol} --interval {interval} "
                    f"--since YYYY-MM-DD)"
                )
            data.frames[(symbol, interval)] = pd.DataFrame(rows, columns=_COLUMNS)
    else:
        data.exchange_id = "csv"
        hashes = []
        for symbol, interval in sorted(needs):
            symbols = sorted({s for r in requests for s in r.trading.symbols})
            path = csv_files(spec, symbols)[symbol]
            data.frames[(symbol, interval)] = read_candle_csv(path, interval)
            hashes.append(f"{symbol}={file_sha256(path)}")
        data.file_hash = (
            hashes[0].split("=", 1)[1]
            if len(hashes) == 1
            else hashlib.sha256("\n".join(hashes).encode()).hexdigest()
        )
    return data


def _why_no_window(
    interval: str, lookback: int, start: int, earliest: int, latest: int, from_ms: int, to_ms: int
) -> str:
    """Why ``[from_ms, to_ms]`` holds no decision, given the data's first candle ``start``,
    the first decision possible ``earliest`` and the last ``latest`` (epoch ms), and what to use."""
    if latest < earliest:  # a file shorter than a lookback (the simulated market has no end)
        count = (latest - start) // interval_ms(interval) + 1
        return (
            f"the data has {count} candles from {utc(start)} to {utc(latest)} UTC, fewer than a "
            f"full lookback of {lookback} plus one to decide on: use more data or a smaller "
            f"lookback"
        )
    if to_ms < earliest:
        return (
            f"the window ends before the first decision possible, {utc(earliest)} UTC (after a "
            f"full lookback of {lookback} candles from the data's first candle, {utc(start)}): "
            f"use --to {utc(earliest)[:10]} or later"
        )
    possible = f"decisions are possible from {utc(earliest)} to {utc(latest)} UTC"
    if from_ms > latest:
        return (
            f"{possible} (the data's last candle): the window starts after the last: "
            f"use --from {utc(latest)[:10]} or earlier"
        )
    return f"{possible}, but no {interval} candle opens in the window: widen it"


def replay_of(spec: DataSpec, request: UserRequest, first_decision_ms: int) -> ReplayConfig | None:
    """The ``[replay]`` a backtest run's strategy row records (``None`` on the simulated market)."""
    if spec.kind == "simulated":
        return None
    if spec.kind == "csv":
        files = csv_files(spec, request.trading.symbols)
        return ReplayConfig(source="csv", csv_files=files, start_ms=first_decision_ms)
    return ReplayConfig(source="store", start_ms=first_decision_ms)


def utc(ms: int) -> str:
    """``2025-01-01 00:00`` (UTC) of epoch ms."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")

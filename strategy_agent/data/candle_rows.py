"""Candles from OHLCV columns: checked as a whole in numpy, then built without validation.

A market that holds its candles as numpy columns (the simulated market) hands
out thousands of ``Candle`` objects per chunk of a replay. Validating each one
(``Candle(...)``: pydantic's field checks plus the OHLC check) costs about
2-3 us a candle; ``candles_from_columns`` makes the same checks once over the
columns and, when every candle passes, builds them with
``prevalidated.builder`` (about 0.5 us). When any candle fails, every candle
is built with validation, so the caller gets ``Candle``'s own error for the
first bad one, as before. Either way the candles are equal, field for field,
to ``Candle(ts=..., ...)`` of the same values (``tests/data/test_candle_rows.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import numpy as np

from strategy_agent.models import Candle, InstrumentRef, Interval
from strategy_agent.prevalidated import builder

_INTERVALS = frozenset(get_args(Interval))
_build = builder(Candle)


def candles_from_columns(
    instrument: InstrumentRef, interval: str, stamps: Sequence[int], ohlcv: np.ndarray
) -> list[Candle]:
    """The candles of ``instrument`` at ``interval`` opening at ``stamps`` (epoch ms, Python
    ints), with the values of ``ohlcv`` (float64, shape ``(5, len(stamps))``, rows open,
    high, low, close, volume), as ``Candle(...)`` builds them (``ValidationError`` likewise)."""
    opens, highs, lows, closes, volumes = ohlcv.tolist()
    build = _build if _all_valid(instrument, interval, stamps, ohlcv) else _validated
    return [
        build(
            {
                "ts": ts,
                "instrument": instrument,
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v,
                "interval": interval,
            }
        )
        for ts, o, h, lo, c, v in zip(stamps, opens, highs, lows, closes, volumes, strict=True)
    ]


def _validated(fields: dict[str, object]) -> Candle:
    """``Candle(**fields)``: validation says what is wrong with a candle."""
    return Candle(**fields)  # type: ignore[arg-type]


def _all_valid(
    instrument: InstrumentRef, interval: str, stamps: Sequence[int], ohlcv: np.ndarray
) -> bool:
    """Every candle passes ``Candle``'s checks: ts an int >= 0, finite prices > 0, a finite
    volume >= 0, low <= open, close <= high, a known interval, an ``InstrumentRef``."""
    if not isinstance(instrument, InstrumentRef) or type(interval) is not str:
        return False  # a str subclass (numpy's, an enum) or unhashable: validation's job
    if interval not in _INTERVALS:
        return False
    if ohlcv.shape != (5, len(stamps)) or ohlcv.dtype != np.float64:
        return False
    if isinstance(stamps, range):  # ints; the smallest is at one end
        if stamps and min(stamps[0], stamps[-1]) < 0:
            return False
    elif not all(type(ts) is int and ts >= 0 for ts in stamps):
        return False
    opens, highs, lows, closes, volumes = ohlcv
    with np.errstate(invalid="ignore"):
        return bool(
            np.isfinite(ohlcv).all()
            and (ohlcv[:4] > 0).all()
            and (volumes >= 0).all()
            and (lows <= np.minimum(opens, closes)).all()
            and (np.maximum(opens, closes) <= highs).all()
        )


__all__ = ["candles_from_columns"]

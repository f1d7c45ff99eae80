"""One way to write numbers, times and durations across every page.

Money is in the quote currency (USDT for the simulated market) with two
decimals and thousands separators; percentages carry a sign when they are a
change; times are UTC. ``None`` renders as an em dash everywhere.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

DASH = "—"


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def money(value: float | None, ccy: str = "USDT") -> str:
    """``12,345.67 USDT``."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:,.2f} {ccy}".strip()


def signed_money(value: float | None, ccy: str = "USDT") -> str:
    """``+123.45 USDT`` / ``-12.00 USDT``."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:+,.2f} {ccy}".strip()


def pct(value: float | None, signed: bool = True, digits: int = 2) -> str:
    """A percentage already in percent units: ``+1.23 %``."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:+.{digits}f} %" if signed else f"{value:.{digits}f} %"


def ratio_pct(value: float | None, digits: int = 1) -> str:
    """A fraction shown as a percentage: 0.5 -> ``50.0 %``."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value * 100:.{digits}f} %"


def number(value: float | None, digits: int = 2) -> str:
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:,.{digits}f}"


def signed_number(value: float | None, digits: int = 2) -> str:
    """``+1,234.50`` (a change, without its unit)."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:+,.{digits}f}"


def pct_plain(value: float | None) -> str:
    """A level in percent, one decimal, no sign: ``54.5 %``."""
    return pct(value, signed=False, digits=1)


def ratio(value: float | None) -> str:
    """A plain ratio (Sharpe, profit factor): ``1.25``."""
    return number(value, 2)


def integer(value: float | None) -> str:
    if _missing(value):
        return DASH
    assert value is not None
    return f"{int(value):,}"


def compact(value: float | None) -> str:
    """A count in at most four significant characters: ``950``, ``12.3k``, ``1.03M``, ``2.5B``
    (for a tile that must not be cut off; exact counts go in tables)."""
    if _missing(value):
        return DASH
    assert value is not None
    size = abs(value)
    if size < 1000:
        return f"{value:,.0f}"
    # the largest unit that keeps the number at least 1 once rounded to 3 digits
    scale, unit = next(u for u in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if size >= u[0] * 0.9995)
    scaled = value / scale
    return (f"{scaled:.3g}" if abs(scaled) < 999.5 else f"{scaled:.0f}") + unit


def when(value: datetime | None) -> str:
    """A datetime (or pandas Timestamp) as ``2025-01-06 14:00``."""
    if value is None or value != value:  # NaT compares unequal to itself
        return DASH
    return value.strftime("%Y-%m-%d %H:%M")


def qty(value: float | None) -> str:
    """A quantity with as many digits as it needs (up to 8), no trailing zeros."""
    if _missing(value):
        return DASH
    assert value is not None
    text = f"{value:,.8f}".rstrip("0").rstrip(".")
    return text if text not in {"-0", ""} else "0"


def price(value: float | None) -> str:
    """A price: 2 decimals above 1, more below (``0.004512``)."""
    if _missing(value):
        return DASH
    assert value is not None
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.6g}"


def usd(value: float | None) -> str:
    """An LLM cost in US dollars: ``$0.0123`` (4 decimals: costs are small)."""
    if _missing(value):
        return DASH
    assert value is not None
    return f"${value:,.4f}"


def ts(value: int | None) -> str:
    """Epoch ms as ``2025-01-06 14:00 UTC``."""
    if value is None:
        return DASH
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(ms: float | int | None) -> str:
    """A holding time: ``3 d 4 h``, ``5 h 20 min``, ``45 min``."""
    if _missing(ms):
        return DASH
    assert ms is not None
    minutes = int(ms // 60_000)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"

"""Knowledge leakage: a model may already know what happened in a window before its cutoff.

A backtest whose window starts before the end of a model's training data is
"in-sample for this model": its results may reflect memory, not skill. The
table below gives known models' training-data cutoffs to the month.

The months are APPROXIMATE: gathered from providers' model cards and release
notes as of mid-2025, and providers revise them (an alias such as
``deepseek-chat`` or ``gpt-4o`` moves to newer snapshots). Where sources
disagreed the later month is given: a needless warning costs less than a
missed one. A ``training_cutoff`` in the config's ``[llm]`` (``2024-06`` or
``2024-06-15``) overrides the table, and names the cutoff of a model it lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from strategy_agent.models import ModelConfig

# (pattern searched in the lower-cased model id, last month of training data).
# Most specific first: the first match wins.
KNOWN_CUTOFFS: tuple[tuple[str, str], ...] = (
    # OpenAI
    (r"gpt-4o-mini", "2023-10"),
    (r"gpt-4o", "2023-10"),
    (r"gpt-4\.1", "2024-06"),  # gpt-4.1, -mini, -nano
    (r"gpt-4\.5", "2023-10"),
    (r"gpt-4-turbo", "2023-12"),
    (r"gpt-5-(mini|nano)", "2024-05"),
    (r"gpt-5", "2024-09"),
    (r"(^|/)o4-mini", "2024-06"),
    (r"(^|/)o3-mini", "2023-10"),
    (r"(^|/)o3", "2024-06"),
    (r"(^|/)o1", "2023-10"),
    # Anthropic (both naming orders: claude-3-5-sonnet, claude-sonnet-4)
    (r"claude-3[.-]5-sonnet", "2024-04"),
    (r"claude-3[.-]5-haiku", "2024-07"),
    (r"claude-3[.-]7-sonnet", "2024-11"),
    (r"claude-(sonnet|opus)-4[.-]5", "2025-07"),
    (r"claude-(sonnet|opus)-4|claude-4-(sonnet|opus)", "2025-03"),
    # Google
    (r"gemini-1\.5", "2023-11"),
    (r"gemini-2\.0", "2024-08"),
    (r"gemini-2\.5", "2025-01"),
    # DeepSeek (deepseek-chat is V3, deepseek-reasoner is R1)
    (r"deepseek-(v3|chat)", "2024-07"),
    (r"deepseek-(r1|reasoner)", "2024-07"),
    # Meta Llama 3.x (3, 3.1, 3.2, 3.3; not llama-30b of Llama 1)
    (r"llama-?3(?![0-9])", "2023-12"),
    # Alibaba Qwen
    (r"qwen-?2\.5", "2024-09"),
    (r"qwen-?3(?![0-9])", "2025-03"),
)


@dataclass(frozen=True)
class Cutoff:
    """A model's training cutoff: as written (``2024-06`` or ``2024-06-15``) and where from.

    ``end_ms`` is the first moment after it (epoch ms UTC): the start of the
    next month for a month, of the next day for a day.
    """

    text: str
    end_ms: int
    source: str  # "config" or "table"


def training_cutoff(model: ModelConfig | str) -> Cutoff | None:
    """The model's cutoff: the config's ``training_cutoff``, else the table; ``None`` if unknown.

    ``model`` is a ``ModelConfig`` or a model id (``gpt-4o-mini``,
    ``openai/gpt-4o-mini``). A built-in rule has no cutoff (it learned nothing).
    """
    if isinstance(model, ModelConfig):
        if model.is_builtin:
            return None
        if model.training_cutoff:
            return Cutoff(model.training_cutoff, _end_ms(model.training_cutoff), "config")
        model_id = model.model_id
    else:
        model_id = model
    name = model_id.strip().lower()
    for pattern, month in KNOWN_CUTOFFS:
        if re.search(pattern, name):
            return Cutoff(month, _end_ms(month), "table")
    return None


def in_sample(model: ModelConfig | str, window_start_ms: int) -> str | None:
    """Why a window starting at ``window_start_ms`` (epoch ms) is in-sample, or ``None``.

    ``None`` also when the cutoff is unknown (see ``training_cutoff``).
    """
    cutoff = training_cutoff(model)
    if cutoff is None or window_start_ms >= cutoff.end_ms:
        return None
    return (
        f"in-sample for this model: its training data runs to {cutoff.text}, after the window "
        f"starts ({_day(window_start_ms)})"
    )


def _end_ms(text: str) -> int:
    if len(text) == 7:  # a month: its data runs to the month's end
        year, month = int(text[:4]), int(text[5:7])
        end = date(year + month // 12, month % 12 + 1, 1)
    else:
        end = date.fromordinal(date.fromisoformat(text).toordinal() + 1)
    return int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() * 1000)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")

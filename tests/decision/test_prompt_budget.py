"""The prompt for 3 symbols, with the last plan's rejections, stays within 1,500 tokens.

Runs the benchmark's own context (``bench/prompt_tokens.py``: simulated market,
two open positions, a digest and three rejected items from the real parser and
guardrails) through litellm's offline token counter.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "prompt_tokens.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_prompt_tokens", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_three_symbols_with_rejection_feedback_fit_the_budget() -> None:
    bench = _bench()
    context, _ = bench.context_for(3)
    assert context.feedback is not None
    assert [o.status for o in context.feedback.outcomes] == ["rejected"] * 3
    system = bench.build_system_prompt(context.constraints)
    user = bench.render_context(context)
    assert "last plan, not done as asked:" in user
    litellm = bench.load_litellm()
    total = litellm.token_counter(
        model="openai/gpt-4o-mini",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
    )
    assert total <= bench.TARGET_TOKENS_3_SYMBOLS == 1_500

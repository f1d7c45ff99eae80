"""The fake LLM's latency, and the concurrency benchmark's figures on a small case."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx

from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

BENCH = Path(__file__).resolve().parents[2] / "bench" / "concurrency.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_concurrency", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_fake_llm_answers_automatic_replies_after_its_latency() -> None:
    server = FakeLlmServer(auto_reply=rsi_plan, latency_s=0.3).start()
    try:
        started = time.perf_counter()
        response = httpx.post(
            f"{server.api_base}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=5,
        )
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    assert response.status_code == 200
    assert elapsed >= 0.3
    assert response.json()["usage"]["prompt_tokens"] == 120  # counted usage is off by default


def test_the_fake_llm_can_count_usage_like_a_provider() -> None:
    server = FakeLlmServer(auto_reply=lambda body: "the answer", count_usage=True).start()
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two " * 50}]}
        usage = httpx.post(f"{server.api_base}/chat/completions", json=body, timeout=5).json()[
            "usage"
        ]
    finally:
        server.stop()
    assert 100 <= usage["prompt_tokens"] <= 110  # 100 words plus the message framing
    assert usage["completion_tokens"] == 2


def test_the_benchmark_overlaps_the_llm_calls_of_parallel_strategies() -> None:
    timing = load_bench().measure(strategies=3, latency_s=0.4)
    assert timing.failed_cycles == 0
    assert timing.serial_s >= 3 * 0.4  # one answer after another
    assert 0.4 <= timing.parallel_s < timing.serial_s
    assert timing.ratio == timing.serial_s / timing.parallel_s

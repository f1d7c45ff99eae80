"""The README's offline LLM demo runs from the app's own environment (no test tools in it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_fake_llm_server_starts_without_pytest_installed() -> None:
    # `make run` installs the runtime requirements only: pytest must not be needed
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['hypothesis'] = None\n"
        "from tests.fakes.fake_llm_server import FakeLlmServer\n"
        "server = FakeLlmServer().start(); print(server.api_base); server.stop()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://127.0.0.1:")


def test_the_demo_server_reports_the_tokens_it_received() -> None:
    # the README's backtest compares its token estimate with these figures
    import json
    import urllib.request

    from tests.fakes.fake_llm_server import demo_server

    server = demo_server().start()
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "word " * 400}]}
        request = urllib.request.Request(
            f"{server.api_base}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            usage = json.loads(response.read())["usage"]
    finally:
        server.stop()
    assert usage["prompt_tokens"] > 300  # counted, not a fixed 120


def test_the_demo_llm_samples_above_temperature_0_and_repeats_itself_at_0() -> None:
    import json

    from tests.fakes.fake_llm_server import rsi_plan, sampled_rsi_plan

    table = "market:\nsym|close|rsi_14|max_qty\nBTC/USDT|100|38|2\nETH/USDT|10|66|20"
    reply = sampled_rsi_plan(seed=1)

    def body(temperature: float | None) -> dict[str, object]:
        return {"messages": [{"role": "user", "content": table}], "temperature": temperature}

    for temperature in (None, 0, 0.0):
        assert {reply(body(temperature)) for _ in range(5)} == {rsi_plan(body(temperature))}
    sampled = [json.loads(reply(body(0.7))) for _ in range(30)]
    plans = {json.dumps(plan, sort_keys=True) for plan in sampled}
    assert len(plans) >= 10  # samples differ, as a real model's do at temperature > 0
    actions = {item["action"] for plan in sampled for item in plan["items"]}
    assert actions <= {"buy", "flat", "noop"} and {"buy", "noop"} <= actions
    sizes = {
        item["target_qty"] for plan in sampled for item in plan["items"] if item["action"] == "buy"
    }
    assert all(0.6 <= size <= 1.4 for size in sizes)  # 30-70 % of max_qty 2

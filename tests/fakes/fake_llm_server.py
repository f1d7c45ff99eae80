"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests and demos.

Each test queues the replies it wants (status, body, headers, delay) and
afterwards reads ``requests`` to see exactly what the client sent. Besides
plain text it serves the shapes real providers produce: a plan as a tool call
(``tool_call``), a separate reasoning field, a refusal, a reply cut off by
``max_tokens`` (``reply(..., finish_reason="length")``), a JSON-mode refusal
(``json_mode_refusal``) and OpenAI's billing stop (``insufficient_quota``). litellm talks
to it over real HTTP with ``model="openai/<name>"`` and ``api_base=server.api_base``.
When the queue is empty the server answers 500 with a message that says so,
so a test that forgot a reply fails loudly instead of hanging; unless it was
given ``auto_reply``, which then writes the answer from the request.
``latency_s`` delays every automatic answer (a slow provider, for the
concurrency benchmark); ``count_usage`` makes automatic answers report the
usage a real provider would: the request's messages and the reply counted with
litellm's offline tokenizer (for checking cost estimates), instead of 120/40.

As a demo server (``python -m tests.fakes.fake_llm_server --port 8765``) it
answers every request with ``rsi_plan``: a small RSI rule read from the prompt's
market table, so a strategy can run end to end without a real provider. Asked
at a temperature above 0 it samples, as a real model does: each answer draws
its own thresholds and size (``sampled_rsi_plan``), so ``--samples N`` differ.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ScriptedReply:
    """One answer the server will give: HTTP status, JSON or raw body, headers, delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (``body`` is the parsed JSON, if any)."""

    path: str
    headers: dict[str, str]
    body: Any


def chat_completion(
    content: str | None,
    *,
    model: str = "fake-model",
    prompt_tokens: int = 120,
    completion_tokens: int = 40,
    finish_reason: str = "stop",
    tool_calls: list[tuple[str, Any]] | None = None,
    reasoning_content: str | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    """A minimal, valid ``chat.completion`` body whose message is ``content``.

    ``tool_calls`` is ``[(function name, arguments)]`` (arguments as a JSON string,
    or an object that is encoded); ``reasoning_content`` is DeepSeek's separate
    reasoning field; ``refusal`` is OpenAI's structured-output refusal.
    """
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for index, (name, args) in enumerate(tool_calls)
        ]
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if refusal is not None:
        message["refusal"] = refusal
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(
    message: str, error_type: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


AutoReply = Callable[[Any], str]


class FakeLlmServer:
    """Serves ``POST /v1/chat/completions`` from a queue of scripted replies."""

    def __init__(
        self,
        port: int = 0,
        auto_reply: AutoReply | None = None,
        host: str = "127.0.0.1",
        *,
        latency_s: float = 0.0,
        count_usage: bool = False,
    ) -> None:
        self._auto_reply = auto_reply
        self.latency_s = latency_s
        self.count_usage = count_usage
        self._queue: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        # open keep-alive connections, closed by ``stop`` (a stopped server answers nothing)
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> FakeLlmServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ----------------------------------------------------------------

    def enqueue(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        with self._lock:
            self._queue.append(ScriptedReply(status, body, dict(headers or {}), delay_s))

    def reply(self, content: str | None, delay_s: float = 0.0, **usage: Any) -> None:
        """Queue a successful completion whose assistant message is ``content``."""
        self.enqueue(200, chat_completion(content, **usage), delay_s=delay_s)

    def error(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        error_type: str | None = None,
    ) -> None:
        """Queue an OpenAI-style error answer."""
        if error_type is None:
            error_type = {401: "authentication_error", 429: "rate_limit_error"}.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            )
        self.enqueue(status, error_body(message, error_type, code=error_type), headers)

    def tool_call(
        self, arguments: Any, name: str = "submit_plan", content: str | None = None
    ) -> None:
        """Queue a reply whose plan is in a tool call's arguments (``content`` empty)."""
        self.enqueue(
            200,
            chat_completion(content, tool_calls=[(name, arguments)], finish_reason="tool_calls"),
        )

    def json_mode_refusal(
        self, message: str = "deepseek-reasoner does not support Json Output."
    ) -> None:
        """Queue DeepSeek-reasoner's answer to a request with ``response_format``."""
        self.error(400, message)

    def insufficient_quota(self) -> None:
        """Queue OpenAI's billing stop: a 429 that no retry will fix."""
        self.error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            error_type="insufficient_quota",
        )

    def clear(self) -> None:
        """Forget queued replies and recorded requests (between hypothesis examples)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- serving ------------------------------------------------------------------

    def _next(self, body: Any) -> ScriptedReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._auto_reply is not None:
            model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
            content = self._auto_reply(body)
            usage = counted_usage(body, content) if self.count_usage else {}
            return ScriptedReply(
                200, chat_completion(content, model=model, **usage), delay_s=self.latency_s
            )
        return ScriptedReply(
            500, error_body("fake LLM server: no scripted reply left", "server_error")
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle's algorithm
                # holds the body until the client's delayed ACK (about 40 ms per reply)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, dict(self.headers), body))
                if not self.path.endswith("/chat/completions"):
                    self._send(ScriptedReply(404, error_body(f"no route {self.path}")))
                    return
                scripted = server._next(body)
                if scripted.delay_s and server._stopping.wait(scripted.delay_s):
                    return
                self._send(scripted)

            def _send(self, scripted: ScriptedReply) -> None:
                if isinstance(scripted.body, bytes):
                    payload = scripted.body
                elif isinstance(scripted.body, str):
                    payload = scripted.body.encode("utf-8")
                else:
                    payload = json.dumps(scripted.body).encode("utf-8")
                try:
                    self.send_response(scripted.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in scripted.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

        return Handler


def counted_usage(body: Any, content: str) -> dict[str, int]:
    """Prompt and completion tokens as litellm's offline tokenizer counts them."""
    from strategy_agent.decision.llm_transport import load_litellm

    litellm = load_litellm()
    model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
    messages = body.get("messages", []) if isinstance(body, dict) else []
    return {
        "prompt_tokens": int(litellm.token_counter(model=model, messages=messages)),
        "completion_tokens": int(litellm.token_counter(model=model, text=content)),
    }


def rsi_plan(body: Any) -> str:
    """A demo answer: buy half of max_qty when rsi_14 < 40, go flat above 65, else noop.

    Reads the ``sym|...|rsi_14|...|max_qty`` table of the user message; answers
    an empty plan when the prompt has no such table.
    """
    return _rsi_plan(body, RsiRule())


@dataclass(frozen=True)
class RsiRule:
    """The demo rule's thresholds (RSI points) and size (a fraction of max_qty)."""

    buy_below: float = 40.0
    flat_above: float = 65.0
    size: float = 0.5


def sampled_rsi_plan(seed: int | None = None) -> Callable[[Any], str]:
    """Answers like ``rsi_plan`` at temperature 0 (or none); above 0 each answer draws its
    own rule (buy below 32-48, flat above 57-73, 30-70 % of max_qty), as a sampling model
    varies from call to call. Thread-safe."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def reply(body: Any) -> str:
        temperature = body.get("temperature") if isinstance(body, dict) else None
        if not isinstance(temperature, int | float) or temperature <= 0:
            return rsi_plan(body)
        with lock:
            rule = RsiRule(40 + rng.uniform(-8, 8), 65 + rng.uniform(-8, 8), rng.uniform(0.3, 0.7))
        return _rsi_plan(body, rule)

    return reply


def _rsi_plan(body: Any, rule: RsiRule) -> str:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    user = next((m.get("content") for m in messages if m.get("role") == "user"), "") or ""
    lines = user.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("sym|")), None)
    items: list[dict[str, Any]] = []
    if header_at is not None:
        columns = lines[header_at].split("|")
        for line in lines[header_at + 1 :]:
            cells = line.split("|")
            if len(cells) != len(columns):
                break
            items.append(_rsi_item(dict(zip(columns, cells, strict=True)), rule))
    return json.dumps({"items": items, "notes": "demo RSI rule from the fake LLM server"})


def _rsi_item(row: dict[str, str], rule: RsiRule) -> dict[str, Any]:
    symbol = row["sym"]
    try:
        rsi = float(row.get("rsi_14", "nan"))
        max_qty = float(row.get("max_qty", "nan"))
    except ValueError:
        return {"instrument": symbol, "action": "noop", "target_qty": 0, "confidence": 0.5}
    if rsi < rule.buy_below and max_qty == max_qty:
        target = float(f"{max_qty * rule.size:.6g}")
        return {
            "instrument": symbol,
            "action": "buy",
            "target_qty": target,
            "confidence": 0.7,
            "rationale": f"rsi {rsi:.0f} is low",
        }
    if rsi > rule.flat_above:
        return {
            "instrument": symbol,
            "action": "flat",
            "target_qty": 0,
            "confidence": 0.7,
            "rationale": f"rsi {rsi:.0f} is high",
        }
    return {
        "instrument": symbol,
        "action": "noop",
        "target_qty": 0,
        "confidence": 0.5,
        "rationale": "no edge",
    }


def varied_replies() -> Callable[[Any], str]:
    """Automatic answers that differ from call to call, as samples at temperature > 0 do.

    Thread-safe (several backtest runs ask at once): every third call buys a small,
    varying quantity, the next closes, the next answers like ``rsi_plan``.
    """
    calls = itertools.count()
    lock = threading.Lock()

    def reply(body: Any) -> str:
        with lock:
            n = next(calls)
        plan = json.loads(rsi_plan(body))
        for item in plan["items"]:
            if n % 3 == 0:
                item.update(action="buy", target_qty=0.01 * (1 + n % 5), confidence=0.6)
            elif n % 3 == 1:
                item.update(action="flat", target_qty=0)
        return json.dumps(plan)

    return reply


def demo_server(port: int = 0) -> FakeLlmServer:
    """The demo LLM (not started): answers ``rsi_plan`` (sampled above temperature 0:
    ``sampled_rsi_plan``) and reports the tokens it really received, as a provider
    would, so a backtest's estimate-vs-actual line means something."""
    return FakeLlmServer(port=port, auto_reply=sampled_rsi_plan(), count_usage=True)


def main(argv: list[str] | None = None) -> int:
    """Serve the demo LLM (``demo_server``) on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible LLM for demos")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = demo_server(args.port).start()
    print(f"fake LLM listening on {server.api_base} (model: any; key: any)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

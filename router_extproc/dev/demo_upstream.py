"""A DEMO OpenAI-compatible upstream, standing in for a vLLM server in `make run` and the tests.

It does not run a model: it answers deterministically, names itself as a demo in every answer, and
reports what it received so tests can see which model the router picked. Test hooks (request headers):
  x-demo-status: N        answer with HTTP status N (an OpenAI-shaped error body)
  x-demo-latency-ms: N    wait N ms before answering (overrides --latency-ms)
  x-demo-drop: 1          for streams, close the connection after the first chunk (no [DONE])
  x-demo-chunk-delay-ms: N  for streams, wait N ms before each chunk after the role chunk (so a drop happens
                          after the client already has the response headers: a truncated stream, not a 502)
  x-demo-echo: 1          include the received body and headers as `demo_received`, `demo_headers`
  x-demo-bad-chunk: 1     for chat streams, send one chunk whose `choices` is not a list of objects (a hostile
                          upstream: the router's response tap must stop storing, not break the client's stream)
`POST /v1/completions` and `POST /v1/responses` get answers of their own API's shape (still canned text), so the
router's guards and routing can be tested on those APIs. `GET /demo/stats` returns how many requests it served.
A chat stream with `stream_options.include_usage` ends with OpenAI's usage-only chunk (choices: []).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _last_input(body: dict[str, Any]) -> str:
    """The text to echo: the last user message (chat), the prompt (completions) or the input (responses)."""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c)
    for key in ("prompt", "input"):
        value = body.get(key)
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value)
    return ""


def _answer_text(model: str, body: dict[str, Any]) -> str:
    last = _last_input(body)
    digest = hashlib.sha256(last.encode()).hexdigest()[:8]
    thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
    mode = "" if thinking is None else (" (thinking)" if thinking else " (no thinking)")
    return f"[demo upstream {model}{mode}] answer {digest} to: {last[:120]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the second waits for the peer's delayed
    # ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: DemoServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-demo-upstream", self.server.model)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/v1/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.server.model, "object": "model", "created": 0, "owned_by": "demo-upstream"}]})
        elif self.path.startswith("/demo/stats"):
            self._send_json(200, {"model": self.server.model, "requests": self.server.requests})
        elif self.path.startswith("/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        api = self.path.split("?", 1)[0]
        if api not in ("/v1/chat/completions", "/v1/completions", "/v1/responses"):
            self._send_json(404, {"error": {"message": f"demo upstream has no {self.path}", "type": "not_found"}})
            return
        with self.server.lock:
            self.server.requests += 1
        latency = float(self.headers.get("x-demo-latency-ms") or self.server.latency_ms)
        if latency > 0:
            time.sleep(latency / 1000)
        forced = self.headers.get("x-demo-status")
        if forced and forced.isdigit() and int(forced) != 200:
            self._send_json(int(forced), {"error": {"message": f"demo upstream forced status {forced}",
                                                    "type": "demo_error", "code": int(forced)}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        received_model = str(body.get("model", ""))
        text = _answer_text(received_model, body)
        cid = "chatcmpl-demo" + hashlib.sha256(raw).hexdigest()[:16]
        created = int(time.time())
        headers = {"x-demo-received-model": received_model}
        if api != "/v1/chat/completions":
            self._other_api(api, body, cid, created, text, headers)
            return
        if body.get("stream"):
            self._body, self._prompt_tokens = body, len(raw) // 4
            self._stream(cid, created, received_model, text, headers)
            return
        obj: dict[str, Any] = {
            "id": cid, "object": "chat.completion", "created": created, "model": received_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(text) // 4,
                      "total_tokens": (len(raw) + len(text)) // 4},
            "system_fingerprint": "demo-upstream",
        }
        if self.headers.get("x-demo-echo"):
            obj["demo_received"] = body
            obj["demo_headers"] = {k.lower(): v for k, v in self.headers.items()}
        self._send_json(200, obj, headers)

    def _other_api(self, api: str, body: dict[str, Any], cid: str, created: int, text: str,
                   headers: dict[str, str]) -> None:
        """Legacy completions and Responses answers: the same canned text in that API's shape."""
        model = headers["x-demo-received-model"]
        if api == "/v1/completions":
            obj: dict[str, Any] = {"id": "cmpl-" + cid[13:], "object": "text_completion", "created": created,
                                   "model": model, "choices": [{"index": 0, "text": text, "logprobs": None,
                                                                "finish_reason": "stop"}]}
            events = [("", {**obj, "choices": [{"index": 0, "text": text, "finish_reason": None}]}),
                      ("", obj), ("", "[DONE]")]
        else:
            message = {"type": "message", "id": "msg_" + cid[13:], "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]}
            obj = {"id": "resp_" + cid[13:], "object": "response", "created_at": created, "model": model,
                   "status": "completed", "output": [message], "output_text": text}
            events = [("response.output_text.delta", {"type": "response.output_text.delta", "delta": text}),
                      ("response.completed", {"type": "response.completed", "response": obj})]
        if self.headers.get("x-demo-echo"):
            obj["demo_received"] = body
        if not body.get("stream"):
            self._send_json(200, obj, headers)
            return
        emit = self._start_stream(headers)
        for event, payload in events:
            emit(payload if isinstance(payload, str) else json.dumps(payload), event)
        self._end_stream()

    def _start_stream(self, headers: dict[str, str]):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-demo-upstream", self.server.model)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

        def emit(payload: str, event: str = "") -> None:
            data = (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        return emit

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _stream(self, cid: str, created: int, model: str, text: str, headers: dict[str, str]) -> None:
        emit = self._start_stream(headers)

        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            return json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        emit(chunk({"role": "assistant", "content": ""}, None))
        if self.headers.get("x-demo-bad-chunk"):
            emit(json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": ["not an object", 7]}))
        # Reliability hook (tests/reliability): pace the chunks, so a drop can land mid-stream.
        pace = float(self.headers.get("x-demo-chunk-delay-ms") or 0) / 1000
        words = text.split(" ")
        for i, w in enumerate(words):
            if pace > 0:
                time.sleep(pace)
            emit(chunk({"content": w if i == 0 else " " + w}, None))
            if self.headers.get("x-demo-drop"):
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)
                return
        emit(chunk({}, "stop"))
        if (self._body.get("stream_options") or {}).get("include_usage"):   # OpenAI's usage-only final chunk
            emit(json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": [], "usage": {"prompt_tokens": self._prompt_tokens,
                                                      "completion_tokens": len(words),
                                                      "total_tokens": self._prompt_tokens + len(words)}}))
        emit("[DONE]")
        self._end_stream()


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, model: str, latency_ms: float = 0.0, verbose: bool = False) -> None:
        super().__init__((host, port), _Handler)
        self.model = model
        self.latency_ms = latency_ms
        self.verbose = verbose
        self.requests = 0
        self.lock = threading.Lock()


def serve(host: str, port: int, model: str, latency_ms: float, verbose: bool = False) -> None:
    server = DemoServer(host, port, model, latency_ms, verbose)
    print(f"demo upstream (not a real model) '{model}' on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["DemoServer", "HTTPStatus", "serve"]

"""A fake OpenAI-compatible chat-completions server with scripted replies.

Why: the LLM is an edge we do not own (cost, latency, nondeterminism). Pointing the real
``ChatOpenAI(base_url=f"{fake.url}/v1", api_key="test", model="scripted")`` at this fake
exercises our real client stack (LangChain -> openai SDK -> HTTP) while the test decides
what the model "says", how it fails, and can read back exactly which prompt was sent.

Note the openai SDK retries 408/409/429/5xx twice by default with 0.5-8 s backoff: build
the client with ``max_retries=0`` or give ``Error(retry_after=...)`` to keep tests fast.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

JSONDict = dict[str, Any]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class Error:
    """Scripted failure: answer with HTTP ``status`` and an OpenAI-style error body."""

    status: int
    message: str = "scripted error"
    retry_after: float | None = None  # sent as retry-after-ms, which the openai SDK honours


@dataclass(frozen=True)
class Slow:
    """Scripted latency: wait ``seconds`` before replying ``content`` (for timeout tests)."""

    seconds: float
    content: str


Reply = str | Error | Slow


def _text_of(content: Any) -> str:
    """Message content may be a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _count_tokens(text: str) -> int:
    """Crude whitespace token count; only needs to be plausible, not exact."""
    return len(text.split())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive with Nagle off, so scripted replies are not delayed ~40 ms."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging."""

    def do_GET(self) -> None:
        self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        fake = cast(_Server, self.server).fake
        if path == "/v1/models":
            created = int(time.time())
            models = [{"id": m, "object": "model", "created": created, "owned_by": "fake"} for m in fake.models]
            self._send_json(200, {"object": "list", "data": models})
        elif path.startswith("/v1/models/") and path.removeprefix("/v1/models/") in fake.models:
            model = path.removeprefix("/v1/models/")
            self._send_json(200, {"id": model, "object": "model", "created": 0, "owned_by": "fake"})
        else:
            self._send_error(Error(404, f"Unknown path {path}"))

    def do_POST(self) -> None:
        raw = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        if path != "/v1/chat/completions":
            self._send_error(Error(404, f"Unknown path {path}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_error(Error(400, "We could not parse the JSON body of your request."))
            return
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            self._send_error(Error(400, "'model' and a list of 'messages' are required."))
            return
        fake = cast(_Server, self.server).fake
        reply = fake._next_reply(body)
        if isinstance(reply, Slow):
            if fake._stopping.wait(reply.seconds):
                self.close_connection = True
                return
            reply = reply.content
        if isinstance(reply, Error):
            self._send_error(reply)
        elif body.get("stream"):
            self._stream(fake, body, reply)
        else:
            self._send_json(200, fake._completion(body, reply))

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_error(self, error: Error) -> None:
        kind = _ERROR_TYPES.get(error.status, "server_error" if error.status >= 500 else "invalid_request_error")
        headers = {}
        if error.retry_after is not None:
            headers["retry-after-ms"] = str(int(error.retry_after * 1000))
        body = {"error": {"message": error.message, "type": kind, "param": None, "code": None}}
        self._send_json(error.status, body, headers)

    def _send_json(self, status: int, payload: JSONDict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", "req_fake")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, fake: FakeOpenAI, body: JSONDict, content: str) -> None:
        """Server-sent events, one chunk per word, sent with chunked transfer encoding."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in fake._stream_events(body, content):
                data = f"data: {event}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class FakeOpenAI:
    """In-process OpenAI chat-completions double; public methods are thread-safe."""

    def __init__(self, default_reply: str = "Scripted default reply.", models: tuple[str, ...] = ("scripted",)) -> None:
        self.default_reply = default_reply
        self.models = models
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._requests: list[JSONDict] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAI:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="FakeOpenAI", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Cut short any Slow replies and shut the server down."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT`` (the OpenAI base_url is ``url + "/v1"``)."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """Value for ``ChatOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    def script(self, *replies: Reply) -> None:
        """Replace the pending script; each chat request consumes one reply, then ``default_reply`` repeats."""
        with self._lock:
            self._script = deque(replies)

    @property
    def remaining(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[JSONDict]:
        """Every valid chat-completions request body received, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def last_request(self) -> JSONDict:
        """The most recent request body; AssertionError if there was none."""
        with self._lock:
            if not self._requests:
                raise AssertionError("FakeOpenAI received no chat-completions request")
            return copy.deepcopy(self._requests[-1])

    def _next_reply(self, body: JSONDict) -> Reply:
        with self._lock:
            self._requests.append(copy.deepcopy(body))
            return self._script.popleft() if self._script else self.default_reply

    def _usage(self, body: JSONDict, content: str) -> JSONDict:
        prompt = sum(_count_tokens(_text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        completion = _count_tokens(content)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: JSONDict, content: str) -> JSONDict:
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(body, content),
        }

    def _stream_events(self, body: JSONDict, content: str) -> list[str]:
        base = {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: JSONDict, finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return json.dumps({**base, "choices": [choice]})

        pieces = content.split(" ")
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece if i == 0 else " " + piece}) for i, piece in enumerate(pieces)]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(json.dumps({**base, "choices": [], "usage": self._usage(body, content)}))
        events.append("[DONE]")
        return events

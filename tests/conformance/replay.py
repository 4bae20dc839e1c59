"""Replay recorded-by-hand provider responses over real loopback HTTP.

A *case* (``cases/<provider>/<name>.json``) holds what a provider's server sends for
one or more requests: the status, the headers and the exact body bytes, either inline
(``body``) or in a file beside it (``body_file``, e.g. an ``.sse`` stream). Every case
names the published document it is written from (``source``).

:class:`ReplayServer` is a stdlib HTTP/1.1 server on 127.0.0.1 (port 0) in a thread.
It answers the n-th request with the case's n-th response, byte for byte, and records
every request (method, path, query, headers, body) so a test can check what the SDK
really sent. A stream body goes out the way a real server sends it: close-delimited
(``Connection: close``, no length) or with ``Transfer-Encoding: chunked``, one chunk per
SSE event. A request past the end of the case gets a 599 whose body says so, which no
adapter mistakes for a provider answer.

A response may also hold ``keepalive`` bytes (e.g. Anthropic's ``ping`` event) sent
at an interval after the body while the connection stays open.

Header values may hold ``@http-date(+N)``: the HTTP-date N seconds from the moment the
response is sent, so a ``retry-after`` date stays in the future whenever the test runs.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

CASES = Path(__file__).parent / "cases"
Framing = Literal["close", "chunked", "length"]
_HTTP_DATE = re.compile(r"@http-date\(([+-]?\d+)\)")
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n")


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    framing: Framing = "length"
    keepalive: bytes = b""
    """Sent every ``keepalive_every_s`` after the body, for up to ``keepalive_for_s``
    or until the client hangs up: a server that is alive but sends nothing else."""
    keepalive_every_s: float = 0.2
    keepalive_for_s: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    provider: str
    source: dict[str, str]
    description: str
    responses: list[Response]


def _response(spec: dict[str, Any], folder: Path) -> Response:
    if "body_file" in spec:
        body = (folder / spec["body_file"]).read_bytes()
    else:
        body = spec.get("body", "").encode("utf-8")
    headers = [(str(k), str(v)) for k, v in spec.get("headers", {}).items()]
    framing = spec.get("framing")
    if framing is None:
        streamed = any(k.lower() == "content-type" and "event-stream" in v for k, v in headers)
        framing = "close" if streamed else "length"
    keepalive = spec.get("keepalive", {})
    return Response(status=int(spec["status"]), headers=headers, body=body, framing=framing,
                    keepalive=keepalive.get("bytes", "").encode("utf-8"),
                    keepalive_every_s=float(keepalive.get("every_s", 0.2)),
                    keepalive_for_s=float(keepalive.get("for_s", 0.0)))


def load_case(provider: str, name: str) -> Case:
    """Read ``cases/<provider>/<name>.json`` (and any body files it names)."""
    folder = CASES / provider
    spec = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    source = spec["source"]
    if not (source.get("title") and source.get("url")):
        raise ValueError(f"case {provider}/{name} does not name the document it is written from")
    return Case(name=name, provider=spec["provider"], source=source, description=spec.get("description", ""),
                responses=[_response(r, folder) for r in spec["responses"]])


def all_cases() -> list[tuple[str, str]]:
    return sorted((p.parent.name, p.stem) for p in CASES.glob("*/*.json"))


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived on the socket."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _render(value: str) -> str:
    return _HTTP_DATE.sub(lambda m: email.utils.formatdate(time.time() + int(m.group(1)), usegmt=True), value)


def _events(body: bytes) -> list[bytes]:
    """Split a stream body after each event's blank line (kept with its event)."""
    pieces: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(body):
        pieces.append(body[start:match.end()])
        start = match.end()
    if start < len(body):
        pieces.append(body[start:])
    return pieces


@dataclass
class _State:
    case: Case
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_response(self, request: Recorded) -> Response | None:
        with self.lock:
            index = len(self.requests)
            self.requests.append(request)
        responses = self.case.responses
        return responses[index] if index < len(responses) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the test output is the record."""

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        request = Recorded(method=self.command, path=parts.path, query=parse_qs(parts.query),
                           headers={k.lower(): v for k, v in self.headers.items()}, body=self._read_body())
        response = self.server.state.next_response(request)
        if response is None:
            body = f"replay: case {self.server.state.case.name} has no response #{len(self.server.state.requests)}"
            response = Response(status=599, headers=[("Content-Type", "text/plain")], body=body.encode())
        self.send_response_only(response.status)
        if not any(name.lower() == "date" for name, _ in response.headers):
            self.send_header("Date", self.date_time_string())
        for name, value in response.headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, _render(value))
        if response.framing == "length":
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        elif response.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in _events(response.body):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in _events(response.body):
                self.wfile.write(piece)
                self.wfile.flush()
            self._keep_alive(response)
        self.wfile.flush()
        self.close_connection = response.framing != "length"

    def _keep_alive(self, response: Response) -> None:
        deadline = time.monotonic() + response.keepalive_for_s
        while response.keepalive and time.monotonic() < deadline:
            if self.server.stopping.wait(response.keepalive_every_s):
                return
            try:
                self.wfile.write(response.keepalive)
                self.wfile.flush()
            except OSError:
                return  # the client hung up, as it should

    do_POST = _answer
    do_GET = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State
    stopping: threading.Event


class ReplayServer:
    """``with ReplayServer(case) as server:`` point an SDK at ``server.url``."""

    def __init__(self, case: Case) -> None:
        self._state = _State(case)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self._state
        self._server.stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"replay-{case.name}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

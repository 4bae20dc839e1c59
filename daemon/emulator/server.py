"""The emulator's HTTP server: stdlib ``ThreadingHTTPServer`` on loopback.

The real SDKs (httpx underneath) talk to it exactly as to the real services, so
tests exercise the whole client stack. Plain JSON answers carry Content-Length and
keep the connection alive (SDK retries reuse it); streams are sent close-delimited
(``Connection: close``, no length), which is how a dropped stream can be emulated
faithfully: closing early looks to the SDK like a connection that ended.

The API key is checked and then forgotten: it is never logged or recorded.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import anthropic_wire, gemini_wire
from .default_reply import Conversation, default_reply
from .script import Failure, ProviderName, ReceivedRequest, Reply, Script, Step

log = logging.getLogger(__name__)

GEMINI_PATH = re.compile(r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
ANTHROPIC_PATH = "/v1/messages"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], script: Script, invalid_key_prefix: str,
                 stopping: threading.Event) -> None:
        super().__init__(address, _Handler)
        self.script = script
        self.invalid_key_prefix = invalid_key_prefix
        self.stopping = stopping


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("emulator %s - %s", self.address_string(), format % args)

    # -- plumbing -------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the emulator stops meanwhile; True when it is stopping."""
        return seconds > 0 and self.server.stopping.wait(seconds)

    def _stream(self, events: list[bytes], delay: float, tail: bytes | None = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for number, event in enumerate(events):
            if number and self._wait(delay):
                return
            self.wfile.write(event)
            self.wfile.flush()
        if tail is not None:
            self.wfile.write(tail)
            self.wfile.flush()

    # -- routing --------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if urlsplit(self.path).path in ("/", "/health"):
            self._send_json(200, {"emulator": True, "providers": ["anthropic", "gemini"]})
        else:
            self._send_json(404, {"error": {"code": 404, "message": "Not found.", "status": "NOT_FOUND"}})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if url.path == ANTHROPIC_PATH:
                self._anthropic(url.path, raw)
            elif match := GEMINI_PATH.match(url.path):
                self._gemini(url.path, parse_qs(url.query), match.group(2), match.group(3), raw)
            else:
                self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                 "message": f"Not found: {url.path}"}})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout): nothing to answer
        except Exception as exc:  # a request shape the wire modules did not foresee: answer, never die
            log.warning("emulator could not handle %s: %r", url.path, exc)
            self.close_connection = True
            wire = anthropic_wire if url.path == ANTHROPIC_PATH else gemini_wire
            try:
                self._send_json(400, wire.error_body(400, f"The emulator cannot read this request ({type(exc).__name__})."))
            except OSError:
                pass

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _failure_delay(self, step: Step | None) -> bool:
        """Honour a scripted delay; True when the emulator is stopping."""
        return isinstance(step, Failure) and self._wait(step.delay)

    # -- Anthropic ------------------------------------------------------------

    def _anthropic(self, path: str, raw: bytes) -> None:
        wire = anthropic_wire
        problem = wire.check_auth(self.headers, self.server.invalid_key_prefix)
        if problem:
            self._send_json(problem[0], wire.error_body(*problem))
            return
        body = self._decode(raw)
        if body is None:
            self._send_json(400, wire.error_body(400, "There was an error parsing the body: not a JSON object"))
            return
        try:
            model, stream, conv = wire.parse_request(body)
        except wire.WireError as exc:
            self._send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        self._answer(ReceivedRequest("anthropic", model, path, body, stream), conv, wire,
                     wire.render_message, sse=True)

    # -- Gemini ---------------------------------------------------------------

    def _gemini(self, path: str, query: dict[str, list[str]], model: str, method: str, raw: bytes) -> None:
        wire = gemini_wire
        problem = wire.check_auth(self.headers, query, self.server.invalid_key_prefix)
        if problem:
            self._send_json(problem["error"]["code"], problem)
            return
        body = self._decode(raw)
        if body is None:
            self._send_json(400, wire.error_body(400, "Invalid JSON payload received."))
            return
        stream = method == "streamGenerateContent"
        try:
            conv = wire.parse_request(model, stream, body)
        except wire.WireError as exc:
            self._send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        self._answer(ReceivedRequest("gemini", model, path, body, stream), conv, wire,
                     wire.render_response, sse=(query.get("alt") or [""])[0] == "sse")

    def _answer(self, request: ReceivedRequest, conv: Conversation, wire: Any,
                render_plain: Any, sse: bool) -> None:
        """Record the request, take the provider's next scripted step, and answer it:
        an error, a plain response, or a (possibly cut or corrupted) stream."""
        self.server.script.record(request)
        step = self.server.script.next_step(request.provider)
        if self._failure_delay(step):
            return
        stream = request.stream
        if isinstance(step, Failure) and step.status is not None and (step.in_stream_after is None or not stream):
            self._send_json(step.status, wire.error_body(step.status, step.message), _retry_headers(step))
            return
        reply = _reply_for(step, conv)
        tokens = wire.input_tokens(request.body)
        if not stream:
            self._send_json(200, render_plain(reply, request.model, tokens))
            return
        events, closing_at = wire.render_events(reply, request.model, tokens)
        if not sse:  # a stream asked for without alt=sse: Gemini answers a JSON array
            self._send_json(200, [json.loads(e.decode().removeprefix("data: ")) for e in events])
            return
        self._stream(*_shape(step, events, closing_at, reply.chunk_delay, wire))


def _retry_headers(step: Failure) -> dict[str, str]:
    if step.retry_after is None:
        return {}
    return {"retry-after": f"{step.retry_after:g}"}


def _reply_for(step: Step | None, conv: Conversation) -> Reply:
    if isinstance(step, Reply):
        return step
    if isinstance(step, Failure) and step.reply is not None:
        return step.reply
    return default_reply(conv)


def _shape(step: Step | None, events: list[bytes], closing_at: int, delay: float,
           wire: Any) -> tuple[list[bytes], float, bytes | None]:
    """Apply a scripted cut, corruption or in-stream error to a stream's events."""
    if not isinstance(step, Failure):
        return events, delay, None
    if step.cut_after is not None:
        return events[: min(step.cut_after, closing_at)], delay, None
    if step.malformed_after is not None:
        return events[: min(step.malformed_after, closing_at)], delay, wire.malformed_event()
    if step.in_stream_after is not None and step.status is not None:
        return events[: min(step.in_stream_after, closing_at)], delay, wire.error_event(step.status, step.message)
    return events, delay, None


class Emulator:
    """A provider emulator running in a background thread.

    ``url`` is the base URL for both SDKs (``base_url=emu.url``). Keys starting with
    ``invalid_key_prefix`` are rejected the way each provider rejects a bad key.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, invalid_key_prefix: str = "invalid") -> None:
        self._address = (host, port)
        self._invalid_key_prefix = invalid_key_prefix
        self._script = Script()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, self._script, self._invalid_key_prefix, self._stopping)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="duologue-emulator", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def script(self, provider: ProviderName, *steps: Step) -> None:
        """Queue steps for a provider; each request consumes one, in order."""
        self._script.push(provider, steps)

    def pending(self, provider: ProviderName) -> int:
        """How many scripted steps are still queued for a provider."""
        return self._script.pending(provider)

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every accepted request so far (a snapshot), oldest first."""
        return self._script.received

    def reset(self) -> None:
        """Forget queued steps and received requests."""
        self._script.reset()

    def stop(self) -> None:
        """Stop serving; delayed or streaming handlers give up promptly."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 0, *, invalid_key_prefix: str = "invalid") -> None:
    """Run the emulator in the foreground until interrupted (manual use)."""
    emulator = Emulator(host, port, invalid_key_prefix=invalid_key_prefix).start()
    print(f"duologue provider emulator listening on {emulator.url} (anthropic + gemini)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()

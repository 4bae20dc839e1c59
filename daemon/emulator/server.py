"""The emulator's HTTP server: stdlib ``ThreadingHTTPServer`` on loopback.

The real SDKs (httpx underneath) talk to it exactly as to the real services, so
tests exercise the whole client stack. Plain JSON answers carry Content-Length and
keep the connection alive (SDK retries reuse it); streams are sent close-delimited
(``Connection: close``, no length), which is how a dropped stream can be emulated
faithfully: closing early looks to the SDK like a connection that ended.

Routes: ``POST /v1/messages`` and ``GET /v1/models[/{id}]`` (Anthropic),
``POST /{version}/models/{id}:generateContent|streamGenerateContent`` and
``GET /{version}/models[/{id}]`` (Gemini). ``GET /v1/models`` is Gemini's when the
request carries a Google key, Anthropic's otherwise.

Every request must carry the emulator's own key for its provider (see
:mod:`.access`); the check comes first, before the body is read. The key is never
logged or recorded.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import anthropic_stream, anthropic_wire, gemini_stream, gemini_wire
from .access import checked_keys, fresh_keys
from .caching import PromptCache
from .default_reply import Conversation, default_reply
from .failures import StreamShape, custom_body, retry_headers, shape
from .model_listing import claude_models_page, gemini_model_page
from .models import ModelTable
from .script import Failure, ProviderName, ReceivedRequest, Reply, Script, Step
from .signing import Signer

log = logging.getLogger(__name__)

GEMINI_PATH = re.compile(r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
GEMINI_MODELS_PATH = re.compile(r"^/(v1beta|v1alpha|v1)/models(?:/([^/:]+))?$")
ANTHROPIC_PATH = "/v1/messages"
ANTHROPIC_MODELS_PATH = re.compile(r"^/v1/models(?:/([^/:]+))?$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.script = emulator._script
        self.api_keys = emulator.api_keys
        self.stopping = emulator._stopping
        self.models = emulator.models
        self.signer = emulator._signer
        self.cache = emulator.cache


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("emulator %s - %s", self.address_string(), format % args)

    # -- plumbing -------------------------------------------------------------

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the emulator stops meanwhile; True when it is stopping."""
        return seconds > 0 and self.server.stopping.wait(seconds)

    def _client_gone(self) -> bool:
        """True once the client closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream(self, events: list[bytes], delay: float, tail: bytes | None = None, *,
                keepalive: bytes | None = None, interval: float = 1.0) -> None:
        """Send a close-delimited event stream. With ``keepalive`` (the bytes to repeat,
        b"" for none) the stream then idles until the client leaves or the emulator
        stops. bench/fanout.py wraps this method, so its first three parameters stay."""
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
        while keepalive is not None and not self._client_gone():
            if keepalive:  # Anthropic keeps a stream alive with ping events; Gemini sends nothing
                self.wfile.write(keepalive)
                self.wfile.flush()
            if self._wait(interval if keepalive else 0.05):
                return

    def _send_shaped(self, plan: StreamShape, delay: float, ping: bytes) -> None:
        if plan.keepalive:
            self._stream(plan.events, delay, plan.tail, keepalive=ping, interval=plan.interval)
        else:
            self._stream(plan.events, delay, plan.tail)

    def _refused(self, provider: ProviderName, query: dict[str, list[str]]) -> bool:
        """Answer a request without this emulator's key for ``provider`` as that
        provider answers a bad key; True when it was refused."""
        key = self.server.api_keys[provider]
        refusal: tuple[int, dict[str, Any]] | None = None
        if provider == "anthropic":
            problem = anthropic_wire.check_auth(self.headers, key)
            if problem is not None:
                refusal = problem[0], anthropic_wire.error_body(*problem)
        elif (body := gemini_wire.check_auth(self.headers, query, key)) is not None:
            refusal = body["error"]["code"], body
        if refusal is not None:
            self._send_json(*refusal)
        return refusal is not None

    def _send_failure(self, step: Failure, body: dict[str, Any]) -> None:
        custom = custom_body(step)
        if custom is not None:
            self._send_bytes(step.status or 500, custom[0], custom[1], retry_headers(step))
        else:
            self._send_json(step.status or 500, body, retry_headers(step))

    # -- routing --------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        google = bool(self.headers.get("x-goog-api-key") or query.get("key"))
        claude_listing = None if google else ANTHROPIC_MODELS_PATH.match(url.path)
        gemini_listing = None if claude_listing else GEMINI_MODELS_PATH.match(url.path)
        provider: ProviderName = "gemini" if gemini_listing or (google and not claude_listing) else "anthropic"
        try:
            if self._refused(provider, query):
                return
            if url.path in ("/", "/health"):
                self._send_json(200, {"emulator": True, "providers": ["anthropic", "gemini"]})
            elif claude_listing:
                self._send_json(*claude_models_page(self.server.models, claude_listing.group(1), query))
            elif gemini_listing:
                self._send_json(*gemini_model_page(self.server.models, gemini_listing.group(1),
                                                   gemini_listing.group(2), query))
            else:
                self._send_json(404, {"error": {"code": 404, "message": "Not found.", "status": "NOT_FOUND"}})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        gemini_route = GEMINI_PATH.match(url.path)
        google = bool(self.headers.get("x-goog-api-key") or query.get("key"))
        provider: ProviderName = "gemini" if gemini_route or (google and url.path != ANTHROPIC_PATH) else "anthropic"
        try:
            if self._refused(provider, query):
                self.close_connection = True  # its body stays unread: this connection is done
                return
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path == ANTHROPIC_PATH:
                self._anthropic(url.path, raw)
            elif gemini_route:
                self._gemini(url.path, query, gemini_route.groups(), raw)
            else:
                self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                 "message": f"Not found: {url.path}"}})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout): nothing to answer
        except Exception as exc:  # a request shape the wire modules did not foresee: answer, never die
            log.warning("emulator could not handle %s: %r", url.path, exc, exc_info=True)
            self.close_connection = True
            wire = anthropic_wire if url.path == ANTHROPIC_PATH else gemini_wire
            try:
                reason = f"The emulator cannot read this request ({type(exc).__name__})."
                self._send_json(400, wire.error_body(400, reason))
            except OSError:
                pass

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _take_step(self, request: ReceivedRequest) -> tuple[Step | None, bool]:
        """Record the request and take the provider's next step; True when stopping."""
        self.server.script.record(request)
        step = self.server.script.next_step(request.provider)
        return step, isinstance(step, Failure) and self._wait(step.delay)

    # -- Anthropic ------------------------------------------------------------

    def _anthropic(self, path: str, raw: bytes) -> None:
        wire = anthropic_wire
        body = self._decode(raw)
        if body is None:
            self._send_json(400, wire.error_body(400, "There was an error parsing the body: not a JSON object"))
            return
        try:
            request = wire.parse_request(body, self.server.models, self.server.signer)
        except wire.WireError as exc:
            self._send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        received = ReceivedRequest("anthropic", request.model.id, path, body, request.stream)
        step, stopping = self._take_step(received)
        if stopping:
            return
        if isinstance(step, Failure) and _answers_with_error(step, request.stream):
            self._send_failure(step, wire.error_body(step.status, step.message))
            return
        bill = self.server.cache.bill_claude(request.model.id, request.segments, request.breakpoints,
                                             request.model.min_cache_tokens)
        received.billed.update(prompt_tokens=bill.input_tokens + bill.cache_read + bill.cache_creation,
                               input_tokens=bill.input_tokens, cache_read_tokens=bill.cache_read,
                               cache_write_5m_tokens=bill.cache_write_5m, cache_write_1h_tokens=bill.cache_write_1h)
        reply = _reply_for(step, request.conv)
        signer = self.server.signer
        if not request.stream:
            self._send_json(200, anthropic_stream.render_message(reply, request, bill, signer))
            return
        events, closing_at = anthropic_stream.render_events(reply, request, bill, signer)
        self._send_shaped(shape(step, events, closing_at, anthropic_stream), reply.chunk_delay,
                          anthropic_stream.ping_event())

    # -- Gemini ---------------------------------------------------------------

    def _gemini(self, path: str, query: dict[str, list[str]], route: tuple[str, ...], raw: bytes) -> None:
        version, model_id, method = route
        wire = gemini_wire
        body = self._decode(raw)
        if body is None:
            self._send_json(400, wire.error_body(400, "Invalid JSON payload received."))
            return
        stream = method == "streamGenerateContent"
        try:
            request = wire.parse_request(model_id, stream, body, version=version, models=self.server.models,
                                         signer=self.server.signer)
        except wire.WireError as exc:
            self._send_json(exc.status, wire.error_body(exc.status, exc.message))
            return
        received = ReceivedRequest("gemini", model_id, path, body, stream)
        step, stopping = self._take_step(received)
        if stopping:
            return
        if isinstance(step, Failure) and _answers_with_error(step, stream):
            self._send_failure(step, wire.error_body(step.status, step.message, retry_delay=step.retry_delay,
                                                     model=model_id))
            return
        prompt, cached = self.server.cache.bill_gemini(request.model.id, request.segments,
                                                       request.model.min_cache_tokens)
        received.billed.update(prompt_tokens=prompt, input_tokens=prompt - cached, cache_read_tokens=cached,
                               cache_write_5m_tokens=0, cache_write_1h_tokens=0)
        reply = _reply_for(step, request.conv)
        signer = self.server.signer
        if not stream:
            self._send_json(200, gemini_stream.render_response(reply, request, prompt, cached, signer))
            return
        events, closing_at = gemini_stream.render_events(reply, request, prompt, cached, signer)
        if (query.get("alt") or [""])[0] != "sse":  # a stream asked for without alt=sse: a JSON array
            self._send_json(200, [json.loads(e.decode().removeprefix("data: ")) for e in events])
            return
        self._send_shaped(shape(step, events, closing_at, gemini_stream), reply.chunk_delay, b"")


def _answers_with_error(step: Failure, stream: bool) -> bool:
    """A scripted status is an HTTP error unless it is meant for inside a stream."""
    return step.status is not None and (step.in_stream_after is None or not stream)


def _reply_for(step: Step | None, conv: Conversation) -> Reply:
    if isinstance(step, Reply):
        return step
    if isinstance(step, Failure) and step.reply is not None:
        return step.reply
    return default_reply(conv)


class Emulator:
    """A provider emulator running in a background thread.

    ``url`` is the base URL for both SDKs (``base_url=emu.url``), and ``api_keys``
    the one key each provider accepts: made afresh for each emulator, or the
    ``api_keys`` given (a test that wants known keys). Any other key is refused the way
    that provider refuses a bad key.
    ``clock`` (seconds, monotonic) drives cache lifetimes, so a test can expire a
    cache entry without sleeping; ``signing_key`` makes this emulator's thinking and
    thought signatures unverifiable by emulators with another key.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys: Mapping[str, str] | None = None,
                 clock: Callable[[], float] | None = None, signing_key: bytes | None = None) -> None:
        self._address = (host, port)
        self.api_keys = fresh_keys() if api_keys is None else checked_keys(api_keys)
        self._script = Script()
        self._stopping = threading.Event()
        self._signer = Signer(signing_key)
        self.models = ModelTable()
        self.cache = PromptCache(clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, self)
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
        """Forget queued steps and received requests (the prompt cache stays)."""
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


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the emulator in the foreground until interrupted (manual use). Its keys go
    to stdout, which only whoever started it reads, never to its command line, which
    every local user can read."""
    emulator = Emulator(host, port).start()
    keys = emulator.api_keys
    print(f"duologue provider emulator listening on {emulator.url} (anthropic + gemini)\n"
          f"its keys, valid until it stops: ANTHROPIC_API_KEY={keys['anthropic']} "
          f"GEMINI_API_KEY={keys['gemini']}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()

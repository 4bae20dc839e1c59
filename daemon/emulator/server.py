"""The emulator's HTTP server: stdlib ``ThreadingHTTPServer`` on loopback.

The real SDKs (httpx underneath) talk to it exactly as to the real services, so
tests exercise the whole client stack. Plain JSON answers carry Content-Length and
keep the connection alive (SDK retries reuse it); streams are sent close-delimited
(``Connection: close``, no length), which is how a dropped stream can be emulated
faithfully: closing early looks to the SDK like a connection that ended.

The server knows no provider: each registered provider's emulator API
(:mod:`.apis`) says which paths are its own, checks its key and answers; the server
picks the API a request is for, lets it refuse a request without this emulator's key
(before the body is read) and hands it the request. ``GET /`` and ``/health`` say
which providers it plays. The key is never logged or recorded.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..providers.registry import BUILTIN, Registry
from .access import checked_keys, fresh_keys
from .apis import ProviderApi, Query, api_for, load_apis, outcomes_by_name
from .caching import PromptCache
from .failures import StreamShape, custom_body, retry_headers
from .models import ModelTable
from .script import Failure, ProviderName, ReceivedRequest, Script, Step
from .signing import Signer

log = logging.getLogger(__name__)


class _OpenStreams:
    """How many event streams are being sent right now: what a test reads to time a
    kill inside a reply (a client's view of it lags on a loaded machine)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    @contextmanager
    def one(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.apis = emulator.apis
        self.script = emulator._script
        self.api_keys = emulator.api_keys
        self.stopping = emulator._stopping
        self.models = emulator.models
        self.signer = emulator._signer
        self.cache = emulator.cache
        self.open_streams = emulator._open_streams


class _Handler(BaseHTTPRequestHandler):
    """One request; to the provider API that answers it, an :class:`~.apis.Exchange`."""

    protocol_version = "HTTP/1.1"
    server: _Server

    @property
    def models(self) -> ModelTable:
        return self.server.models

    @property
    def cache(self) -> PromptCache:
        return self.server.cache

    @property
    def signer(self) -> Signer:
        return self.server.signer

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

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
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
        with self.server.open_streams.one():
            self._send_events(events, delay, tail, keepalive, interval)

    def _send_events(self, events: list[bytes], delay: float, tail: bytes | None,
                     keepalive: bytes | None, interval: float) -> None:
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

    def send_shaped(self, plan: StreamShape, delay: float, keepalive: bytes) -> None:
        if plan.keepalive:
            self._stream(plan.events, delay, plan.tail, keepalive=keepalive, interval=plan.interval)
        else:
            self._stream(plan.events, delay, plan.tail)

    def _refused(self, api: ProviderApi, query: Query) -> bool:
        """Answer a request without this emulator's key for ``api``'s provider as that
        provider answers a bad key; True when it was refused."""
        refusal = api.refusal(self.headers, query, self.server.api_keys[api.name])
        if refusal is not None:
            self.send_json(*refusal)
        return refusal is not None

    def send_failure(self, step: Failure, body: dict[str, Any]) -> None:
        custom = custom_body(step)
        if custom is not None:
            self._send_bytes(step.status or 500, custom[0], custom[1], retry_headers(step))
        else:
            self.send_json(step.status or 500, body, retry_headers(step))

    # -- routing --------------------------------------------------------------

    def _api(self, method: str, path: str, query: Query) -> ProviderApi:
        return api_for(self.server.apis, method, path, self.headers, query, self.server.api_keys)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        api = self._api("GET", url.path, query)
        try:
            if self._refused(api, query):
                return
            if url.path in ("/", "/health"):
                self.send_json(200, {"emulator": True, "providers": [a.name for a in self.server.apis]})
            else:
                api.get(self, url.path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        api = self._api("POST", url.path, query)
        try:
            if self._refused(api, query):
                self.close_connection = True  # its body stays unread: this connection is done
                return
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.post(self, url.path, query, raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout): nothing to answer
        except Exception as exc:  # a request shape the API modules did not foresee: answer, never die
            log.warning("emulator could not handle %s: %r", url.path, exc, exc_info=True)
            self.close_connection = True
            try:
                reason = f"The emulator cannot read this request ({type(exc).__name__})."
                self.send_json(400, api.error_body(400, reason))
            except OSError:
                pass

    def decode(self, raw: bytes) -> dict[str, Any] | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def take_step(self, request: ReceivedRequest) -> tuple[Step | None, bool]:
        """Record the request and take the provider's next step; True when stopping."""
        self.server.script.record(request)
        step = self.server.script.next_step(request.provider)
        return step, isinstance(step, Failure) and self._wait(step.delay)


class Emulator:
    """A provider emulator running in a background thread.

    It plays every provider of ``registry``. ``url`` is the base URL for all their SDKs
    (``base_url=emu.url``), and ``api_keys`` the one key each provider accepts: made
    afresh for each emulator, or the ``api_keys`` given (a test that wants known keys).
    Any other key is refused the way that provider refuses a bad key.
    ``clock`` (seconds, monotonic) drives cache lifetimes, so a test can expire a
    cache entry without sleeping; ``signing_key`` makes this emulator's thinking and
    thought signatures unverifiable by emulators with another key.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys: Mapping[str, str] | None = None,
                 clock: Callable[[], float] | None = None, signing_key: bytes | None = None,
                 registry: Registry = BUILTIN) -> None:
        self._address = (host, port)
        self.registry = registry
        self.apis = load_apis(registry)
        self.api_keys = (fresh_keys({api.name: api.key_prefix for api in self.apis}) if api_keys is None
                         else checked_keys(api_keys, registry.names))
        self._script = Script(outcomes_by_name(self.apis))
        self._stopping = threading.Event()
        self._signer = Signer(signing_key)
        self.models = ModelTable()
        self.cache = PromptCache(clock)
        self._open_streams = _OpenStreams()
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
    def streaming(self) -> int:
        """How many event streams are being sent at this moment."""
        return self._open_streams.count

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
    keys = " ".join(f"{spec.key_env[0]}={emulator.api_keys[spec.name]}" for spec in emulator.registry)
    print(f"duologue provider emulator listening on {emulator.url} ({' + '.join(emulator.registry.names)})\n"
          f"its keys, valid until it stops: {keys}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()

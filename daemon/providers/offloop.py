"""Provider SDKs run on an event loop of their own, in a thread of its own.

The SDKs do CPU-heavy work inside their coroutines, before the first byte goes out:
google-genai validates the whole request into pydantic models and converts it back
(about 2 ms a message, seconds for a long session), the anthropic SDK deep-copies
and JSON-encodes the request (hundreds of milliseconds at 10,000 messages). On the
daemon's loop that time freezes every other session's deltas, every client's
requests and every checkpoint timer. Here it runs on the provider loop instead; the
daemon's loop only receives the adapter's events (``call_soon_threadsafe``), so it
keeps serving while a request is built: the interpreter switches threads every few
milliseconds (``sys.getswitchinterval``) even in pure-Python work.

Everything an SDK client does, streams and ``aclose``, happens on the provider
loop, so its HTTP connections belong to one loop only. Cancelling the consumer (a
``session/cancel``, the turn's deadline) cancels the stream on the provider loop and
waits until its ``finally`` blocks ran, so the provider's stream is closed before the
partial reply is committed, as it was in-loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from .base import Provider, StreamEvent, TurnRequest

_T = TypeVar("_T")
CLOSE_WAIT_S = 30.0
"""How long a cancelled stream may take to close on the provider loop."""

_EVENT, _END, _ERROR = range(3)


class ProviderLoop:
    """The provider loop and its thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                loop.call_soon(started.set)
                self._thread = threading.Thread(target=loop.run_forever, name="provider-loop", daemon=True)
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coro`` run on the provider loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._running()))

    async def relay(self, source: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``source``'s items, iterated on the provider loop, yielded on the caller's.
        An exception it raises is raised here; closing this closes it there."""
        here = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        closed = asyncio.Event()

        def put(kind: int, value: Any) -> None:
            here.call_soon_threadsafe(items.put_nowait, (kind, value))

        async def pump() -> None:
            try:
                async for item in source:
                    put(_EVENT, item)
                put(_END, None)
            except asyncio.CancelledError:
                pass  # the consumer went away: nobody reads what follows
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
                put(_ERROR, exc)
            finally:
                try:
                    await source.aclose()  # type: ignore[attr-defined]
                finally:
                    here.call_soon_threadsafe(closed.set)

        task = asyncio.run_coroutine_threadsafe(pump(), self._running())
        kind = _EVENT
        try:
            while True:
                kind, value = await items.get()
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value
        finally:
            if kind == _EVENT:  # left before the source ended: stop it
                task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(closed.wait()), CLOSE_WAIT_S)
            except asyncio.TimeoutError:
                pass

    def close(self) -> None:
        """Stop the loop (its providers closed first) and wait for its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_WAIT_S)
        if not thread.is_alive():
            loop.close()


class OffLoop:
    """A provider adapter whose SDK work runs on the provider loop."""

    def __init__(self, provider: Provider, loop: ProviderLoop):
        self.name = provider.name
        self._provider = provider
        self._loop = loop

    def stream(self, req: TurnRequest) -> AsyncIterator[StreamEvent]:
        return self._loop.relay(self._provider.stream(req))

    async def aclose(self) -> None:
        await self._loop.run(self._provider.aclose())

"""The blocking client, for scripts: the async client run on a private loop thread.

Every method of :class:`AsyncClient` is offered with the same signature, returning
its result directly; one wrapper per method keeps them typed and in one place.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from .connection import AsyncClient

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(method: Callable[Concatenate[AsyncClient, P], Awaitable[T]]) -> Callable[Concatenate[Client, P], T]:
    def call(self: Client, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._client, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Client:
    def __init__(self, *args: Any, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="duologue-client", daemon=True)
        self._thread.start()
        self._client = self._run(self._make(args, kwargs))
        try:
            self._run(self._client.connect())
        except BaseException:
            self._stop_loop()
            raise

    async def _make(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> AsyncClient:
        return AsyncClient(*args, **kwargs)

    def _run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        self._run(self._client.close())
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_event(self, timeout: float | None = None) -> Any:
        return self._run(self._client.next_event(timeout))

    call = _blocking(AsyncClient.call)
    status = _blocking(AsyncClient.status)
    shutdown = _blocking(AsyncClient.shutdown)
    list_models = _blocking(AsyncClient.list_models)
    create_session = _blocking(AsyncClient.create_session)
    list_sessions = _blocking(AsyncClient.list_sessions)
    get_session = _blocking(AsyncClient.get_session)
    rename_session = _blocking(AsyncClient.rename_session)
    delete_session = _blocking(AsyncClient.delete_session)
    switch_model = _blocking(AsyncClient.switch_model)
    attach = _blocking(AsyncClient.attach)
    detach = _blocking(AsyncClient.detach)
    send = _blocking(AsyncClient.send)
    cancel = _blocking(AsyncClient.cancel)
    pin = _blocking(AsyncClient.pin)
    summaries = _blocking(AsyncClient.summaries)
    metrics = _blocking(AsyncClient.metrics)
    update_tasks = _blocking(AsyncClient.update_tasks)
    list_tasks = _blocking(AsyncClient.list_tasks)
    import_sessions = _blocking(AsyncClient.import_sessions)
    undo_import = _blocking(AsyncClient.undo_import)
    list_imports = _blocking(AsyncClient.list_imports)
    export_session = _blocking(AsyncClient.export_session)

"""Where nats-py meets our code: the connection, the stream, and the errors.

Every call into nats-py is made here (the lease bucket and core NATS requests in
``bucket``), so its quirks live in few places. The
connection is made without nats-py's own reconnect loop (whose first connect would
retry for minutes): one attempt bounded by ``connect_timeout_s``, and the
replicator (``replicator``) decides when to try again, so a bad url or bad
credentials is a message at once, never a hang. Every failure becomes a
:class:`LinkError` whose text says what was wrong and what to do; it never holds a
password.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..settings import SyncSettings
from ..store import SCHEMA_VERSION
from . import wire

log = logging.getLogger(__name__)

LARGE = "DUOLOGUE_LARGE"
"""The object store bucket of changes larger than the server's ``max_payload``."""
OBJECT_HEADER = "Duologue-Object"
"""On a session subject's message: the change is the object of this name in ``LARGE``."""
SCHEMA_HEADER = "Duologue-Schema"
"""On every change published: the store schema version of the records it carries.
A follower that reads an older version stops before a change of a newer one
(``follower``) instead of misreading it; a message without it predates the header."""
HEADROOM = 1024
"""Bytes of ``max_payload`` kept for a message's headers."""
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a publish whose expected last subject sequence is stale."""
REQUEST_TIMEOUT_S = 5.0
DUPLICATE_WINDOW_S = 120.0


class LinkError(Exception):
    """NATS cannot be used now; the message says why and what to do."""


class Refused(Exception):
    """JetStream refused an append: another writer appended to the subject first."""


@dataclass(frozen=True)
class Stored:
    """A message read from the stream: its stream sequence and payload."""

    stream_seq: int
    subject: str
    data: bytes
    pending: int = 0
    """Messages after this one the consumer had not delivered yet (the follow lag)."""
    schema: int = 0
    """The store schema version its writer wrote (0: written before the header)."""


def _schema(headers: dict[str, str] | None) -> int:
    value = (headers or {}).get(SCHEMA_HEADER, "")
    return int(value) if value.isdigit() else 0


def _tls(cfg: SyncSettings) -> ssl.SSLContext | None:
    if not (cfg.url.startswith("tls://") or cfg.tls_ca_file or cfg.tls_cert_file):
        return None
    context = ssl.create_default_context(cafile=cfg.tls_ca_file)
    if cfg.tls_cert_file:
        context.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
    return context


class Link:
    """One connection to NATS with JetStream, closed by :meth:`close`."""

    def __init__(self, nc: Any, lost: asyncio.Event):
        self._nc = nc
        self._js = nc.jetstream(timeout=REQUEST_TIMEOUT_S)
        self._large: Any = None
        self.lost = lost
        """Set when the connection is gone (the server stopped, the network went)."""

    @classmethod
    async def connect(cls, cfg: SyncSettings) -> Link:
        import nats
        from nats import errors

        lost = asyncio.Event()

        async def closed() -> None:
            lost.set()

        async def quiet(exc: Exception) -> None:  # nats-py reports every error here; we raise ours
            log.debug("nats: %s", exc)

        options: dict[str, Any] = {
            "servers": [cfg.url], "name": f"duologue {cfg.device_name}", "allow_reconnect": False,
            "connect_timeout": cfg.connect_timeout_s, "error_cb": quiet, "closed_cb": closed,
            "disconnected_cb": closed, "tls": _tls(cfg)}
        if cfg.user is not None and cfg.password is not None:
            options.update(user=cfg.user, password=cfg.password.reveal())
        if cfg.creds_file:
            options["user_credentials"] = cfg.creds_file
        if cfg.nkey_file:
            options["nkeys_seed"] = cfg.nkey_file
        try:
            nc = await asyncio.wait_for(nats.connect(**options), cfg.connect_timeout_s + 1)
        except errors.AuthorizationError:
            raise _refused_credentials(cfg) from None
        except (TimeoutError, asyncio.TimeoutError, errors.TimeoutError):
            raise LinkError(f"no NATS server answered at {cfg.server} within {cfg.connect_timeout_s:g} s; "
                            "check [sync] url and that the server runs") from None
        except ssl.SSLError as exc:
            raise LinkError(f"TLS with {cfg.server} failed ({exc.reason}); check [sync.tls]") from None
        except (OSError, errors.Error) as exc:
            if "authorization" in str(exc).lower():  # on a first connect nats-py raises a plain Error
                raise _refused_credentials(cfg) from None
            raise LinkError(f"cannot connect to NATS at {cfg.server}: {_plain(exc)}; check [sync] url "
                            "and that the server runs") from None
        link = cls(nc, lost)
        try:
            await link._ensure_stream()
        except LinkError:
            await link.close()
            raise
        return link

    async def _ensure_stream(self) -> None:
        from nats.js import api
        from nats.js import errors as js_errors

        try:
            await self._js.stream_info(wire.STREAM)
            return
        except js_errors.NotFoundError:
            pass
        except Exception as exc:
            raise _unusable(exc) from None
        try:
            await self._js.add_stream(api.StreamConfig(
                name=wire.STREAM, subjects=[wire.SUBJECTS], storage=api.StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_S, allow_direct=True))
        except Exception as exc:
            raise _unusable(exc) from None

    async def _bucket(self) -> Any:
        """The object store of large changes, made the first time one is written or
        read (an account that never has one needs no quota for it)."""
        from nats.js import api
        from nats.js import errors as js_errors

        if self._large is None:
            try:
                try:
                    self._large = await self._js.object_store(LARGE)
                except js_errors.BucketNotFoundError:
                    self._large = await self._js.create_object_store(
                        LARGE, api.ObjectStoreConfig(storage=api.StorageType.FILE))
            except Exception as exc:
                raise LinkError(f"a change is larger than the server's max_payload and the object store "
                                f"{LARGE} cannot be used ({_plain(exc)}); give this account a JetStream "
                                "quota for it, or raise max_payload") from None
        return self._large

    async def close(self) -> None:
        try:
            await self._nc.close()
        except Exception as exc:  # closing a connection that already broke
            log.debug("closing the NATS connection: %s", exc)

    @property
    def nc(self) -> Any:
        """The nats-py connection, for ``bucket``."""
        return self._nc

    @property
    def max_payload(self) -> int:
        return int(self._nc.max_payload)

    async def append(self, subject: str, data: bytes, msg_id: str, expected_last: int) -> int:
        """Append ``data`` to ``subject`` if its last message is still ``expected_last``
        (0: none); returns the new stream sequence (the old one for a duplicate)."""
        from nats.js import errors as js_errors

        headers = {"Nats-Msg-Id": msg_id, "Nats-Expected-Last-Subject-Sequence": str(expected_last),
                   SCHEMA_HEADER: str(SCHEMA_VERSION)}
        if len(data) > self.max_payload - HEADROOM:
            data = await self._put_large(msg_id, data)
            headers[OBJECT_HEADER] = msg_id
        try:
            ack = await self._js.publish(subject, data, stream=wire.STREAM, headers=headers)
        except js_errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Refused(exc.description) from None
            raise LinkError(f"JetStream refused a change for {subject}: {exc.description}") from None
        return ack.seq

    async def keep_only_last(self, subject: str) -> None:
        """Purge every message of ``subject`` but its last (a deleted session's
        tombstone), and the objects its large changes were kept in: the server keeps
        nothing more of it. A purge refused is logged; the deletion itself is already
        in the stream."""
        try:
            await self._js.purge_stream(wire.STREAM, subject=subject, keep=1)
            await self._drop_objects(wire.session_of(subject))
        except Exception as exc:
            log.warning("sync: could not purge %s on the server (%s); its messages stay there", subject, _plain(exc))

    async def _drop_objects(self, sid: str) -> None:
        """Delete the objects named by a session's purged messages (``<sid>:<seq>``):
        no message names them any more, so nothing could read them again."""
        from nats.js import errors as js_errors

        try:
            bucket = self._large or await self._js.object_store(LARGE)
            objects = await bucket.list(ignore_deletes=True)
        except (js_errors.BucketNotFoundError, js_errors.NotFoundError):
            return  # no large change was ever stored, or none is left
        for info in objects:
            if info.name.startswith(sid + ":"):
                await bucket.delete(info.name)

    async def last(self, subject: str) -> Stored | None:
        """The subject's last message, or None when it has none."""
        from nats.js import errors as js_errors

        try:
            msg = await self._js.get_last_msg(wire.STREAM, subject, direct=True)
        except js_errors.NotFoundError:
            return None
        return Stored(stream_seq=msg.seq, subject=subject, data=await self._whole(msg.headers, msg.data),
                      schema=_schema(msg.headers))

    async def _put_large(self, name: str, data: bytes) -> bytes:
        """Store a change too large for one message as an object (JetStream splits it
        into chunks under ``max_payload``); the subject then gets a message naming it.
        Put first: a kill between the two puts it again, under the same name."""
        from nats.js import api

        chunk = self.max_payload - HEADROOM
        await (await self._bucket()).put(name, data, meta=api.ObjectMeta(
            name=name, options=api.ObjectMetaOptions(max_chunk_size=chunk)))
        return b""

    async def _whole(self, headers: dict[str, str] | None, data: bytes | None) -> bytes:
        """A message's change: its payload, or the object it names."""
        name = (headers or {}).get(OBJECT_HEADER)
        if name is None:
            return data or b""
        return bytes((await (await self._bucket()).get(name)).data)

    async def follow(self, after: int) -> AsyncIterator[Stored]:
        """Every message of the stream after stream sequence ``after``, in order, as
        it arrives (an ordered consumer: nothing kept on the server for it)."""
        from nats.js import api

        policy = (dict(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
                  if after else dict(deliver_policy=api.DeliverPolicy.ALL))
        sub = await self._js.subscribe(wire.SUBJECTS, stream=wire.STREAM, ordered_consumer=True,
                                       config=api.ConsumerConfig(**policy))
        try:
            async for msg in sub.messages:
                meta = msg.metadata
                yield Stored(stream_seq=meta.sequence.stream, subject=msg.subject,
                             data=await self._whole(msg.headers, msg.data), pending=meta.num_pending,
                             schema=_schema(msg.headers))
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribing: %s", exc)


def _refused_credentials(cfg: SyncSettings) -> LinkError:
    return LinkError(f"{cfg.server} refused the credentials of [sync] (authorization violation); "
                     "check user/password, creds or nkey")


def _plain(exc: BaseException) -> str:
    text = str(exc).removeprefix("nats: ")
    return text or type(exc).__name__


def _unusable(exc: BaseException) -> LinkError:
    return LinkError(f"the NATS server has no usable JetStream ({_plain(exc)}); start it with JetStream "
                     "enabled (nats-server -js) and give this account a JetStream quota")


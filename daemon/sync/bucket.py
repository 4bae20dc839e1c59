"""Where nats-py's key-value API and core NATS requests meet our code: the lease
bucket (``lease``) and the per-device subjects of hand-offs (``handoff``).

As in ``link``, every nats-py call of these two lives here and every failure
becomes a :class:`~.link.LinkError` (the connection cannot be used now) or one of
the outcomes below, so the lease logic reads as compare-and-swap on plain values.

The bucket is a JetStream stream of its own (``KV_DUOLOGUE_LEASES``), one key per
session, history 1, every entry aging out ``lease_ttl_s`` after it was written
(the stream's max age): a holder renews by writing again, and a holder that
vanished stops renewing, so its entry is gone within one TTL. The daemon that
creates the bucket sets the TTL; every other one uses the bucket as it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .link import Link, LinkError

log = logging.getLogger(__name__)

BUCKET = "DUOLOGUE_LEASES"
KV_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a device (``device_name``) and the daemon run on it
    (``instance_id``, new at every start), so a restarted daemon knows its old run's
    leases for dead ones."""

    device: str
    instance: str

    def encode(self) -> bytes:
        return json.dumps({"device": self.device, "instance": self.instance}).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Holder:
        try:
            doc = json.loads(data or b"{}")
            return cls(device=str(doc["device"]), instance=str(doc["instance"]))
        except (ValueError, KeyError, TypeError):
            return cls(device="?", instance="?")


class Taken(Exception):
    """The key exists: ``holder`` wrote it at ``revision`` (None: it vanished meanwhile)."""

    def __init__(self, holder: Holder | None, revision: int):
        super().__init__(holder)
        self.holder = holder
        self.revision = revision


class Lost(Exception):
    """A revision-checked write was refused: someone else wrote the key since."""


class NoAnswer(Exception):
    """A request reached nobody (``gone``: no subscriber) or got no reply in time."""

    def __init__(self, gone: bool):
        super().__init__("no responders" if gone else "timeout")
        self.gone = gone


class LeaseBucket:
    def __init__(self, kv: Any):
        self._kv = kv

    @classmethod
    async def open(cls, link: Link, ttl_s: float) -> LeaseBucket:
        from nats.js import api
        from nats.js import errors as js_errors

        js = link.nc.jetstream(timeout=KV_TIMEOUT_S)
        try:
            return cls(await js.key_value(BUCKET))
        except js_errors.BucketNotFoundError:
            pass
        except Exception as exc:
            raise LinkError(f"the lease bucket {BUCKET} cannot be read: {exc}") from None
        try:
            return cls(await js.create_key_value(api.KeyValueConfig(
                bucket=BUCKET, history=1, ttl=ttl_s, storage=api.StorageType.FILE, direct=False)))
        except Exception:  # another daemon created it meanwhile (its TTL rules), or JetStream refused
            try:
                return cls(await js.key_value(BUCKET))
            except Exception as exc:
                raise LinkError(f"the lease bucket {BUCKET} cannot be created: {exc}") from None

    async def create(self, key: str, holder: Holder) -> int:
        """Write ``holder`` if the key has no live entry; its revision. Raises :class:`Taken`."""
        from nats.js import errors as js_errors

        try:
            return await self._kv.create(key, holder.encode())
        except js_errors.KeyWrongLastSequenceError:
            pass
        except Exception as exc:
            raise _broken(exc) from None
        got = await self.get(key)
        raise Taken(None if got is None else got[0], 0 if got is None else got[1])

    async def update(self, key: str, holder: Holder, revision: int) -> int:
        """Write ``holder`` again if the key is still at ``revision``. Raises :class:`Lost`."""
        from nats.js import errors as js_errors

        try:
            return await self._kv.update(key, holder.encode(), last=revision)
        except js_errors.KeyWrongLastSequenceError:
            raise Lost(key) from None
        except Exception as exc:
            raise _broken(exc) from None

    async def get(self, key: str) -> tuple[Holder, int] | None:
        """The key's live holder and revision; None when it has none (released or expired)."""
        from nats.js import errors as js_errors

        try:
            entry = await self._kv.get(key)
        except js_errors.KeyNotFoundError:
            return None
        except Exception as exc:
            raise _broken(exc) from None
        return Holder.decode(entry.value), entry.revision

    async def delete(self, key: str, revision: int) -> None:
        """Release: a delete marker, only if the key is still at ``revision``."""
        from nats.js import errors as js_errors

        try:
            await self._kv.delete(key, last=revision)
        except js_errors.APIError as exc:
            log.debug("lease %s was not released (%s): it was written since", key, exc.description)
        except Exception as exc:
            raise _broken(exc) from None


async def request(link: Link, subject: str, data: bytes, timeout_s: float) -> bytes:
    """A core NATS request; its reply. Raises :class:`NoAnswer` or :class:`LinkError`."""
    from nats import errors

    try:
        msg = await link.nc.request(subject, data, timeout=timeout_s)
    except errors.NoRespondersError:
        raise NoAnswer(gone=True) from None
    except errors.TimeoutError:
        raise NoAnswer(gone=False) from None
    except Exception as exc:
        raise _broken(exc) from None
    return msg.data


Answer = Callable[[bytes], Awaitable[bytes | None]]
"""Answers one request's data (None: no reply, a plain message)."""


async def serve(link: Link, subject: str, answer: Answer) -> Any:
    """Subscribe ``answer`` to ``subject``; the subscription (it ends with the connection)."""

    async def handle(msg: Any) -> None:
        try:
            reply = await answer(msg.data)
        except Exception:
            log.exception("sync: answering %s failed", subject)
            return
        if reply is not None and msg.reply:
            try:
                await msg.respond(reply)
            except Exception as exc:
                log.warning("sync: the answer on %s was not sent: %s", subject, exc)

    try:
        return await link.nc.subscribe(subject, cb=handle)
    except Exception as exc:
        raise _broken(exc) from None


async def publish(link: Link, subject: str, data: bytes) -> None:
    """A core NATS message (not stored): lost when nobody listens, as progress may be."""
    try:
        await link.nc.publish(subject, data)
    except Exception as exc:
        log.debug("sync: %s not published: %s", subject, exc)


def _broken(exc: BaseException) -> LinkError:
    return LinkError(f"NATS did not answer a lease or hand-off request ({type(exc).__name__}: {exc})")

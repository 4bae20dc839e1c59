"""The store's key layout: big-endian integers and NUL-separated parts, so that keys
sort bytewise in the order they are read (a session's records by seq, sessions by
recency) and a prefix scan never bleeds into a neighbour. Digests keep keys of any
external length within LMDB's key limit."""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime

from duologue.protocol.entities import Session

U64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return U64.pack(n)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def seq_key(sid: str, seq: int) -> bytes:
    return sid.encode() + b"\0" + u64(seq)


def project_hash(project_id: str | None) -> bytes:
    return hashlib.blake2b((project_id or "").encode(), digest_size=16).digest()


def import_key(external_id: str) -> bytes:
    return hashlib.blake2b(external_id.encode(), digest_size=20).digest()


def encode_cursor(session: Session) -> str:
    return f"{ms(session.updated_at)}.{session.id}"


def decode_cursor(cursor: str) -> bytes:
    try:
        stamp, sid = cursor.split(".", 1)
        return u64(int(stamp)) + sid.encode()
    except ValueError:
        raise ValueError(f"invalid cursor {cursor!r}") from None

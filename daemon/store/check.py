"""Whether a store's files are whole: a glance when it opens, every page on demand.

LMDB maps the data file into memory and trusts it. A file cut short (a full disk,
a bad copy, a crash of the file system) makes a read past its end a SIGBUS that
kills the daemon; a file cut to zero bytes opens as a new, empty store, so every
session silently seems gone. So before a store is opened, :func:`glance` reads its
two meta pages with plain file reads and compares the size they promise with the
file's: cheap (two pages), and it catches truncation, an emptied file and a file
that is not LMDB's.

A damaged page inside an otherwise whole file is only found by reading it:
:func:`walk` reads every record of every database (branch, leaf and overflow pages),
reporting progress, and is what ``duologue db check`` runs, in a child process so a
crash on a bad page is reported rather than suffered.

Meta page layout (LMDB 0.9, ``MDB_meta`` after the 16-byte page header): magic at 0,
version at 4, the free DB's ``md_pad`` (the page size) at 24, ``mm_last_pg`` at 120,
``mm_txnid`` at 128. The current meta is the one with the larger txnid.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .environment import open_environment
from .migrations import list_backups

MAGIC = 0xBEEFC0DE
_HEADER = 16
_MIN_META = _HEADER + 136


def glance(store_dir: Path) -> str | None:
    """What is visibly wrong with the data file, or None (also when there is none yet)."""
    data_file = store_dir / "data.mdb"
    try:
        size = data_file.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"data.mdb cannot be read: {exc.strerror}"
    try:
        if size == 0:
            return "data.mdb is empty (0 bytes): what it held is gone"
        with open(data_file, "rb") as f:
            head = f.read(_MIN_META)
            if len(head) < _MIN_META:
                return f"data.mdb is {size} bytes, too short to hold LMDB's header"
            first = _meta(head, 0)
            if first is None:
                return "data.mdb does not start with an LMDB header (it is not a store, or its start was overwritten)"
            psize = first[0]
            f.seek(psize)
            second = _meta(f.read(_MIN_META), 0)
    except OSError as exc:
        return f"data.mdb cannot be read: {exc.strerror}"
    metas = [m for m in (first, second) if m is not None and m[0] == psize]
    _, last_page, _ = max(metas, key=lambda m: m[2])
    needed = (last_page + 1) * psize
    if size < needed:
        return (f"data.mdb is {size} bytes but its pages reach byte {needed}: the file was cut short "
                f"({(needed - size) // psize} pages missing)")
    return None


def _meta(page: bytes, offset: int) -> tuple[int, int, int] | None:
    """(page size, last page, txnid) of the meta page at ``offset``, or None."""
    if len(page) < offset + _MIN_META:
        return None
    magic, _version = struct.unpack_from("=II", page, offset + _HEADER)
    if magic != MAGIC:
        return None
    (psize,) = struct.unpack_from("=I", page, offset + _HEADER + 24)
    last_page, txnid = struct.unpack_from("=QQ", page, offset + _HEADER + 120)
    if psize < 512 or psize & (psize - 1):
        return None
    return psize, last_page, txnid


def damaged_message(store_dir: Path, backups_dir: Path, problem: str) -> str:
    """What a person reads when a store is refused: which, why, and what to do."""

    backups = list_backups(backups_dir)
    if backups:
        where = (f"{len(backups)} backup(s) in {backups_dir}, the newest {backups[-1].name}; restore it with "
                 "`duologue db rollback` (or name another, `duologue db status` lists them): the damaged "
                 "files are set aside, not deleted")
    else:
        where = (f"there are no backups in {backups_dir}; `duologue db check` tells more, and moving "
                 f"{store_dir} aside starts an empty store (`duologue db backup` makes backups from then on)")
    return f"the store at {store_dir} is damaged: {problem}. It was not opened and nothing was changed; {where}"


def walk(store_dir: Path, progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, int]:
    """Read every record of every named database (and the unnamed one that lists
    them); returns records per database. Raises ``lmdb.Error`` on a damaged page."""
    env = open_environment(store_dir, readonly=True, lock=False)
    try:
        with env.begin(buffers=True) as txn:
            names = [bytes(k) for k, _ in txn.cursor()]
        dbs = [(name, env.open_db(name, create=False)) for name in names]
        with env.begin(buffers=True) as txn:
            total = sum(txn.stat(db)["entries"] for _, db in dbs) + len(names)
            counts: dict[str, int] = {}
            done = len(names)
            for name, db in dbs:
                n = 0
                for key, value in _records(txn, db):
                    n += 1
                    done += 1
                    if done % 2048 == 0:
                        progress(done, total)
                counts[name.decode(errors="replace")] = n
            progress(done, total)
        return counts
    finally:
        env.close()


def _records(txn: object, db: object) -> Iterator[tuple[memoryview, memoryview]]:
    cursor = txn.cursor(db=db)  # type: ignore[attr-defined]
    for key, value in cursor:
        zlib.crc32(value)  # read the whole value: every overflow page it spans
        yield key, value

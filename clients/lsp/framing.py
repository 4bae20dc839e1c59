"""LSP framing checked before pygls sees it: every bad message is answered, none
swallows the next.

pygls leaves a body that is not JSON (or not UTF-8, or nested deeper than Python's
parser recurses) unanswered, and a header block without ``Content-Length`` makes it
take the next message's header for its own, so that request is lost. This reader
sits between stdin and pygls: it reads the byte stream itself, hands pygls only
well-formed messages (re-framed exactly), and answers the rest with a JSON-RPC error
written through the same locked stdout pygls writes to (so frames never interleave):

- a body that is not UTF-8 or not JSON, or nests deeper than :data:`MAX_DEPTH`:
  ``-32700`` parse error, ``id: null``;
- JSON that is not a request object (a number, an array: LSP has no batches):
  ``-32600`` invalid request, with its ``id`` when it has one;
- a header block without a usable ``Content-Length``: ``-32700``; the bytes up to the
  next ``Content-Length:`` header are skipped, so the stream resynchronises there.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any, BinaryIO

MAX_DEPTH = 128
"""Deepest JSON nesting accepted; LSP messages need a handful of levels."""
MAX_BODY = 64 * 1024 * 1024
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*$")
_NEXT_HEADER = re.compile(rb"(?i)content-length:")


class LockedStdout:
    """stdout for pygls and for this module's answers: one whole frame per write."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            n = self._stream.write(data)
            self._stream.flush()
            return n

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def close(self) -> None:
        self._stream.close()

    def answer_error(self, req_id: Any, code: int, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": req_id,
                           "error": {"code": code, "message": message}}).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


class CheckedStdin:
    """The ``readline`` / ``read`` pygls reads with, fed only well-formed messages."""

    def __init__(self, fd: int, out: LockedStdout):
        self._fd = fd
        self._out = out
        self._raw = b""
        self._eof = False
        self._ready = b""  # re-framed messages for pygls

    # --- what pygls calls ----------------------------------------------------------------

    def readline(self) -> bytes:
        while b"\n" not in self._ready:
            if not self._next_message():
                line, self._ready = self._ready, b""
                return line
        end = self._ready.index(b"\n") + 1
        line, self._ready = self._ready[:end], self._ready[end:]
        return line

    def read(self, n: int) -> bytes:
        while len(self._ready) < n:
            if not self._next_message():
                break
        data, self._ready = self._ready[:n], self._ready[n:]
        return data

    # --- framing ---------------------------------------------------------------------------

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = os.read(self._fd, 1 << 16)
        if not chunk:
            self._eof = True
            return False
        self._raw += chunk
        return True

    def _next_message(self) -> bool:
        """Parse input until one good message is ready for pygls; False at the end."""
        while True:
            end = self._raw.find(_HEADER_END)
            while end == -1:
                if not self._fill():
                    return False
                end = self._raw.find(_HEADER_END)
            headers, rest = self._raw[:end], self._raw[end + len(_HEADER_END):]
            found = _CONTENT_LENGTH.search(headers)
            if found is None or int(found.group(1)) > MAX_BODY:
                self._out.answer_error(None, -32700, "a message header without a usable Content-Length; "
                                                     "skipped up to the next Content-Length header")
                self._raw = rest
                self._skip_to_next_header()
                continue
            length = int(found.group(1))
            self._raw = rest
            while len(self._raw) < length:
                if not self._fill():
                    return False
            body, self._raw = self._raw[:length], self._raw[length:]
            if self._accept(body):
                self._ready += b"Content-Length: %d\r\n\r\n" % len(body) + body
                return True

    def _skip_to_next_header(self) -> None:
        while True:
            at = _NEXT_HEADER.search(self._raw)
            if at is not None:
                self._raw = self._raw[at.start():]
                return
            keep = self._raw[-len("content-length:"):]  # a header split across reads
            self._raw = keep
            if not self._fill():
                return

    def _accept(self, body: bytes) -> bool:
        """Whether pygls may have it; answers it otherwise."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._out.answer_error(None, -32700, f"the message is not UTF-8 (byte {exc.start})")
            return False
        if _depth(text) > MAX_DEPTH:
            self._out.answer_error(None, -32700, f"the message nests deeper than {MAX_DEPTH} levels")
            return False
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._out.answer_error(None, -32700, f"the message is not JSON: {str(exc)[:100]}")
            return False
        if not isinstance(value, dict) or value.get("jsonrpc") != "2.0" or not (
                "method" in value or "result" in value or "error" in value):
            req_id = value.get("id") if isinstance(value, dict) else None
            if not isinstance(req_id, (int, str)):
                req_id = None
            what = "a batch (LSP has none)" if isinstance(value, list) else "not a JSON-RPC 2.0 message object"
            self._out.answer_error(req_id, -32600, f"invalid request: {what}")
            return False
        return True


_SCAN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, strings skipped."""
    depth = deepest = 0
    for token in _SCAN.finditer(text):
        c = token.group()
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif c in "]}":
            depth -= 1
    return deepest

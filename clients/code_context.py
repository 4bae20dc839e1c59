"""A file, or some lines of it, as code context: the ``FILE[:START-END]`` form that
``--context``, the plain chat's ``/context`` and the terminal chat's commands accept.

A range is checked against the file: one that starts past its end is refused rather
than sent as empty context (the model would be told about a file it cannot see).
"""

from __future__ import annotations

from pathlib import Path

from duologue.protocol.entities import CodeContextBlock, LineRange

_LANGUAGES = {".py": "python", ".rs": "rust", ".go": "go", ".js": "javascript", ".ts": "typescript",
              ".lua": "lua", ".c": "c", ".h": "c", ".cpp": "cpp", ".java": "java", ".rb": "ruby",
              ".sh": "bash", ".md": "markdown", ".toml": "toml", ".json": "json", ".yaml": "yaml"}


class ContextArgError(ValueError):
    """The spec cannot be read as context; the message says why, for a person."""


def parse_context_arg(spec: str) -> CodeContextBlock:
    """``FILE`` or ``FILE:START-END`` as a code-context block (lines 1-based, inclusive;
    an end past the file's last line is clipped to it)."""
    path, _, rng = spec.partition(":")
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextArgError(f"cannot read {path}: {exc}") from None
    line_range = None
    if rng:
        try:
            start, end = (int(x) for x in rng.split("-", 1))
        except ValueError:
            raise ContextArgError(f"bad line range {rng!r}; write START-END, e.g. 10-42") from None
        if not 1 <= start <= end:
            raise ContextArgError(f"bad line range {rng!r}: need 1 <= START <= END")
        if start > len(lines):
            raise ContextArgError(f"bad line range {rng!r}: {path} has {len(lines)} lines")
        line_range = LineRange(start=start, end=min(end, len(lines)))
        lines = lines[start - 1:end]
    return CodeContextBlock(path=str(file), text="".join(lines), language=_LANGUAGES.get(file.suffix),
                            range=line_range)

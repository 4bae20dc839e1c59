"""How the CLI shows protocol records to a person. Pure: records in, text out.

Titles and message text come from models, other clients and imported files, so they
may hold terminal control sequences (an ESC that clears the screen, retitles the
window or fakes a prompt). :func:`terminal_safe` shows every control character as a
visible escape (``\x1b``); the CLI, ``attach`` and the chat pass everything they print
through it. ``--json`` output is not escaped: JSON escapes control characters itself.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from duologue.protocol import images
from duologue.protocol import methods as m
from duologue.protocol.entities import (
    CodeContextBlock,
    ImageBlock,
    ContextSummary,
    Message,
    ModelInfo,
    ModelSwitch,
    Session,
    TaskList,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)

_STATUS_MARK = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}

def _escapes(*ranges: tuple[int, int]) -> dict[int, str]:
    """A ``str.translate`` table showing each code point of ``ranges`` as its escape.
    (A table, not a regex: compiling one was most of what this module cost to import,
    and every CLI command imports it.)"""
    return {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for lo, hi in ranges for c in range(lo, hi + 1)}


_BIDI = ((0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
_CONTROLS = _escapes((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F), *_BIDI)
"""C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides
that reorder what a line shows."""
_LINE_CONTROLS = _escapes((0x00, 0x1F), (0x7F, 0x9F), *_BIDI)


def terminal_safe(text: str) -> str:
    """``text`` with every control character but newline and tab shown as an escape."""
    return text.translate(_CONTROLS)


def one_line(text: str) -> str:
    """``text`` escaped for a single line: newlines and tabs are escaped too."""
    return text.translate(_LINE_CONTROLS)


def ago(t: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(timezone.utc)) - t).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def session_line(s: Session) -> str:
    model = s.current_model if s.model == s.current_model else f"{s.model}:{s.current_model}"
    project = f"  [{one_line(s.project_id)}]" if s.project_id else ""
    return (f"{s.id}  {one_line(s.title)[:40]:<40}  {one_line(model):<24} {s.message_count:>4} msgs  "
            f"{ago(s.updated_at)}{project}")


def session_header(s: Session) -> str:
    lines = [f"{one_line(s.title)}  ({s.id})",
             f"model: {s.model}" + (f" -> {s.current_model}" if s.model != s.current_model else ""),
             f"created {ago(s.created_at)}, updated {ago(s.updated_at)}, {s.message_count} messages, seq {s.last_seq}"]
    if s.project_id:
        lines.append(f"project: {one_line(s.project_id)}")
    return "\n".join(lines)


def switch_line(w: ModelSwitch) -> str:
    return f"── switched {w.from_model or '-'} → {w.to_model} ({w.kind}: {w.reason}) ──"


def _cut(text: str, width: int = 100) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def message_block(msg: Message) -> str:
    """A message as a person reads it. A tool round is shown in one line each way
    (the call and its result), and a message holding only tool results is the
    tool's, not "you"."""
    tool_only = bool(msg.content) and all(isinstance(b, ToolResultBlock) for b in msg.content)
    who = "tool" if tool_only else "you" if msg.role == "user" else (msg.model or "assistant")
    marks = []
    if msg.pinned:
        marks.append("pinned")
    if msg.status != "complete":
        marks.append(msg.status)
    if msg.cost_usd:
        marks.append(format_cost(msg.cost_usd))
    head = f"{who}" + (f" [{', '.join(marks)}]" if marks else "") + ":"
    parts = []
    if msg.thinking:
        parts.append(thinking_line(msg.thinking))
    for i, block in enumerate(msg.content):
        if isinstance(block, TextBlock):
            if i and isinstance(msg.content[i - 1], TextBlock):
                parts[-1] += block.text  # one text in several parts (a signed part is kept apart)
                continue
            parts.append(block.text)
        elif isinstance(block, CodeContextBlock):
            where = block.path + (f":{block.range.start}-{block.range.end}" if block.range else "")
            parts.append(f"[context {where}]")
        elif isinstance(block, ImageBlock):
            parts.append(images.label(block))
        elif isinstance(block, ToolCallBlock):
            parts.append(f"[calls {block.name}]")
        elif isinstance(block, ToolResultBlock):
            parts.append(f"[{block.name} {'failed' if block.is_error else 'answered'}: {_cut(block.content)}]")
    if msg.status == "refused":
        parts.append(f"[{refusal_line(msg)}]")
    if msg.error:
        parts.append(f"! {msg.error}")
    return head + "\n" + "\n".join(parts)


def transcript(result: m.GetResult) -> str:
    """Messages with the switch markers placed where they happened."""
    out = [session_header(result.session), ""]
    switches = sorted(result.switches, key=lambda w: w.seq)
    for msg in result.messages:
        while switches and switches[0].seq < msg.seq:
            out.append(switch_line(switches.pop(0)))
        out.append(message_block(msg))
        out.append("")
    out.extend(switch_line(w) for w in switches)
    return "\n".join(out).rstrip()


def summary_text(x: ContextSummary) -> str:
    return (f"summary of {x.covered_messages} messages up to seq {x.covers_up_to_seq}, by {x.model} "
            f"for {x.for_model}, {ago(x.created_at)}:\n{x.text}")


def models_table(models: list[ModelInfo], default: str) -> str:
    rows = [f"{'SHORT':<9}{'ID':<26}{'PROVIDER':<11}{'TIER':<10}{'WINDOW':>10}  {'$ IN/OUT per Mtok':<18}"]
    for mi in models:
        mark = "*" if mi.id == default else " "
        avail = "" if mi.available else "  (unavailable)"
        rows.append(f"{mi.short_name:<9}{mi.id:<26}{mi.provider:<11}{mi.tier:<10}{mi.context_window:>10,}  "
                    f"{mi.pricing.input_per_mtok:g} / {mi.pricing.output_per_mtok:g}{mark}{avail}")
    return "\n".join(rows + ["* default"])


def tasks_text(tasks: TaskList) -> str:
    if not tasks.tasks:
        return "no tasks"
    done = sum(t.status == "completed" for t in tasks.tasks)
    lines = [f"{done}/{len(tasks.tasks)} completed" + (f" (by {tasks.updated_by})" if tasks.updated_by else "")]
    for t in tasks.tasks:
        text = t.active_form if t.status == "in_progress" and t.active_form else t.content
        lines.append(f"{_STATUS_MARK[t.status]} {t.id}. {text}")
    return "\n".join(lines)


def key_hint(providers: list[m.ProviderStatus]) -> str:
    """What to set to leave the emulator, in the daemon's words: the variable each of
    its providers reads its key from (clients know no provider of their own)."""
    named = [f"{p.key_env[0]} ({p.display_name or p.name})" for p in providers if p.key_env]
    return f"Set {' or '.join(named)}" if named else "Configure a provider's API key"


def status_text(s: m.StatusResult) -> str:
    lines = [f"duologue daemon {s.daemon_version} (protocol {s.protocol_version}), pid {s.pid}, "
             f"up {s.uptime_s:.0f}s" + ("  *** EMULATOR: replies are simulated offline ***" if s.emulator else ""),
             f"home: {s.home}", f"socket: {s.socket}",
             f"{s.sessions} sessions, {s.clients} clients, {len(s.running_turns)} running turns"]
    for p in s.providers:
        state = "emulator" if p.emulator else ("configured" if p.configured else "no API key")
        cooling = f", cooling down until {p.cooling_down_until:%H:%M:%S}" if p.cooling_down_until else ""
        named = f" ({p.display_name})" if p.display_name else ""
        lines.append(f"  {p.name}{named}: {state}{cooling}")
    for t in s.running_turns:
        lines.append(f"  turn {t.turn_id} in {t.session_id}: {t.model}, {t.output_tokens} tokens so far")
    return "\n".join(lines)


THINKING_PREVIEW = 72


def thinking_line(thinking: str) -> str:
    """A model's thinking, collapsed to one marked line that is never read as the reply."""
    flat = " ".join(thinking.split())
    words = len(flat.split())
    preview = flat if len(flat) <= THINKING_PREVIEW else flat[:THINKING_PREVIEW - 1] + "…"
    return f"[thought, {words} word{'s' if words != 1 else ''}: {preview}]"


def refusal_line(msg: Message) -> str:
    """Why a reply was refused, in the provider's words; left out of later requests."""
    refusal = msg.refusal
    if refusal is None:
        return "refused"
    why = f" ({refusal.category})" if refusal.category else ""
    said = f": {refusal.explanation}" if refusal.explanation else ""
    return f"refused by {refusal.provider}{why}{said}; left out of later turns"


def format_cost(usd: float) -> str:
    """Dollars with enough digits to tell one cheap reply from another."""
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def compact_tokens(tokens: int) -> str:
    """``950``, ``12.3k``, ``1M``: short enough for a status line."""
    if tokens < 1000:
        return str(tokens)
    if tokens < 1_000_000:
        return f"{tokens / 1000:.1f}k".replace(".0k", "k")
    return f"{tokens / 1_000_000:.2f}".rstrip("0").rstrip(".") + "M"


def osc52(text: str) -> str:
    """The escape that puts ``text`` on the terminal's clipboard (OSC 52; some
    terminals ask first, or need it allowed)."""
    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\a"

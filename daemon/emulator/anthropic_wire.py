"""The Anthropic Messages API, request side: what the emulator accepts and refuses.

Pure functions (no sockets): credential checks, Anthropic's error body
``{"type": "error", "error": {...}, "request_id": ...}``, and the validation of a
Messages request down to a :class:`ClaudeRequest`. The emulator refuses what the
real API refuses, with the real wording where the providers' docs or their users'
reports show it:

- unknown or retired model: 404 ``not_found_error`` "model: <id>";
- ``thinking`` configurations the model rejects (Troubleshooting thinking; the
  Opus 5.5 / Sonnet 5.5 "what's new" pages);
- forced tool use (``tool_choice`` any / tool) while thinking is on (Extended
  thinking; the 5.5 "what's new" pages: "Forced tool use returns an error");
- a final assistant message on models without prefill (4.6+ and 5.x migration
  notes): "This model does not support assistant message prefill. ...";
- a tool continuation whose assistant turn does not start with its thinking block
  while thinking is on (Extended thinking, "Preserving thinking blocks");
- thinking / redacted_thinking blocks whose signature this emulator did not issue
  for this model and text ("Invalid `signature` in `thinking` block");
- empty or whitespace-only text blocks, empty messages;
- ``tool_use`` without its ``tool_result`` right after;
- more than four ``cache_control`` breakpoints (Prompt caching);
- images Claude cannot read (a media type, size or data it refuses; a model
  without image input): :mod:`images`.

Wording marked "(ours)" below is not in the stored docs; the rest is quoted.
Rendering the answer lives in :mod:`anthropic_stream`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .access import key_matches
from .caching import Segment
from .default_reply import Conversation, Turn
from .images import ImageError, check_claude
from .models import ClaudeModel, ModelTable
from .signing import Signer

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    429: "Number of request tokens has exceeded your per-minute rate limit (emulated).",
    500: "Internal server error (emulated).",
    529: "Overloaded (emulated).",
}
PREFILL = ("This model does not support assistant message prefill. "
           "The conversation must end with a user message.")
THINKING_FIRST = (
    "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking")
ADAPTIVE_HINT = ' Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
THINKING_TYPES = ("enabled", "disabled", "between_tools", "adaptive")
MAX_BREAKPOINTS = 4


class WireError(Exception):
    """A request the real API would reject; carries the status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    text = message or DEFAULT_MESSAGES.get(status) or f"Emulated error {status}."
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": f"req_emu_{uuid.uuid4().hex[:20]}"}


def check_auth(headers: Any, api_key: str) -> tuple[int, str] | None:
    """Check the credential (only ``api_key`` is valid) and the version header;
    return (status, message) on failure. A missing or wrong key is Anthropic's 401
    ``authentication_error`` (Errors: "There's an issue with your API key")."""
    key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    if not key:
        return 401, "x-api-key header is required"
    if not key_matches(key, api_key):
        return 401, "invalid x-api-key"
    if not headers.get("anthropic-version"):
        return 400, "anthropic-version: header is required"
    return None


@dataclass
class ClaudeRequest:
    """A Messages request the emulator accepted, with what the answer depends on."""

    model: ClaudeModel
    stream: bool
    conv: Conversation
    thinking: str  # "up_front", "between_tools" or "off"
    display: str  # "summarized" or "omitted"
    segments: list[Segment]
    breakpoints: list[tuple[int, str]]  # (segment index, ttl), in prompt order


def _thinking(model: ClaudeModel, body: dict[str, Any]) -> tuple[str, str]:
    """Resolve the request's ``thinking`` against what the model accepts."""
    config = body.get("thinking")
    kind = None
    if config is not None:
        if not isinstance(config, dict) or "type" not in config:
            raise WireError(400, "thinking.type: Field required")
        kind = config["type"]
        if kind not in THINKING_TYPES:
            raise WireError(400, f"thinking: Input tag '{kind}' found using 'type' does not match any of the "
                                 "expected tags: 'enabled', 'disabled', 'between_tools', 'adaptive'")
        if kind not in model.thinking_types and not (kind == "disabled" and model.thinks == "none"):
            if kind == "disabled" and "between_tools" in model.thinking_types:
                hint = ' Use "thinking.type.between_tools" to turn off up-front thinking.'  # (ours)
            elif "adaptive" in model.thinking_types:
                hint = ADAPTIVE_HINT
            else:
                hint = ' Use "thinking.type.enabled" with "budget_tokens".'  # (ours)
            raise WireError(400, f'"thinking.type.{kind}" is not supported for this model.{hint}')
        if kind == "enabled":
            budget = config.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise WireError(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= body["max_tokens"]:
                raise WireError(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
    display = (config or {}).get("display") or model.display_default
    if display not in ("summarized", "omitted"):
        raise WireError(400, "thinking.display: Input should be 'summarized' or 'omitted'")
    if model.thinks == "none" or kind == "disabled":
        return "off", display
    if kind == "between_tools":
        return "between_tools", display
    if kind in ("adaptive", "enabled") or model.thinks in ("always", "default"):
        return "up_front", display
    return "off", display


def _content_blocks(message: dict[str, Any], index: int, final: bool) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise WireError(400, f"messages.{index}.content: Input should be a valid list")
    if not content and not (final and message.get("role") == "assistant"):
        raise WireError(400, f"messages.{index}: all messages must have non-empty content except for the "
                             "optional final assistant message")
    return content


def _check_text(block: dict[str, Any], where: str, path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise WireError(400, f"{path}.text: Field required")
    if not text:
        raise WireError(400, f"{where}: text content blocks must be non-empty")
    if not text.strip():
        raise WireError(400, f"{where}: text content blocks must contain non-whitespace text")
    return text


def _strip(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


class _Breakpoints:
    """Collects ``cache_control`` markers in prompt order and validates each one."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def take(self, block: Any, path: str, position: int) -> None:
        marker = block.get("cache_control") if isinstance(block, dict) else None
        if marker is None:
            return
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            raise WireError(400, f"{path}.cache_control.type: Input should be 'ephemeral'")
        ttl = marker.get("ttl", "5m")
        if ttl not in ("5m", "1h"):
            raise WireError(400, f"{path}.cache_control.ttl: Input should be '5m' or '1h'")
        self.found.append((position, ttl))

    def checked(self) -> list[tuple[int, str]]:
        if len(self.found) > MAX_BREAKPOINTS:
            raise WireError(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                 f"Found {len(self.found)}.")
        ordered = sorted(set(self.found))
        ttls = [ttl for _, ttl in ordered]
        if "5m" in ttls and "1h" in ttls[ttls.index("5m"):]:
            raise WireError(400, "cache_control: a breakpoint with ttl '1h' must not come after one with "
                                 "ttl '5m' (longer TTLs first)")  # (ours)
        return ordered


def parse_request(body: dict[str, Any], models: ModelTable | None = None,
                  signer: Signer | None = None) -> ClaudeRequest:
    """Validate a Messages request like the real API and reduce it.

    Usable without a server as an oracle of what the real API accepts (the model
    table and signer then default to the emulator's built-in ones).
    """
    models = models or ModelTable()
    signer = signer or Signer()
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise WireError(400, "model: Field required")
    if not isinstance(body.get("max_tokens"), int):
        raise WireError(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "messages: at least one message is required")
    model = models.claude_model(model_id)
    if model is None:
        raise WireError(404, f"model: {model_id}")
    mode, display = _thinking(model, body)

    segments: list[Segment] = []
    marks = _Breakpoints()
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise WireError(400, "tools: Input should be a valid list")
    for number, tool in enumerate(tools):
        marks.take(tool, f"tools.{number}", len(segments))
        segments.append(Segment.of({"tool": _strip(tool)}))
    system = body.get("system")
    system_blocks = [{"type": "text", "text": system}] if isinstance(system, str) and system else system or []
    if not isinstance(system_blocks, list):
        raise WireError(400, "system: Input should be a valid list")
    for number, block in enumerate(system_blocks):
        if not isinstance(block, dict):
            raise WireError(400, f"system.{number}: Input should be a valid dictionary")
        _check_text(block, "system", f"system.{number}")
        marks.take(block, f"system.{number}", len(segments))
        segments.append(Segment.of({"system": _strip(block)}))
    segments.append(Segment.of({"settings": {"tool_choice": body.get("tool_choice"),
                                             "thinking": body.get("thinking")}}, free=True))

    turns: list[Turn] = []
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise WireError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        blocks = _content_blocks(message, index, index == len(messages) - 1)
        turn = Turn(role=role)
        answered: set[str] = set()
        for number, block in enumerate(blocks):
            path = f"messages.{index}.content.{number}"
            _read_block(block, role, path, model, signer, messages, turn, answered)
            marks.take(block, path, len(segments))
            segments.append(Segment.of({"role": role, "first": number == 0, "block": _strip(block)}))
        if open_calls and open_calls != answered:
            raise WireError(
                400,
                f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                + ", ".join(sorted(open_calls - answered) or sorted(answered - open_calls))
                + ". Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )
        if answered and not open_calls:
            raise WireError(400, f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks")
        open_calls = {b.get("id", "") for b in blocks if b.get("type") == "tool_use"}
        turns.append(turn)

    if messages[-1].get("role") == "assistant" and model.forbids_prefill:
        raise WireError(400, PREFILL)
    if mode == "up_front":
        _demand_thinking_first(messages)
    choice = body.get("tool_choice")
    if mode != "off" and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise WireError(400, "Thinking may not be enabled when tool_choice forces tool use.")
    automatic = body.get("cache_control")
    if automatic is not None:
        marks.take(body, "cache_control", len(segments) - 1)
    tool_names = [str(t.get("name", "")) for t in tools]
    system_text = "".join(str(b.get("text", "")) for b in system_blocks if b.get("type") == "text")
    conv = Conversation(model=model.id, turns=turns, tool_names=tool_names, system=system_text or None)
    return ClaudeRequest(model, bool(body.get("stream")), conv, mode, display, segments, marks.checked())


def _read_block(block: dict[str, Any], role: str, path: str, model: ClaudeModel, signer: Signer,
                messages: list[Any], turn: Turn, answered: set[str]) -> None:
    kind = block.get("type")
    if kind == "text":
        turn.text += _check_text(block, "messages", path)
    elif kind == "image" and role == "user":
        try:
            check_claude(block, path, model.images, model.id, turn)
        except ImageError as e:
            raise WireError(400, str(e)) from None
    elif kind == "document" and role == "user":
        pass
    elif kind == "tool_use" and role == "assistant":
        turn.tool_calls.append(str(block.get("name", "")))
    elif kind == "tool_result" and role == "user":
        answered.add(block.get("tool_use_id", ""))
        turn.tool_results.append(_tool_name(messages, block.get("tool_use_id", "")))
    elif kind == "thinking" and role == "assistant":
        if "signature" not in block:
            raise WireError(400, f"{path}.thinking.signature: Field required")
        if not signer.check_thinking(model.id, block.get("thinking"), block.get("signature")):
            raise WireError(400, f"{path}: Invalid `signature` in `thinking` block")
        turn.thinking += str(block.get("thinking") or "")
    elif kind == "redacted_thinking" and role == "assistant":
        if not signer.check_redacted(model.id, block.get("data")):
            raise WireError(400, f"{path}: Invalid `data` in `redacted_thinking` block")  # (ours)
    else:
        raise WireError(400, f"{path}: unexpected block type {kind!r} for role {role}")


def _demand_thinking_first(messages: list[Any]) -> None:
    """With thinking on, the assistant turn answered by the final tool results must
    open with its thinking (or redacted_thinking) block."""
    last = messages[-1]
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list):
        return
    if not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content) or len(messages) < 2:
        return
    index = len(messages) - 2
    previous = messages[index].get("content")
    blocks = [{"type": "text", "text": previous}] if isinstance(previous, str) else previous or []
    found = blocks[0].get("type") if blocks else "nothing"
    if found not in ("thinking", "redacted_thinking"):
        raise WireError(400, THINKING_FIRST.format(index=index, found=found))


def _tool_name(messages: list[Any], call_id: str) -> str:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("id") == call_id:
                    return str(block.get("name", ""))
    return call_id

"""The models the emulator knows, written from the providers' own references.

The emulator keeps its own table instead of reading the daemon's catalog: a test
double that shares the code under test's idea of the world cannot catch that idea
being wrong. Each entry states what the real API does for that id, because those
facts decide which requests it refuses:

- Claude ids come from the anthropic SDK's ``types/model.py`` list; thinking
  behaviour from the model pages and "Troubleshooting thinking" (which
  ``thinking.type`` values each model accepts, whether it thinks when the request
  sets none); prefill from the 4.6 / 5.x migration notes ("This model does not
  support assistant message prefill"); minimum cacheable prompt length from the
  prompt caching page (512 tokens on the 5.x line, 1,024 to 4,096 on 4.x);
  ``notes_in_thinking`` from the Opus 5.5 / Sonnet 5.5 / Fable 5.1 "what's new"
  pages ("text between tool calls comes back in thinking blocks").
- Gemini ids and thinking levels from the Gemini 3.x developer guides and model
  pages; thought-signature enforcement from the thought-signatures page (Gemini 3
  models return 400 when a current-turn function call lacks its signature); the
  implicit-caching minimum from the caching page (1,024 tokens Flash, 4,096 Pro).

Release dates the stored docs do not give (Fable 5.2, Mythos 5.2, Sonnet 5) are
approximate; nothing in the emulator depends on them beyond list ordering.
Tests may add models of their own with :meth:`ModelTable.add`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Lifecycle = Literal["active", "deprecated", "retired"]
# always: thinks whatever the request says; default: thinks unless turned off;
# on_request: thinks only when the request asks; none: cannot think.
Thinks = Literal["always", "default", "on_request", "none"]
Display = Literal["summarized", "omitted"]

EFFORT_5X = ("low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class ClaudeModel:
    id: str
    display_name: str
    released: str  # YYYY-MM-DD
    line: str | None
    thinks: Thinks
    thinking_types: frozenset[str]  # the ``thinking.type`` values the model accepts
    display_default: Display  # what ``thinking.display`` defaults to
    forbids_prefill: bool
    min_cache_tokens: int
    notes_in_thinking: bool = False  # text written before a tool call arrives as a thinking block
    lifecycle: Lifecycle = "active"
    context_window: int = 1_000_000
    max_output: int = 128_000
    effort_levels: tuple[str, ...] = EFFORT_5X
    images: bool = True  # reads image blocks (every listed Claude model does; tests add one that does not)

    @property
    def available(self) -> bool:
        return self.lifecycle != "retired"


@dataclass(frozen=True)
class GeminiModel:
    id: str
    display_name: str
    version: str
    thinks: Thinks
    thinking_levels: tuple[str, ...]  # empty: the model takes a thinkingBudget instead (2.5)
    default_level: str | None
    requires_signatures: bool  # Gemini 3: current-turn function calls must carry thoughtSignature
    min_cache_tokens: int
    lifecycle: Lifecycle = "active"
    input_limit: int = 1_048_576
    output_limit: int = 65_536

    @property
    def available(self) -> bool:
        return self.lifecycle != "retired"


def _claude(id: str, name: str, released: str, line: str | None, thinks: Thinks, types: str,
            display: Display, *, prefill_ok: bool = False, min_cache: int = 512, notes: bool = False,
            lifecycle: Lifecycle = "active", context: int = 1_000_000, max_output: int = 128_000,
            effort: tuple[str, ...] = EFFORT_5X) -> ClaudeModel:
    return ClaudeModel(id, name, released, line, thinks, frozenset(types.split()), display,
                       not prefill_ok, min_cache, notes, lifecycle, context, max_output, effort)


OLD_EFFORT = ("low", "medium", "high")
CLAUDE_MODELS: tuple[ClaudeModel, ...] = (
    # 5.x: adaptive thinking; Fable / Mythos / Opus 5.5 cannot turn it off, Sonnet 5.5 turns
    # up-front thinking off with between_tools (its 400 for "disabled" points there).
    _claude("claude-fable-5-2", "Claude Fable 5.2", "2026-11-10", "fable", "always", "adaptive", "omitted", notes=True),
    _claude("claude-mythos-5-2", "Claude Mythos 5.2", "2026-11-10", "mythos", "always", "adaptive", "omitted",
            notes=True),
    _claude("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07", "haiku", "default", "adaptive disabled", "omitted"),
    _claude("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-09-28", "sonnet", "default", "adaptive between_tools",
            "omitted", notes=True),
    _claude("claude-opus-5-5", "Claude Opus 5.5", "2026-09-22", "opus", "always", "adaptive", "omitted", notes=True),
    _claude("claude-fable-5-1", "Claude Fable 5.1", "2026-08-18", "fable", "always", "adaptive", "omitted", notes=True),
    _claude("claude-mythos-5-1", "Claude Mythos 5.1", "2026-08-18", "mythos", "always", "adaptive", "omitted",
            notes=True),
    _claude("claude-fable-5", "Claude Fable 5", "2026-06-09", "fable", "always", "adaptive", "omitted"),
    _claude("claude-mythos-5", "Claude Mythos 5", "2026-06-09", "mythos", "always", "adaptive", "omitted"),
    _claude("claude-opus-5", "Claude Opus 5", "2026-06-02", "opus", "default", "adaptive disabled", "omitted"),
    _claude("claude-sonnet-5", "Claude Sonnet 5", "2026-04-21", "sonnet", "default", "adaptive disabled", "omitted",
            min_cache=1024),
    # 4.6 - 4.8: think only when asked; 4.7+ take adaptive only; 4.6+ refuse prefill.
    _claude("claude-opus-4-8", "Claude Opus 4.8", "2026-03-12", "opus", "on_request", "adaptive disabled", "omitted",
            min_cache=1024, effort=EFFORT_5X),
    _claude("claude-opus-4-7", "Claude Opus 4.7", "2026-02-24", "opus", "on_request", "adaptive disabled", "omitted",
            min_cache=2048, effort=EFFORT_5X),
    _claude("claude-mythos-preview", "Claude Mythos Preview", "2026-02-10", "mythos", "on_request",
            "adaptive enabled disabled", "omitted", min_cache=1024),
    _claude("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05", "opus", "on_request", "adaptive enabled disabled",
            "summarized", min_cache=4096, effort=("low", "medium", "high", "max")),
    _claude("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17", "sonnet", "on_request",
            "adaptive enabled disabled", "summarized", min_cache=1024, effort=OLD_EFFORT),
    # 4.5: extended thinking (budget_tokens) only, prefill still allowed, 200K context.
    _claude("claude-opus-4-5", "Claude Opus 4.5", "2025-11-24", "opus", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=4096, context=200_000, max_output=64_000, effort=OLD_EFFORT),
    _claude("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24", "opus", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=4096, context=200_000, max_output=64_000, effort=OLD_EFFORT),
    _claude("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15", "haiku", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=4096, context=200_000, max_output=64_000, effort=()),
    _claude("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15", "haiku", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=4096, context=200_000, max_output=64_000, effort=()),
    _claude("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29", "sonnet", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=1024, lifecycle="deprecated", context=200_000,
            max_output=64_000, effort=()),
    # Retired: listed with lifecycle "retired", requests naming them get 404.
    _claude("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22", "sonnet", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=1024, lifecycle="retired", context=200_000, max_output=64_000,
            effort=()),
    _claude("claude-opus-4-20250514", "Claude Opus 4", "2025-05-22", "opus", "on_request", "enabled disabled",
            "summarized", prefill_ok=True, min_cache=1024, lifecycle="retired", context=200_000, max_output=32_000,
            effort=()),
    _claude("claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24", "sonnet", "on_request",
            "enabled disabled", "summarized", prefill_ok=True, min_cache=1024, lifecycle="retired",
            context=200_000, max_output=64_000, effort=()),
    _claude("claude-3-5-sonnet-20241022", "Claude Sonnet 3.5 (New)", "2024-10-22", "sonnet", "none", "disabled",
            "summarized", prefill_ok=True, min_cache=1024, lifecycle="retired", context=200_000, max_output=8_192,
            effort=()),
    _claude("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22", "haiku", "none", "disabled",
            "summarized", prefill_ok=True, min_cache=2048, lifecycle="retired", context=200_000, max_output=8_192,
            effort=()),
)

THREE = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
GEMINI_MODELS: tuple[GeminiModel, ...] = (
    GeminiModel("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", "3.1-pro-preview", "always",
                ("LOW", "MEDIUM", "HIGH"), "HIGH", True, 4096),
    GeminiModel("gemini-3.8-flash", "Gemini 3.8 Flash", "3.8", "always", ("LOW", "MEDIUM", "HIGH"), "MEDIUM",
                True, 1024),
    GeminiModel("gemini-3.7-flash", "Gemini 3.7 Flash", "3.7", "always", THREE, "MEDIUM", True, 1024),
    GeminiModel("gemini-3.6-flash", "Gemini 3.6 Flash", "3.6", "always", THREE, "MEDIUM", True, 1024),
    GeminiModel("gemini-3.5-flash", "Gemini 3.5 Flash", "3.5", "always", THREE, "MEDIUM", True, 1024),
    GeminiModel("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite", "3.5", "always", THREE, "MINIMAL", True, 1024),
    GeminiModel("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite", "3.1", "always", THREE, "MINIMAL", True, 1024),
    GeminiModel("gemini-3-flash-preview", "Gemini 3 Flash Preview", "3-flash-preview", "always", THREE, "HIGH",
                True, 1024),
    GeminiModel("gemini-3-pro-preview", "Gemini 3 Pro Preview", "3-pro-preview", "always", ("LOW", "HIGH"), "HIGH",
                True, 4096, lifecycle="retired"),
    # 2.5: thinking budget instead of levels; signatures are returned but not enforced.
    GeminiModel("gemini-2.5-pro", "Gemini 2.5 Pro", "2.5", "always", (), None, False, 4096),
    GeminiModel("gemini-2.5-flash", "Gemini 2.5 Flash", "001", "default", (), None, False, 1024),
    GeminiModel("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", "001", "on_request", (), None, False, 1024),
    GeminiModel("gemini-2.0-flash", "Gemini 2.0 Flash", "2.0", "none", (), None, False, 1024, lifecycle="retired",
                output_limit=8_192),
    GeminiModel("gemini-1.5-pro", "Gemini 1.5 Pro", "001", "none", (), None, False, 32_768, lifecycle="retired",
                input_limit=2_000_000, output_limit=8_192),
)


@dataclass
class ModelTable:
    """The emulator's models, by provider. A copy per emulator, so tests may add ids."""

    claude: dict[str, ClaudeModel] = field(default_factory=lambda: {m.id: m for m in CLAUDE_MODELS})
    gemini: dict[str, GeminiModel] = field(default_factory=lambda: {m.id: m for m in GEMINI_MODELS})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, model: ClaudeModel | GeminiModel) -> None:
        """Make an extra id known (e.g. a user-configured model a test relies on)."""
        with self._lock:
            if isinstance(model, ClaudeModel):
                self.claude[model.id] = model
            else:
                self.gemini[model.id] = model

    def alias(self, new_id: str, like: str) -> None:
        """Know ``new_id`` as a copy of ``like`` (``emu.models.alias("claude-tiny", like="claude-haiku-4-5")``)."""
        with self._lock:
            model: ClaudeModel | GeminiModel | None = self.claude.get(like) or self.gemini.get(like)
        if model is None:
            raise KeyError(f"no model {like!r} to copy")
        self.add(replace(model, id=new_id, display_name=f"{model.display_name} ({new_id})", lifecycle="active"))

    def claude_model(self, model_id: str) -> ClaudeModel | None:
        """The model a Messages request may use: None when unknown or retired."""
        with self._lock:
            found = self.claude.get(model_id)
        return found if found is not None and found.available else None

    def gemini_model(self, model_id: str) -> GeminiModel | None:
        with self._lock:
            found = self.gemini.get(model_id.removeprefix("models/"))
        return found if found is not None and found.available else None

    def claude_listing(self) -> list[ClaudeModel]:
        """Newest first, as the Models API lists them; retired ids stay listed."""
        with self._lock:
            models = list(self.claude.values())
        return sorted(models, key=lambda m: m.released, reverse=True)

    def gemini_listing(self) -> list[GeminiModel]:
        """Google lists only models that can still be called."""
        with self._lock:
            return [m for m in self.gemini.values() if m.available]


# -- wire shapes of the two models endpoints ---------------------------------------


def _yes(flag: bool) -> dict[str, bool]:
    return {"supported": flag}


def claude_model_info(m: ClaudeModel) -> dict[str, Any]:
    """One ``ModelInfo`` of ``GET /v1/models`` (fields as in anthropic/types/model_info.py)."""
    thinking = m.thinks != "none"
    efforts = set(m.effort_levels)
    return {
        "type": "model",
        "id": m.id,
        "display_name": m.display_name,
        "created_at": f"{m.released}T00:00:00Z",
        "lifecycle": m.lifecycle,
        "deprecated_at": None if m.lifecycle == "active" else f"{m.released}T00:00:00Z",
        "retires_at": None,
        "line": m.line,
        "max_input_tokens": m.context_window,
        "max_tokens": m.max_output,
        "capabilities": {
            "batch": _yes(True),
            "citations": _yes(True),
            "code_execution": _yes(m.thinks != "none"),
            "context_management": {"supported": thinking, "clear_thinking_20251015": _yes(thinking),
                                   "clear_tool_uses_20250919": _yes(thinking), "compact_20260112": _yes(thinking)},
            "effort": {"supported": bool(efforts), **{level: _yes(level in efforts)
                                                      for level in ("low", "medium", "high", "max", "xhigh")}},
            "image_input": _yes(m.images),
            "pdf_input": _yes(True),
            "server_tools": {"supported": True, "code_execution": _yes(True), "web_search": _yes(True)},
            "structured_outputs": _yes(thinking),
            "thinking": {"supported": thinking, "types": {
                kind: _yes(kind in m.thinking_types or (kind == "disabled" and not thinking))
                for kind in ("adaptive", "between_tools", "disabled", "enabled")}},
        },
    }


def gemini_model_info(m: GeminiModel) -> dict[str, Any]:
    """One ``Model`` of ``GET /v1beta/models`` (camelCase, as google-genai's _Model_from_mldev reads it)."""
    return {
        "name": f"models/{m.id}",
        "version": m.version,
        "displayName": m.display_name,
        "description": f"{m.display_name} (provider emulator)",
        "inputTokenLimit": m.input_limit,
        "outputTokenLimit": m.output_limit,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent",
                                       "batchGenerateContent"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
        "thinking": m.thinks != "none",
    }

"""Figure 4: does the whole context reach the model after a switch?

A seeded corpus of scripted conversations (20 in full mode, 6 to 10 turns each)
moves between sonnet, flash, haiku and gem-pro, with some prompts pinned and some
carrying code-context blocks. Every reply is scripted with a unique text, so each
earlier turn can be looked for, verbatim, in what the emulator received (in one
string of the request, or in a message's text parts joined: a streamed reply goes
back as the parts it came in).

- Fits: for every provider request that follows a switch, the share of earlier turns
  (prompt and reply both verbatim) and of pinned items (pinned prompts and attached
  code) found in the request. Target 100%. All requests are counted too.
- Summarised: a config ``[[models]]`` entry with a 4,000-token window ("tiny") and
  ``summary_model = "flash"``. Conversations of long turns, then a switch to tiny
  and one more question. In tiny's request: the share of pinned items, and of the
  recent turns (the two turns before the question, plus the question), that arrive
  verbatim; whether a summary stands in for the rest; and how many older turns
  still arrive verbatim (expected: few; they are summarised).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

from duologue.daemon.emulator import Emulator, Reply
from duologue.protocol.entities import CodeContextBlock

from .fixtures import Daemon, temp_home, wait_turn
from .harness import Row, progress, value_row

MODELS = {"sonnet": "anthropic", "haiku": "anthropic", "flash": "gemini", "gem-pro": "gemini"}
MODEL_IDS = {"sonnet": "claude-sonnet-5-5", "haiku": "claude-haiku-4-5", "flash": "gemini-3.8-flash",
             "gem-pro": "gemini-3.1-pro-preview", "tiny": "claude-tiny"}

TINY = """
[[models]]
id = "claude-tiny"
provider = "anthropic"
display_name = "Tiny window (bench)"
short_name = "tiny"
context_window = 4000
max_output_tokens = 500
pricing = { input_per_mtok = 1.0, output_per_mtok = 1.0 }
tier = "fast"
"""

WORDS = ("lifetime borrow trait async channel buffer socket index cursor schema commit "
         "parser token window retry stream queue").split()


@dataclass
class Item:
    text: str
    kind: str  # "prompt", "reply", "pinned", "code"


@dataclass
class Tally:
    found: int = 0
    expected: int = 0

    def add(self, ok: bool) -> None:
        self.expected += 1
        self.found += ok

    @property
    def share(self) -> float:
        return 100.0 * self.found / self.expected if self.expected else float("nan")


@dataclass
class Counts:
    turns_after_switch: Tally = field(default_factory=Tally)
    pinned_after_switch: Tally = field(default_factory=Tally)
    turns_all: Tally = field(default_factory=Tally)
    pinned_all: Tally = field(default_factory=Tally)
    switches: int = 0
    requests: int = 0


def _texts(value: Any) -> list[str]:
    """Every string in a request body, and the text of each list of text parts joined:
    a reply comes back as the parts it streamed in (Gemini keeps a part that carried
    a thoughtSignature apart from the text before it), so its text is whole only
    once they are joined."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        parts = [v["text"] for v in value if isinstance(v, dict) and isinstance(v.get("text"), str)]
        joined = ["".join(parts)] if parts else []
        return joined + [t for v in value for t in _texts(v)]
    return []


def _verbatim(text: str, body: dict[str, Any]) -> bool:
    return any(text in t for t in _texts(body))


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


async def _turn(c: Any, emu: Emulator, sid: str, provider: str, prompt: str, reply: str,
                code: CodeContextBlock | None, pin: bool) -> list[dict[str, Any]]:
    """Send one turn; the bodies of the provider requests it caused."""
    emu.script(provider, Reply(text=reply))
    before = len(emu.received)
    sent = await c.send(sid, prompt, context=[code] if code else None, pin=pin)
    await wait_turn(c, sent.turn_id)
    return [r.body for r in emu.received[before:] if r.provider == provider]


async def _fits(d: Daemon, emu: Emulator, conversations: int) -> Counts:
    rng = random.Random(20261125)
    counts = Counts()
    async with d.client("bench-context") as c:
        for cid in range(conversations):
            current = rng.choice(list(MODELS))
            s = await c.create_session(model=current)
            await c.attach(s.id, since_seq=s.last_seq)
            turns: list[tuple[Item, Item, list[Item]]] = []
            for t in range(rng.randint(6, 10)):
                switched = False
                if t > 0 and rng.random() < 0.5:
                    current = rng.choice([x for x in MODELS if x != current])
                    await c.switch_model(s.id, current)
                    switched = True
                    counts.switches += 1
                pin = rng.random() < 0.2
                code = None
                if rng.random() < 0.3:
                    code = CodeContextBlock(path=f"src/c{cid}/t{t}.py", language="python",
                                            text=f"def c{cid}_t{t}(x):\n    return x  # CODE-{cid}-{t}\n")
                prompt = f"C{cid}-T{t} question: {_sentence(rng, 12)}?"
                reply = f"C{cid}-T{t} answer: {_sentence(rng, 10)}."
                bodies = await _turn(c, emu, s.id, MODELS[current], prompt, reply, code, pin)
                assert len(bodies) == 1, f"expected one request for the turn, got {len(bodies)}"
                body = bodies[0]
                counts.requests += 1
                for p_item, r_item, pinned_items in turns:
                    whole = _verbatim(p_item.text, body) and _verbatim(r_item.text, body)
                    counts.turns_all.add(whole)
                    if switched:
                        counts.turns_after_switch.add(whole)
                    for item in pinned_items:
                        counts.pinned_all.add(_verbatim(item.text, body))
                        if switched:
                            counts.pinned_after_switch.add(_verbatim(item.text, body))
                pinned_items = ([Item(prompt, "pinned")] if pin else []) + ([Item(code.text, "code")] if code else [])
                turns.append((Item(prompt, "prompt"), Item(reply, "reply"), pinned_items))
            progress(f"fits: conversation {cid + 1}/{conversations}: {len(turns)} turns")
    return counts


@dataclass
class SummaryCounts:
    pinned: Tally = field(default_factory=Tally)
    recent: Tally = field(default_factory=Tally)
    older_verbatim: Tally = field(default_factory=Tally)
    summarised: Tally = field(default_factory=Tally)


async def _summarised(d: Daemon, emu: Emulator, conversations: int) -> SummaryCounts:
    rng = random.Random(4000)
    counts = SummaryCounts()
    async with d.client("bench-summary") as c:
        for cid in range(conversations):
            current = rng.choice(["sonnet", "flash"])
            s = await c.create_session(model=current)
            await c.attach(s.id, since_seq=s.last_seq)
            turns: list[tuple[str, str]] = []
            pinned: list[str] = []
            n = rng.randint(7, 9)
            pinned_at = set(rng.sample(range(n - 2), 2))  # pinned and code live in the older part too
            code_at = set(rng.sample(range(n), 2))
            for t in range(n):
                if t and rng.random() < 0.4:
                    current = "flash" if current == "sonnet" else "sonnet"
                    await c.switch_model(s.id, current)
                code = None
                if t in code_at:
                    code = CodeContextBlock(path=f"src/s{cid}/t{t}.rs", language="rust",
                                            text=f"fn s{cid}_t{t}() -> u32 {{ {t} }} // KEEP-{cid}-{t}\n")
                    pinned.append(code.text)
                if t in pinned_at:  # a pinned decision is short; the discussion around it is long
                    prompt = f"S{cid}-T{t} PINNED decision: {_sentence(rng, 15)}."
                    pinned.append(prompt)
                else:
                    prompt = f"S{cid}-T{t} long question: {_sentence(rng, 300)}"
                reply = f"S{cid}-T{t} answer: {_sentence(rng, 20)}."
                await _turn(c, emu, s.id, MODELS[current], prompt, reply, code, t in pinned_at)
                turns.append((prompt, reply))
            await c.switch_model(s.id, "tiny")
            question = f"S{cid} LATEST question: what did we decide?"
            bodies = await _turn(c, emu, s.id, "anthropic", question, f"S{cid} tiny answer.", None, False)
            body = next(b for b in bodies if b.get("model") == MODEL_IDS["tiny"])
            counts.summarised.add("Summary of the" in json.dumps(body))
            for text in pinned:
                counts.pinned.add(_verbatim(text, body))
            for p, r in turns[-2:]:
                counts.recent.add(_verbatim(p, body))
                counts.recent.add(_verbatim(r, body))
            counts.recent.add(_verbatim(question, body))
            for p, r in turns[:-2]:
                if p not in pinned:
                    counts.older_verbatim.add(_verbatim(p, body))
            progress(f"summarised: conversation {cid + 1}/{conversations}: {n} turns then tiny")
    return counts


def run(quick: bool) -> list[Row]:
    conversations, summarised = (3, 1) if quick else (20, 5)
    with Emulator() as emu, temp_home() as home:
        with Daemon(home / "fits", emulator=emu) as d:
            fits = asyncio.run(_fits(d, emu, conversations))
        emu.reset()
        emu.models.alias("claude-tiny", like="claude-haiku-4-5")  # served, with a window we set small
        with Daemon(home / "tiny", emulator=emu, top='summary_model = "flash"', config=TINY) as d:
            summ = asyncio.run(_summarised(d, emu, summarised))
    target = "100%"
    rows = [
        value_row("context after a switch: earlier turns reaching the new model", fits.turns_after_switch.share,
                  "%", target=target, met=fits.turns_after_switch.share == 100.0, n=fits.turns_after_switch.expected,
                  note=f"{conversations} conversations, {fits.requests} requests, {fits.switches} switches; "
                       f"over all requests: {fits.turns_all.found}/{fits.turns_all.expected} turns, "
                       f"{fits.pinned_all.found}/{fits.pinned_all.expected} pinned items"),
        value_row("context after a switch: pinned items and code context reaching the new model",
                  fits.pinned_after_switch.share, "%", target=target,
                  met=fits.pinned_after_switch.share == 100.0, n=fits.pinned_after_switch.expected),
        value_row("summarised history: pinned items and code context arriving verbatim", summ.pinned.share, "%",
                  target=target, met=summ.pinned.share == 100.0, n=summ.pinned.expected,
                  note=f"{summarised} conversations switched to a 4,000-token model; a summary stood in "
                       f"{summ.summarised.found}/{summ.summarised.expected} times; older unpinned prompts still "
                       f"verbatim: {summ.older_verbatim.found}/{summ.older_verbatim.expected}"),
        value_row("summarised history: last two turns and the question arriving verbatim", summ.recent.share, "%",
                  target=target, met=summ.recent.share == 100.0, n=summ.recent.expected),
    ]
    return rows

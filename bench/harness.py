"""The benchmark harness: result rows, timing, percentiles, machine facts, the table.

Every benchmark module exposes ``run(quick: bool) -> list[Row]`` and prints its
progress with :func:`progress`. A :class:`Row` is one figure: ours beside the floor or
peer measured in the same run, and their ratio. Rows are plain dicts so that modules
written by anyone (``bench/lsp_roundtrip.py``) need nothing from here but may use it.

Row keys (only ``figure`` is required; a missing ``ratio`` is computed from the p50s,
or from the values; ``machine`` and ``date`` are filled in by the runner):

    figure        what was measured, e.g. "daemon/status round trip (async client)"
    ours_p50_ms   ours, median, milliseconds        ours_p99_ms   ours, 99th percentile
    floor_name    the floor or peer, e.g. "raw pyzmq DEALER/ROUTER echo"
    floor_p50_ms  floor, median, milliseconds       floor_p99_ms  floor, 99th percentile
    ratio         ours / floor (p50); < 1 means we are faster
    ours_value, floor_value, unit
                  for figures that are not latencies (MB, %, ops/s): one value each
    target        the goal as text, e.g. "<= 1.5x floor"   met    True / False / None
    n             how many samples ours has        note    method or caveat, short
    machine, date set by the runner
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypedDict

Row = dict[str, Any]


class RowShape(TypedDict, total=False):
    """Documentation of a row's keys (rows themselves are plain dicts)."""

    figure: str
    ours_p50_ms: float | None
    ours_p99_ms: float | None
    floor_name: str | None
    floor_p50_ms: float | None
    floor_p99_ms: float | None
    ratio: float | None
    ours_value: float | None
    floor_value: float | None
    unit: str
    target: str
    met: bool | None
    n: int
    note: str
    machine: str
    date: str


# --- progress --------------------------------------------------------------------------

_current = ["bench"]


def set_bench(name: str) -> None:
    _current[0] = name


def progress(message: str) -> None:
    """One progress line on stderr, prefixed with the running benchmark's name."""
    print(f"[{_current[0]}] {message}", file=sys.stderr, flush=True)


# --- timing and statistics -------------------------------------------------------------

now_ns = time.perf_counter_ns
"""Monotonic, system-wide on Linux (CLOCK_MONOTONIC): comparable across threads."""


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    data = sorted(samples)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def p50(samples: Iterable[float]) -> float:
    return percentile(samples, 50)


def p99(samples: Iterable[float]) -> float:
    return percentile(samples, 99)


def ms(ns: int | float) -> float:
    return ns / 1e6


def time_calls(fn: Callable[[], Any], n: int, *, warmup: int = 0, label: str = "",
               every: int | None = None) -> list[float]:
    """Call ``fn`` n times (after ``warmup`` untimed calls); latencies in ms. The
    garbage collector runs as it would in any client: a collection that lands in a
    sample is part of what a caller waits."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    every = every or max(1, n // 4)
    for i in range(n):
        t0 = now_ns()
        fn()
        out.append(ms(now_ns() - t0))
        if label and (i + 1) % every == 0:
            progress(f"{label}: {i + 1}/{n}")
    return out


async def time_async_calls(fn: Callable[[], Any], n: int, *, warmup: int = 0, label: str = "",
                           every: int | None = None) -> list[float]:
    """:func:`time_calls` for a coroutine function."""
    for _ in range(warmup):
        await fn()
    out: list[float] = []
    every = every or max(1, n // 4)
    for i in range(n):
        t0 = now_ns()
        await fn()
        out.append(ms(now_ns() - t0))
        if label and (i + 1) % every == 0:
            progress(f"{label}: {i + 1}/{n}")
    return out


def time_interleaved(*fns: Callable[[], Any], n: int, warmup: int = 0, label: str = "",
                     every: int | None = None) -> tuple[list[float], ...]:
    """One call of each of ``fns`` in turn (ours first, then its floors), n rounds
    (after ``warmup`` untimed ones); the latencies of each, in ms, in that order.

    Interleaved call by call, they all meet the same machine: a burst of other work, a
    frequency change or a cold cache lands on each instead of on whichever ran in its
    quiet minute. The garbage collector stays on, as it is for a user: a collection
    costs whichever side's allocations set it off.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    out: tuple[list[float], ...] = tuple([] for _ in fns)
    every = every or max(1, n // 4)
    for i in range(n):
        for fn, samples in zip(fns, out):
            t0 = now_ns()
            fn()
            samples.append(ms(now_ns() - t0))
        if label and (i + 1) % every == 0:
            progress(f"{label}: {i + 1}/{n}")
    return out


async def time_async_pairs(ours: Callable[[], Any], floor: Callable[[], Any], n: int, *, warmup: int = 0,
                           label: str = "", every: int | None = None) -> tuple[list[float], list[float]]:
    """:func:`time_interleaved` of two in a running event loop: ``ours`` is a
    coroutine function, ``floor`` a blocking one called between its awaits."""
    for _ in range(warmup):
        await ours()
        floor()
    a: list[float] = []
    b: list[float] = []
    every = every or max(1, n // 4)
    for i in range(n):
        t0 = now_ns()
        await ours()
        t1 = now_ns()
        floor()
        t2 = now_ns()
        a.append(ms(t1 - t0))
        b.append(ms(t2 - t1))
        if label and (i + 1) % every == 0:
            progress(f"{label}: {i + 1}/{n}")
    return a, b


def latency_row(figure: str, ours: list[float], floor_name: str | None, floor: list[float] | None,
                *, target: str = "", met: bool | None = None, note: str = "", with_p99: bool = True) -> Row:
    """A row from two lists of latencies in ms; ``with_p99=False`` leaves the p99s out
    (a 99th percentile of a few samples is one sample's luck)."""
    row: Row = {
        "figure": figure,
        "ours_p50_ms": p50(ours),
        "ours_p99_ms": p99(ours) if with_p99 else None,
        "floor_name": floor_name,
        "floor_p50_ms": p50(floor) if floor else None,
        "floor_p99_ms": p99(floor) if floor and with_p99 else None,
        "n": len(ours),
        "target": target,
        "met": met,
        "note": note,
    }
    if floor:
        row["ratio"] = row["ours_p50_ms"] / row["floor_p50_ms"] if row["floor_p50_ms"] else None
    return row


def value_row(figure: str, ours: float, unit: str, floor_name: str | None = None,
              floor: float | None = None, *, target: str = "", met: bool | None = None,
              note: str = "", n: int | None = None) -> Row:
    row: Row = {"figure": figure, "ours_value": ours, "unit": unit, "floor_name": floor_name,
                "floor_value": floor, "target": target, "met": met, "note": note}
    if floor:
        row["ratio"] = ours / floor
    if n is not None:
        row["n"] = n
    return row


# --- machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()}, {cores} cores, Python {platform.python_version()}"


def today() -> str:
    return _dt.date.today().isoformat()


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- the table -------------------------------------------------------------------------


def finish_row(row: Row) -> Row:
    """Fill in what the runner owns and what can be derived."""
    row = dict(row)
    row.setdefault("machine", machine())
    row.setdefault("date", today())
    if row.get("ratio") is None:
        if row.get("ours_p50_ms") is not None and row.get("floor_p50_ms"):
            row["ratio"] = row["ours_p50_ms"] / row["floor_p50_ms"]
        elif row.get("ours_value") is not None and row.get("floor_value"):
            row["ratio"] = row["ours_value"] / row["floor_value"]
    return row


def _num(x: Any, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        text = f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:,.0f}"
    else:
        text = f"{x:,}" if isinstance(x, int) else str(x)
    return f"{text} {unit}".strip()


def _pair(row: Row, side: str) -> tuple[str, str]:
    """(p50 cell, p99 cell) for ours or floor."""
    if row.get(f"{side}_p50_ms") is not None:
        return _num(row[f"{side}_p50_ms"]), _num(row.get(f"{side}_p99_ms"))
    value = row.get(f"{side}_value")
    return (_num(value, row.get("unit", "")) if value is not None else "–"), ""


def _ratio(row: Row) -> str:
    r = row.get("ratio")
    return "–" if r is None else f"{r:.2f}×"


def _met(row: Row) -> str:
    met = row.get("met")
    target = row.get("target") or ""
    if not target:
        return ""
    return f"{target} {'✅' if met else '❌' if met is False else ''}".strip()


def render_table(rows: list[Row]) -> str:
    """A Markdown table; latencies in ms, other values carry their unit."""
    head = ("| Figure | Ours p50 | Ours p99 | Floor / peer | Floor p50 | Floor p99 | Ratio | Target | n "
            "| Machine | Date |")
    lines = [head, "|" + "|".join(["---"] * 11) + "|"]
    for row in rows:
        o50, o99 = _pair(row, "ours")
        f50, f99 = _pair(row, "floor")
        cells = [row["figure"], o50, o99, row.get("floor_name") or "–", f50 if row.get("floor_name") else "–",
                 f99, _ratio(row), _met(row), _num(row.get("n")), row.get("machine", ""), row.get("date", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def render_notes(rows: list[Row]) -> str:
    notes = [(row["figure"], row["note"]) for row in rows if row.get("note")]
    return "\n".join(f"- **{fig}**: {note}" for fig, note in notes)

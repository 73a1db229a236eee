"""Bandwidth traces: one format and one WiFi-like generator for the simulator, the
testbed and the live benchmark.

A trace is CSV with a header ``time_s,link,mbit``; ``link`` names both ends, e.g.
``c1-g1``. Each row sets that link's rate (both directions) from ``time_s`` seconds
after the start, until the next row for that link. The testbed applies a trace with
tc (topologies.schedule), the simulator reads one link of it as its WAN rate
(``sim.bw_trace: path/to/trace.csv``, ``sim.trace_link``).

    python -m topologies.schedule wifi --link c1-g1 --duration 60 --out wifi.csv
"""
from __future__ import annotations

import bisect
import csv
import functools
import math
import os
from dataclasses import dataclass

import numpy as np

MIN_MBIT, MAX_MBIT = 0.1, 1000.0
WAN_LINK = "c1-g1"


class TraceError(ValueError):
    """A malformed trace."""


@dataclass(frozen=True, order=True)
class RateChange:
    time_s: float
    link: str
    mbit: float

    @property
    def ends(self):
        return tuple(self.link.split("-", 1))


def is_trace_file(name):
    """A ``bw_trace`` value naming a CSV file rather than a generator."""
    return isinstance(name, str) and name.endswith(".csv")


def parse_trace(lines, source="trace"):
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or set(reader.fieldnames) != {"time_s", "link", "mbit"}:
        raise TraceError(f"{source}: header must be time_s,link,mbit")
    changes = []
    for number, row in enumerate(reader, start=2):
        try:
            change = RateChange(float(row["time_s"]), row["link"].strip(), float(row["mbit"]))
        except (TypeError, ValueError, AttributeError):
            raise TraceError(f"{source}:{number}: time_s and mbit must be numbers") from None
        if (change.time_s < 0 or not math.isfinite(change.time_s)
                or not MIN_MBIT <= change.mbit <= MAX_MBIT):
            raise TraceError(f"{source}:{number}: need time_s >= 0 and {MIN_MBIT} <= mbit <= {MAX_MBIT}")
        if change.link.count("-") != 1 or "" in change.ends:
            raise TraceError(f"{source}:{number}: link must look like 'c1-g1'")
        changes.append(change)
    return sorted(changes)


def load_trace(path):
    """The trace in ``path``, read once per version of the file (the simulator asks for it
    every episode, and every SimConfig checks it)."""
    try:
        return list(_read_trace(str(path), os.stat(path).st_mtime_ns))
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None


@functools.lru_cache(maxsize=16)
def _read_trace(path, _mtime_ns):
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return tuple(parse_trace(handle, source=path))
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not UTF-8 text") from None


def write_trace(changes, handle):
    writer = csv.writer(handle)
    writer.writerow(["time_s", "link", "mbit"])
    for change in changes:
        writer.writerow([f"{change.time_s:.3f}", change.link, f"{change.mbit:.3f}"])


def wifi_rates(mean_mbit, steps, rng: np.random.Generator):
    """A WiFi-like rate per step: an AR(1) walk in log space around ``mean_mbit``
    (so the mean holds) with deep fades (a fifth of the rate) one step in twenty."""
    x = np.zeros(steps)
    for i in range(1, steps):
        x[i] = 0.8 * x[i - 1] + rng.normal(0, 0.35)
    rates = mean_mbit * np.exp(x - 0.5 * 0.35 ** 2 / (1 - 0.64))
    rates[rng.random(steps) < 0.05] *= 0.2
    return rates


def wifi_trace(link, duration_s, seed=0, step_s=1.0, mean_mbit=30.0, low_mbit=2.0, high_mbit=60.0):
    """The WiFi-like generator as a trace for ``link``, clipped to [low, high] Mbit/s."""
    steps = max(int(math.ceil(duration_s / step_s)), 1)
    rates = np.clip(wifi_rates(mean_mbit, steps, np.random.default_rng(seed)), low_mbit, high_mbit)
    return [RateChange(round(i * step_s, 3), link, round(float(r), 3)) for i, r in enumerate(rates)]


class LinkRate:
    """One link's rate over time from a trace, in bit/s (piecewise constant)."""

    def __init__(self, changes, link=WAN_LINK):
        ends = set(link.split("-", 1))
        rows = [c for c in changes if set(c.ends) == ends]
        if not rows:
            raise TraceError(f"the trace has no rows for link {link}")
        self.times = [c.time_s for c in rows]
        self.bps = [c.mbit * 1e6 for c in rows]

    @property
    def mean_bps(self):
        return float(np.mean(self.bps))

    def at(self, t):
        return self.bps[max(bisect.bisect_right(self.times, t) - 1, 0)]

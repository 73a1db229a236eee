"""Bandwidth schedules: link rates that change over time, applied live with tc.

A trace is CSV with a header ``time_s,link,mbit``; ``link`` names both ends,
e.g. ``c1-g1``. Each row sets that link's rate (both directions) from ``time_s``
seconds after the schedule starts. ``wifi_trace`` makes a WiFi-like random trace.

    python -m topologies.schedule wifi --link c1-g1 --duration 60 --out wifi.csv
"""

import argparse
import csv
import math
import random
import sys
import threading
import time
from dataclasses import dataclass


class ScheduleError(ValueError):
    """A malformed trace."""


@dataclass(frozen=True, order=True)
class RateChange:
    time_s: float
    link: str
    mbit: float

    @property
    def ends(self):
        return tuple(self.link.split("-", 1))


def parse_trace(lines, source="trace"):
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or set(reader.fieldnames) != {"time_s", "link", "mbit"}:
        raise ScheduleError(f"{source}: header must be time_s,link,mbit")
    changes = []
    for number, row in enumerate(reader, start=2):
        try:
            change = RateChange(float(row["time_s"]), row["link"].strip(), float(row["mbit"]))
        except (TypeError, ValueError):
            raise ScheduleError(f"{source}:{number}: time_s and mbit must be numbers") from None
        if change.time_s < 0 or not 0.1 <= change.mbit <= 1000 or not math.isfinite(change.time_s):
            raise ScheduleError(f"{source}:{number}: need time_s >= 0 and 0.1 <= mbit <= 1000")
        if change.link.count("-") != 1 or "" in change.ends:
            raise ScheduleError(f"{source}:{number}: link must look like 'c1-g1'")
        changes.append(change)
    return sorted(changes)


def load_trace(path):
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return parse_trace(handle, source=path)
    except OSError as exc:
        raise ScheduleError(f"cannot read {path}: {exc}") from None


def write_trace(changes, handle):
    writer = csv.writer(handle)
    writer.writerow(["time_s", "link", "mbit"])
    for change in changes:
        writer.writerow([f"{change.time_s:.3f}", change.link, f"{change.mbit:.3f}"])


def wifi_trace(link, duration_s, seed=0, step_s=1.0, mean_mbit=30.0, low_mbit=2.0, high_mbit=60.0):
    """A WiFi-like trace: a mean-reverting random walk with occasional deep fades."""
    rng = random.Random(seed)
    rate, changes, t = mean_mbit, [], 0.0
    while t < duration_s:
        rate += 0.3 * (mean_mbit - rate) + rng.gauss(0, 0.15 * mean_mbit)
        faded = rng.random() < 0.08
        value = low_mbit + rng.random() * low_mbit if faded else rate
        changes.append(RateChange(round(t, 3), link, round(min(max(value, low_mbit), high_mbit), 3)))
        t += step_s
    return changes


# The links carry jumbo frames (topologies.nodes.MTU): htb's quantum is one whole frame
# (9000 bytes of IP and the Ethernet header), its bucket holds more than one.
HTB_OPTIONS = "burst 15k quantum 9014"


def htb_change_commands(interface, mbit):
    """tc commands re-rating an interface shaped by topologies.nodes.ShapedIntf."""
    return [f"tc class change dev {interface} parent 5:0 classid 5:1 htb rate {mbit}Mbit {HTB_OPTIONS}"]


class ScheduleRunner(threading.Thread):
    """Applies a trace in real time through ``set_rate(link_ends, mbit)``."""

    def __init__(self, changes, set_rate, clock=time.monotonic):
        super().__init__(daemon=True, name="bandwidth-schedule")
        self.changes, self.set_rate, self.clock = list(changes), set_rate, clock
        self.applied = []
        self._halt = threading.Event()

    def run(self):
        start = self.clock()
        for change in self.changes:
            if self._halt.wait(max(0.0, start + change.time_s - self.clock())):
                return
            self.set_rate(change.ends, change.mbit)
            self.applied.append((self.clock() - start, change))

    def stop(self):
        self._halt.set()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Make bandwidth traces for the testbed.")
    sub = parser.add_subparsers(dest="command", required=True)
    wifi = sub.add_parser("wifi", help="a WiFi-like random trace")
    wifi.add_argument("--link", default="c1-g1")
    wifi.add_argument("--duration", type=float, default=60.0)
    wifi.add_argument("--step", type=float, default=1.0)
    wifi.add_argument("--mean", type=float, default=30.0)
    wifi.add_argument("--seed", type=int, default=0)
    wifi.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    changes = wifi_trace(args.link, args.duration, args.seed, args.step, args.mean)
    if args.out == "-":
        write_trace(changes, sys.stdout)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as handle:
            write_trace(changes, handle)


if __name__ == "__main__":
    main()

"""Bandwidth schedules: link rates that change over time, applied live with tc.

The trace format and the WiFi-like generator are agents.traces (shared with the
simulator): CSV ``time_s,link,mbit``, each row setting that link's rate (both
directions) from ``time_s`` seconds after the schedule starts.

    python -m topologies.schedule wifi --link c1-g1 --duration 60 --out wifi.csv
"""

import argparse
import logging
import sys
import threading
import time

from agents.traces import RateChange, TraceError, load_trace, parse_trace, wifi_trace, write_trace

LOG = logging.getLogger(__name__)
__all__ = ["RateChange", "TraceError", "load_trace", "parse_trace", "wifi_trace", "write_trace", "ScheduleRunner"]


# The links carry jumbo frames (topologies.nodes.MTU): htb's quantum is one whole frame
# (9000 bytes of IP and the Ethernet header), its bucket holds more than one.
HTB_OPTIONS = "burst 15k quantum 9014"


def htb_change_commands(interface, mbit):
    """tc commands re-rating an interface shaped by topologies.nodes.ShapedIntf."""
    return [f"tc class change dev {interface} parent 5:0 classid 5:1 htb rate {mbit}Mbit {HTB_OPTIONS}"]


class ScheduleRunner(threading.Thread):
    """Applies a trace in real time through ``set_rate(link_ends, mbit)``.

    A row that cannot be applied (tc failed, the link went away) is logged and kept in
    ``failed`` with its reason; the rows after it are still applied.
    """

    def __init__(self, changes, set_rate, clock=time.monotonic):
        super().__init__(daemon=True, name="bandwidth-schedule")
        self.changes, self.set_rate, self.clock = list(changes), set_rate, clock
        self.applied, self.failed = [], []
        self._halt = threading.Event()

    def run(self):
        start = self.clock()
        for change in self.changes:
            if self._halt.wait(max(0.0, start + change.time_s - self.clock())):
                return
            try:
                self.set_rate(change.ends, change.mbit)
            except Exception as exc:  # noqa: BLE001 -- one bad row must not end the schedule
                LOG.error("bandwidth schedule: %s at %.1f s not applied: %s", change.link, change.time_s, exc)
                self.failed.append((change, str(exc)))
                continue
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

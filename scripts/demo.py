"""Live demo: start the default testbed and print the controller's global view.

    make view            (or: .venv/bin/python -m scripts.demo [--keep-running])

Starts OVS (userspace datapath), ryu-manager with controller.app and the default
edge-cloud topology, waits until every link has a measured capacity and every host
reports its load, checks reachability (pingall), then prints the view as tables.
"""

import argparse
import sys
import time

from topologies.spec import TopologySpec
from topologies.testbed import Testbed, TestbedError


def format_table(rows, columns):
    """Plain fixed-width table of dict rows."""
    cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def print_view(view):
    links = sorted(view["links"], key=lambda l: (l["kind"], l["src"], l["dst"]))
    print(f"\nLinks ({len(links)} directed; capacity measured by packet trains, "
          "rate from port counters)")
    print(format_table(links, ["src", "dst", "kind", "capacity_mbps", "rate_mbps",
                               "utilisation", "available_mbps", "capacity_age_s"]))
    nodes = sorted(view["nodes"], key=lambda n: (n["role"], n["name"]))
    rows = [dict(n, **(n["load"] or {})) for n in nodes]
    print(f"\nNodes ({len(nodes)}; load from heartbeats delivered as packet-ins)")
    print(format_table(rows, ["name", "role", "ip", "switch", "alive", "cpu_share", "busy", "queue_len"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=3)
    parser.add_argument("--keep-running", type=float, default=0,
                        help="seconds to keep the testbed up after printing (REST stays available)")
    args = parser.parse_args(argv)
    spec = TopologySpec(edges=args.edges)
    started = time.monotonic()
    try:
        with Testbed(spec) as bed:
            print(f"controller REST: http://127.0.0.1:{bed.rest_port}/sdncep/v1/view "
                  f"(log {bed.controller_log})", flush=True)
            bed.wait_until(bed.view_complete, timeout=60, interval=0.5, what="a complete global view")
            loss = bed.net.pingAll(timeout=2)
            print_view(bed.rest("/sdncep/v1/view"))
            print(f"\npingall loss: {loss:.0f}%   view complete after {time.monotonic() - started:.1f}s")
            if args.keep_running:
                time.sleep(args.keep_running)
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

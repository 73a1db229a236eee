"""The fidelity monitor of a live run: did the emulation keep its promises?

Mininet-HiFi's lesson: an emulation that isolates resources must also check, run by
run, that the isolation held. Per cell of a live run this reports:

* per node, the share of its hops whose real compute took longer than the paced
  (emulated) time: **overruns**, counted by the workers (runtime.pacing);
* per link, the rate the tensor transfers achieved while the link carried them
  (the bytes on the wire over the time any transfer's bytes were arriving: from
  its first byte to its last, at the receiver) against the rate the link was
  shaped to. A transfer is charged to the first link on its path with
  the lowest shaped rate (its bottleneck); payload bytes are counted with their
  TCP/IP/Ethernet framing (9014 bytes on the wire per 8948 of payload with the
  testbed's jumbo frames), as htb counts them;
* per link, **stalls**: transfers that waited over ``STALL_S`` for their first byte
  while the link carried nothing. A frame may wait for its first byte behind the
  earlier frames of its connection (they go in order) or behind other transfers
  queued on the link; neither leaves the link idle. A wait with the link idle, longer
  than Linux's minimum TCP retransmission timeout, is lost packets recovered by
  timeout or a path that carried nothing: the rate check cannot see it, since it
  times a transfer from its first byte;
* per node, the TCP segments its worker's outgoing connections retransmitted (the
  workers' counters, runtime.worker): whether a stall lost packets;
* the controller's overhead (plan request to flows installed), p50 and p99.

A cell whose overruns exceed 1% of its paced hops, or where a link delivered under
90% of its rate while busy, is marked "emulation overloaded", and the report names
the nodes that overran or the link. Stalls are reported beside it, not counted as
overload: they need not be the emulation's (a flow rule can black-hole a path too).
"""

import functools
import statistics
from collections import defaultdict
from dataclasses import dataclass

from runtime.client import record_hops

OVERRUN_LIMIT = 0.01
RATE_LIMIT = 0.90
MIN_BUSY_S = 0.25          # a link busier than this in a cell is judged
WIRE_PER_PAYLOAD = 9014 / 8948   # a jumbo frame (topologies.nodes.MTU) over its TCP payload
WAN = frozenset(("c1", "g1"))
STALL_S = 0.2              # Linux's minimum TCP retransmission timeout


@functools.lru_cache(maxsize=None)
def _out_bytes(model):
    from agents.calibration import ProfileStore
    return tuple(float(b) for b in ProfileStore().reference(model).out_bytes)


def link_rates(spec_links, wan_mbit):
    """{frozenset((a, b)): Mbit/s} of the shaped links; the WAN at ``wan_mbit`` if given."""
    rates = {frozenset((a, b)): mbit for a, b, mbit, _kind in spec_links if mbit}
    if wan_mbit is not None and WAN in rates:
        rates[WAN] = float(wan_mbit)
    return rates


@dataclass(frozen=True)
class Leg:
    """One tensor transfer, charged to its bottleneck ``link``: sent (the sender began
    writing), first and last byte at the receiver (absolute times), its wire bits."""
    link: str
    connection: tuple        # (sender, receiver): its frames go in order
    sent: float | None
    start: float
    end: float
    bits: float
    task: str


def transfers(record, rates):
    """The :class:`Leg` of each tensor transfer of a finished task."""
    out = []
    paths = record.get("paths") or []       # one per hop, then the result's way back
    hops = record_hops(record)
    for i, ((name, point, _), path) in enumerate(zip(hops, paths)):
        switches = path["switches"]
        shaped = [(rates[frozenset(pair)], pair) for pair in zip(switches, switches[1:]) if frozenset(pair) in rates]
        start, end = record.get(f"h{i}_first_byte_at"), record.get(f"h{i}_arrived_at")
        if not shaped or start is None or end is None or not end > start:
            continue
        slowest = min(rate for rate, _ in shaped)
        link = next(pair for rate, pair in shaped if rate == slowest)
        bits = 8.0 * _out_bytes(record["model"])[point] * WIRE_PER_PAYLOAD
        sender = record["device"] if i == 0 else hops[i - 1][0]
        out.append(Leg("-".join(link), (sender, name), record.get(f"h{i}_sent_at"), start, end, bits,
                       f"{record['method']} {record['device']}#{record['seq']} hop {i}"))
    return out


def _merged(intervals):
    """The union of (start, end) intervals, as sorted disjoint [start, end] lists."""
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def busy_time(intervals):
    """Length of the union of (start, end) intervals."""
    return sum(end - start for start, end in _merged(intervals))


def _legs_by_link(records, rates):
    legs = defaultdict(list)
    for record in records:
        if record["status"] == "ok":
            for leg in transfers(record, rates):
                legs[leg.link].append(leg)
    return legs


def link_fidelity(records, rates):
    return _link_fidelity(_legs_by_link(records, rates), rates)


def _link_fidelity(legs, rates):
    out = {}
    for link, items in sorted(legs.items()):
        busy = busy_time([(leg.start, leg.end) for leg in items])
        configured = rates[frozenset(link.split("-"))]
        achieved = sum(leg.bits for leg in items) / busy / 1e6 if busy > 0 else None
        out[link] = {"configured_mbps": configured, "achieved_mbps": achieved, "busy_s": busy,
                     "transfers": len(items), "ratio": None if achieved is None else achieved / configured}
    return out


def _covered(lo, hi, merged):
    """How much of [lo, hi] the sorted disjoint intervals ``merged`` cover."""
    return sum(max(0.0, min(hi, end) - max(lo, start)) for start, end in merged)


def stalls(records, rates):
    """{link: [stall]}: the transfers that waited over ``STALL_S`` for their first byte
    while the link carried no transfer's bytes. A transfer's wait begins when it was
    sent or, if later, when its connection's previous frame had arrived."""
    return _stalls(_legs_by_link(records, rates))


def _stalls(legs_by_link):
    out = {}
    for link, legs in sorted(legs_by_link.items()):
        merged = _merged((leg.start, leg.end) for leg in legs)
        previous_end = {}
        for leg in sorted(legs, key=lambda leg: leg.start):
            ready = max(leg.sent, previous_end.get(leg.connection, leg.sent)) if leg.sent is not None else None
            previous_end[leg.connection] = max(previous_end.get(leg.connection, leg.end), leg.end)
            if ready is None or leg.start - ready <= STALL_S:
                continue
            idle = (leg.start - ready) - _covered(ready, leg.start, merged)
            if idle > STALL_S:
                out.setdefault(link, []).append({"task": leg.task, "connection": "->".join(leg.connection),
                                                 "wait_s": leg.start - ready, "idle_s": idle})
    return out


def node_fidelity(runs):
    """{node: hops, overruns, share, overrun_s, resent} summed over a cell's runs (bench_live's
    deltas); resent: TCP segments its worker's outgoing connections retransmitted (runs made
    before workers counted them: 0)."""
    out = {}
    for run in runs:
        node = out.setdefault(run["node"], {"hops": 0, "overruns": 0, "overrun_s": 0.0, "resent": 0})
        node["hops"] += run["paced_hops"]
        node["overruns"] += run["overruns"]
        node["overrun_s"] += run["overrun_s"]
        node["resent"] += run.get("tcp_retransmits", 0)
    for node in out.values():
        node["share"] = node["overruns"] / node["hops"] if node["hops"] else 0.0
    return out


def cell_fidelity(records, runs, rates):
    """The fidelity of one cell: nodes, links, controller overhead, and the verdict."""
    nodes = node_fidelity(runs)
    legs = _legs_by_link(records, rates) if rates is not None else {}
    links, stalled = _link_fidelity(legs, rates), _stalls(legs)
    overhead = sorted(r["controller_overhead_s"] for r in records if r.get("controller_overhead_s") is not None)
    hops = sum(n["hops"] for n in nodes.values())
    overruns = sum(n["overruns"] for n in nodes.values())
    reasons = []
    if hops and overruns / hops > OVERRUN_LIMIT:
        reasons.append(f"{overruns} of {hops} paced hops overran ({overruns / hops:.1%}): "
                       + ", ".join(f"{name} {n['overruns']}/{n['hops']}" for name, n in nodes.items() if n["overruns"]))
    reasons += [f"link {name}: {l['achieved_mbps']:.1f} of {l['configured_mbps']:g} Mbit/s while busy "
                f"({l['ratio']:.0%})" for name, l in links.items()
                if l["ratio"] is not None and l["busy_s"] >= MIN_BUSY_S and l["ratio"] < RATE_LIMIT]
    stall_notes = [f"link {name}: {st['connection']} waited {st['wait_s']:.2f} s for its first byte, "
                   f"the link idle {st['idle_s']:.2f} s of it ({st['task']})"
                   for name, items in stalled.items() for st in items]
    resent = {name: n["resent"] for name, n in nodes.items() if n["resent"]}
    return {"nodes": nodes, "links": links, "stalls": stalled, "stall_notes": stall_notes, "resent": resent,
            "paced_hops": hops, "overruns": overruns,
            "overhead_p50_s": statistics.median(overhead) if overhead else None,
            "overhead_p99_s": overhead[min(len(overhead) - 1, round(0.99 * (len(overhead) - 1)))] if overhead else None,
            "overloaded": bool(reasons), "reasons": reasons}

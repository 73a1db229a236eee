"""The network side of a placed training job (issue 15): its paths, their bandwidth
reservations, and the flow rules and OpenFlow meters that hold its traffic to them.

Pure, like controller.routing: ``JobNetwork.place`` takes the global view and a job's
placement and returns what the switches must get; only controller.pricing_rest sends it.

A job is a parameter server (PS) at ``ps_ip:port`` and its workers; a worker on another
host than the PS pushes gradients to the PS and pulls parameters back over TCP. For each
such remote worker the job reserves ``worker_bps`` on every switch link of its path, both
ways, and the placement is refused if a link would carry more reservations than its
measured capacity (a link not measured yet is a JobNotReady: ask again). The text's
constraint (1k), remote workers x ``worker_bps`` <= ``ps_bps``, is checked as well.

Enforcement by meters (drop bands; a burst of ``BURST_S`` of traffic, so that the job's
short messages pass at line rate and only a sender that keeps exceeding its share loses
packets):

* on a worker host's switch, its traffic to the PS, and back: a meter each way at
  ``worker_bps`` x the job's workers on that host (their connections share one route);
* on the PS's switch, all of the job's traffic into the PS, and out of it: a meter each
  way at ``ps_bps`` (the PS's bandwidth, b_p x its PS nodes).

A path of one switch (worker and PS behind the same switch) gets the worker's meters only.
Paths are the widest after the other jobs' reservations; meter ids are allocated per
switch, so that no two jobs share one (deleting a meter deletes the flows that use it).
Rules carry the cookie ``JOB_COOKIE | jid``, so that the switches' flow counters count
each job's packets apart. They live until the job is removed, or ``JOB_IDLE_TIMEOUT_S``
without a packet (a job trains without pauses that long; the timeout only clears the rules
of a job whose driver died before removing them).
"""

import ipaddress
from dataclasses import dataclass, field, replace

from controller.routing import RoutingError, plan_transfer
from controller.view import switch_id

PRIORITY_JOB = 210               # above task transfers (200): a job's flows are reserved
JOB_COOKIE = 0x5DCE_0100_0000_0000
JOB_COOKIE_MASK = 0xFFFF_FF00_0000_0000
MAX_JOB_ID = 0xFFFF_FFFF
JOB_IDLE_TIMEOUT_S = 60
MAX_WORKERS = 64
MAX_JOBS = 4096                  # jobs placed at once: the state (and the switches' meters) stay bounded
BURST_S = 0.1
MIN_BURST_KBIT = 512
MAX_METER_ID = 0xFFFF0000       # OpenFlow's OFPM_MAX; ids above are reserved


class JobRefused(ValueError):
    """The network cannot carry the placement (no path, or a link over its capacity)."""


class JobNotReady(JobRefused):
    """A link on the job's paths has no capacity measurement yet (e.g. just after a
    controller restart): ask again in a moment rather than be refused."""


class JobRequestError(ValueError):
    """A malformed job request."""


@dataclass(frozen=True)
class JobSpec:
    jid: int
    ps_ip: str
    port: int
    workers: tuple        # worker host IPs, one entry per worker node (repeats allowed)
    worker_bps: float
    ps_bps: float

    @property
    def remote_workers(self):
        return tuple(ip for ip in self.workers if ip != self.ps_ip)


@dataclass(frozen=True)
class Meter:
    dpid: int
    meter_id: int
    rate_kbps: int
    burst_kbit: int


@dataclass(frozen=True)
class JobFlows:
    spec: JobSpec
    paths: tuple          # (worker ip, switch dpids) per remote worker
    reserved: dict        # (src dpid, dst dpid) -> bits/s this job reserves on that switch link
    rules: tuple          # FlowRules with a meter_id
    meters: tuple
    meter_roles: dict = field(default_factory=dict, compare=False)   # (dpid, meter id) -> its role in the job

    def report(self, view):
        names = {d["dpid"]: d["name"] for _, d in view.switch_graph().nodes(data=True)}
        return {"jid": self.spec.jid, "remote_workers": len(self.spec.remote_workers),
                "paths": [{"worker": ip, "switches": [names.get(d, str(d)) for d in path]}
                          for ip, path in self.paths],
                "reserved_mbps": {f"{names.get(a, a)}->{names.get(b, b)}": round(bps / 1e6, 3)
                                  for (a, b), bps in sorted(self.reserved.items())},
                "meters": len(self.meters), "rules": len(self.rules)}


def _number(data, key, low, high, integer=False):
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise JobRequestError(f"{key} must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise JobRequestError(f"{key} must be in [{low}, {high}], got {value}")
    return value


def _ip(value, what):
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise JobRequestError(f"{what} must be an IPv4 address, got {value!r}") from None


def parse_jid(text):
    """A job id from a URL path segment."""
    if not isinstance(text, str) or not text.isdigit() or len(text) > 10 or int(text) > MAX_JOB_ID:
        raise JobRequestError(f"job id must be an integer in [0, {MAX_JOB_ID}], got {text!r}")
    return int(text)


def parse_job(jid, data):
    """A JobSpec from a REST body ``{"ps": ip, "port": n, "workers": [ip, ...],
    "worker_mbps": x, "ps_mbps": y}``; ``jid`` from the path."""
    jid = parse_jid(jid)
    if not isinstance(data, dict):
        raise JobRequestError("the body must be a JSON object")
    unknown = sorted(set(data) - {"ps", "port", "workers", "worker_mbps", "ps_mbps"})
    if unknown:
        raise JobRequestError(f"unknown key(s) {unknown}; allowed: port, ps, ps_mbps, worker_mbps, workers")
    workers = data.get("workers")
    if not isinstance(workers, list) or not 1 <= len(workers) <= MAX_WORKERS:
        raise JobRequestError(f"workers must be a list of 1..{MAX_WORKERS} IPv4 addresses")
    return JobSpec(jid, _ip(data.get("ps"), "ps"), _number(data, "port", 1, 65535, integer=True),
                   tuple(_ip(w, "a worker") for w in workers),
                   _number(data, "worker_mbps", 0.001, 1e5) * 1e6, _number(data, "ps_mbps", 0.001, 1e6) * 1e6)


def _meter(dpid, meter_id, bps):
    kbps = max(1, round(bps / 1e3))
    return Meter(dpid, meter_id, kbps, max(MIN_BURST_KBIT, round(kbps * BURST_S)))


class JobNetwork:
    """The jobs whose flows are installed, what they reserve on each switch link, and
    the meter ids they hold on each switch (allocated from 1 up, so jobs never share one)."""

    def __init__(self):
        self.jobs = {}     # jid -> JobFlows
        self._meter_ids = {}   # (dpid, jid, role) -> meter id, for every committed job

    def reserved_bps(self, link, without=None):
        return sum(f.reserved.get(link, 0.0) for jid, f in self.jobs.items() if jid != without)

    def _meter_id(self, dpid, jid, role, taken):
        """The job's meter id for ``role`` on switch ``dpid``: the one it holds, or the
        lowest free one (``taken``: ids given out within this placement)."""
        held = self._meter_ids.get((dpid, jid, role))
        if held is not None:
            return held
        used = {mid for (d, j, _r), mid in self._meter_ids.items() if d == dpid and j != jid} | taken.get(dpid, set())
        mid = next(i for i in range(1, len(used) + 2) if i not in used)
        if mid > MAX_METER_ID:
            raise JobRefused(f"switch {dpid}: no meter id left")
        return mid

    def place(self, view, spec, settling=False):
        """JobFlows for ``spec``, on the widest paths after the other jobs' reservations,
        checked against the links' measured capacities; raises JobRefused, or JobNotReady
        for what a view still being rebuilt (``settling``: e.g. just after a controller
        restart) or a link not measured yet cannot tell."""
        if spec.jid not in self.jobs and len(self.jobs) >= MAX_JOBS:
            raise JobRefused(f"{MAX_JOBS} jobs are placed already")
        remote = spec.remote_workers
        if len(remote) * spec.worker_bps > spec.ps_bps * (1 + 1e-9):
            raise JobRefused(f"constraint (1k): {len(remote)} remote worker(s) x {spec.worker_bps / 1e6:g} Mbit/s "
                             f"exceed the PS bandwidth {spec.ps_bps / 1e6:g} Mbit/s")
        names = {d["dpid"]: d["name"] for _, d in view.switch_graph().nodes(data=True)}

        def residual(u, v):          # what the other jobs leave of a switch link
            capacity = view.graph.edges[u, v]["capacity_bps"]
            if capacity is None:
                return view.unmeasured_bps
            a, b = view.graph.nodes[u]["dpid"], view.graph.nodes[v]["dpid"]
            return capacity - self.reserved_bps((a, b), without=spec.jid)
        cookie = JOB_COOKIE | spec.jid
        reserved, rules, meters, paths, taken, roles = {}, [], {}, [], {}, {}

        def meter(dpid, role, bps):
            mid = next((m for (d, m), r in roles.items() if d == dpid and r == role), None) \
                or self._meter_id(dpid, spec.jid, role, taken)
            taken.setdefault(dpid, set()).add(mid)
            roles[(dpid, mid)] = role
            meters[(dpid, mid)] = _meter(dpid, mid, bps)
            return mid
        counts = {}
        for ip in remote:
            counts[ip] = counts.get(ip, 0) + 1
        for ip, count in counts.items():        # one route and one pair of meters per worker host
            try:
                transfer = plan_transfer(view, ip, spec.ps_ip, spec.port, idle_timeout=JOB_IDLE_TIMEOUT_S, hard_timeout=0,
                                         width_of=residual)
            except RoutingError as exc:
                raise (JobNotReady if settling else JobRefused)(str(exc)) from None
            path, bps = transfer.switches, count * spec.worker_bps
            paths.append((ip, path))
            for a, b in zip(path, path[1:]):
                for link in ((a, b), (b, a)):
                    reserved[link] = reserved.get(link, 0.0) + bps
            for rule in transfer.rules:
                forward = rule.match_dict["ipv4_src"] == ip
                if rule.dpid == path[0]:                  # the worker host's own rate, each way
                    mid = meter(rule.dpid, ("worker", ip, forward), bps)
                elif rule.dpid == path[-1]:               # all of the job's traffic into / out of the PS
                    mid = meter(rule.dpid, ("ps", forward), spec.ps_bps)
                else:
                    mid = 0
                rules.append(replace(rule, priority=PRIORITY_JOB, cookie=cookie, meter_id=mid))
        for (a, b), bps in reserved.items():
            if view.graph.edges[switch_id(a), switch_id(b)]["capacity_bps"] is None:
                raise JobNotReady(f"link {names.get(a, a)}->{names.get(b, b)} is not measured yet")
            capacity = view.available_bps(switch_id(a), switch_id(b), use_capacity=True)
            taken_bps = self.reserved_bps((a, b), without=spec.jid)
            if taken_bps + bps > capacity * (1 + 1e-9):
                raise JobRefused(f"link {names.get(a, a)}->{names.get(b, b)}: {capacity / 1e6:.1f} Mbit/s measured, "
                                 f"{taken_bps / 1e6:.1f} reserved by other jobs, job {spec.jid} needs "
                                 f"{bps / 1e6:.1f}")
        return JobFlows(spec, tuple(paths), reserved, tuple(rules), tuple(meters.values()), roles)

    def commit(self, flows):
        """Record ``flows`` as installed; returns the job's previous JobFlows (or None)."""
        jid = flows.spec.jid
        previous = self.jobs.get(jid)
        self.jobs[jid] = flows
        self._meter_ids = {k: v for k, v in self._meter_ids.items() if k[1] != jid}
        self._meter_ids.update({(dpid, jid, role): mid for (dpid, mid), role in flows.meter_roles.items()})
        return previous

    def remove(self, jid):
        self._meter_ids = {k: v for k, v in self._meter_ids.items() if k[1] != jid}
        return self.jobs.pop(jid, None)

    def uses_link(self, src_dpid, dst_dpid):
        """The jids whose paths cross switch link src-dst (either way)."""
        return [jid for jid, f in self.jobs.items() if (src_dpid, dst_dpid) in f.reserved]

"""From a plan request and the live view to a plan and the transfers it needs.

Pure (no Ryu): the app calls ``Planner.plan(view, request, now)`` and installs the
returned transfers' rules. The view becomes the decision core's ``Snapshot``:
every live edge and cloud host with its CPU share, busy fraction and queue from its
heartbeats, and the available bandwidth (widest path, measured) from the requesting
device to it and from it to the cloud. Then ``agents.decision.decide`` runs the
requested method (a forward pass for SDN-CEP), and each hop of the plan is pinned
to its widest path by ``controller.routing.plan_transfer``.
"""

from dataclasses import dataclass

from agents.cost import ACC, WAN
from controller.routing import RoutingError, plan_transfer
from controller.view import HEARTBEAT_STALE_AFTER
from controller.wan_share import FairShareLink


class PlanningError(RuntimeError):
    """No plan can be made (unknown device, no live cloud, unknown method...)."""


@dataclass(frozen=True)
class PlannedTask:
    reply: dict        # JSON-able answer for the device
    transfers: tuple   # controller.routing.Transfer per hop (and the result path)


@dataclass(frozen=True)
class Calibration:
    """Live corrections of the cost model's inputs (fed back by scripts.bench_live).

    ``compute[node]``: measured / profiled compute time on that node (the node is then
    costed as having cpu_share / factor cores); ``network``: measured / predicted
    transfer time (bandwidths are divided by it); ``overhead_s``: what a task costs
    beyond its transfers and compute (plan round trip, connections, framing), added
    to every predicted latency.
    """

    compute: tuple = ()
    network: float = 1.0
    overhead_s: float = 0.0

    def __post_init__(self):
        factors = dict(self.compute)
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and 0.2 <= v <= 5 for k, v in factors.items()):
            raise ValueError("compute factors must map node names to numbers in [0.2, 5]")
        if not (isinstance(self.network, (int, float)) and 0.2 <= self.network <= 5):
            raise ValueError("network factor must be a number in [0.2, 5]")
        if not (isinstance(self.overhead_s, (int, float)) and 0 <= self.overhead_s <= 1):
            raise ValueError("overhead_s must be a number of seconds in [0, 1]")
        object.__setattr__(self, "compute", tuple(sorted(factors.items())))

    @classmethod
    def from_mapping(cls, fields):
        if not isinstance(fields, dict) or set(fields) - {"compute", "network", "overhead_s"}:
            raise ValueError("calibration must be an object with 'compute', 'network' and/or 'overhead_s'")
        return cls(tuple(dict(fields.get("compute", {})).items()), fields.get("network", 1.0),
                   fields.get("overhead_s", 0.0))

    def as_dict(self):
        return {"compute": dict(self.compute), "network": self.network, "overhead_s": self.overhead_s}


class Ledger:
    """What the plans already made hold, and when.

    Heartbeats lag by up to half a second, so tasks planned in quick succession
    would not see each other in the view. The ledger keeps the reservations the
    cost model returned for every plan and hands them to the next decision: for the
    links ('lan', each sender's WAN lane 'wan@<sender>', and each device's uplink
    'acc' and WAN lane 'wan@acc'), when each is next free; for the nodes, the
    intervals they compute in, gaps included (tasks planned back to back reach a
    node at different times). It also remembers when it last used each link:
    port counters show our own transfers for a while after they end.

    Its ends are the cost model's predictions. A device that says it has no task in
    flight gets what the ledger still holds for it freed (:meth:`release`), so a
    prediction that was too late does not delay its next tasks.
    """

    RETAIN_S = 60.0
    PER_DEVICE = (ACC, f"{WAN}@{ACC}")   # stored as '<name>@<device ip>'

    def __init__(self):
        self._free_at = {}
        self._computing = {}  # node -> [(start, end, device ip)], absolute times
        self.wan = FairShareLink()
        self.wan_bps = 1e9  # the WAN's capacity, as the planner last measured it

    def backlog(self, resource, now):
        return max(self._free_at.get(resource, now) - now, 0.0)

    def used_within(self, resource, now, window_s):
        return self._free_at.get(resource, -float("inf")) > now - window_s

    def wan_used_within(self, now, window_s):
        return any(self.used_within(r, now, window_s) for r in self._free_at if r.startswith(f"{WAN}@"))

    def busy_wan_lanes(self, now):
        return {r for r, t in self._free_at.items() if r.startswith(f"{WAN}@") and t > now}

    @staticmethod
    def of_device(resource, device_ip):
        return f"{resource}@{device_ip}"

    def links(self, now, device_ip):
        """Backlogs of the shared links and of this device's own ones, as the cost model names them."""
        mine = {self.of_device(r, device_ip): r for r in self.PER_DEVICE}
        busy = {}
        for resource in self._free_at:
            if any(resource.startswith(f"{r}@") for r in self.PER_DEVICE) and resource not in mine:
                continue  # another device's
            if (backlog := self.backlog(resource, now)) > 0:
                busy[mine.get(resource, resource)] = backlog
        return tuple(sorted(busy.items()))

    def node_reserved(self, name, now):
        """The node's planned compute still to come, as (start, end) seconds from now."""
        return tuple((max(start - now, 0.0), end - now) for start, end, _ in self._computing.get(name, ()) if end > now)

    def commit(self, reservations, node_names, device_ip, now, wan_bits=()):
        """Record a plan's reservations; ``wan_bits`` gives the size of each of its WAN
        transfers as (lane, bits), lanes named as in the reservations."""
        wan_bps = self.wan_bps
        bits = dict(wan_bits)
        for resource, start, end in reservations:
            if resource in node_names:
                self._computing.setdefault(resource, []).append((now + start, now + end, device_ip))
                continue
            key = self.of_device(resource, device_ip) if resource in self.PER_DEVICE else resource
            if resource in bits:  # a WAN lane: when it empties comes from the replay below
                self.wan.add(key, now + start, bits[resource])
            else:
                self._free_at[key] = max(self._free_at.get(key, now), now + end)
        for lane, ends in self.wan.ends(wan_bps).items():
            self._free_at[lane] = ends[-1]
        self.wan.forget_before(now, wan_bps)
        self._free_at = {k: t for k, t in self._free_at.items() if t > now - self.RETAIN_S}
        self._computing = {n: sorted(i for i in spans if i[1] > now) for n, spans in self._computing.items()}

    def release(self, device_ip, now):
        """The device has no task in flight: what is held for it has ended by ``now``."""
        for resource in self.PER_DEVICE:
            key = self.of_device(resource, device_ip)
            if key in self._free_at:
                self._free_at[key] = min(self._free_at[key], now)
        self.wan.drop(self.of_device(f"{WAN}@{ACC}", device_ip))
        self._computing = {n: [i for i in spans if i[2] != device_ip or i[1] <= now]
                           for n, spans in self._computing.items()}


class Planner:
    def __init__(self, policies, store, cost=None, predictor=None, worker_port=9000, lan_bps=1e9,
                 rule_idle_timeout=5, rule_hard_timeout=120, stats_lag_s=2.5):
        self.calibration = Calibration()
        # how long port counters keep showing a transfer after it ended: one
        # polling period it is averaged over, plus the next one before it is read
        self.stats_lag_s = stats_lag_s
        self.ledger = Ledger()
        self.policies = dict(policies)
        self.store, self.cost, self.predictor = store, cost, predictor
        self.worker_port, self.lan_bps = worker_port, lan_bps
        self.timeouts = {"idle_timeout": rule_idle_timeout, "hard_timeout": rule_hard_timeout}

    @classmethod
    def from_files(cls, agent_checkpoint=None, predictor_path=None, profiles_dir=None, delta=0.6,
                   complexity_gate=False, agent_top_k=1, **kwargs):
        """Baselines always; SDN-CEP when trained agent checkpoints are given
        (comma-separated, one per model; and, if ``agent_top_k`` > 1, the DQN alone
        as ``sdn-cep-dqn``).

        The complexity gate is off by default: the shipped predictor is trained on
        the only labelled images available offline (8x8 digits) and scores the
        photos the devices send as hard (q near 1), which would send every task
        to the cloud. q is still computed and reported for each task.
        """
        from agents.baselines import make_baselines
        from agents.calibration import ProfileStore
        from agents.complexity import ComplexityPredictor
        from agents.config import CostConfig

        store = ProfileStore(profiles_dir) if profiles_dir else ProfileStore()
        policies = make_baselines(store)
        predictor = ComplexityPredictor.load(predictor_path) if predictor_path else None
        if agent_checkpoint:
            from agents.dqn import PerModelPolicy
            paths = [p.strip() for p in agent_checkpoint.split(",") if p.strip()]
            policy = PerModelPolicy.load(paths, predictor_path, delta=delta, use_gate=complexity_gate,
                                         top_k=agent_top_k)
            policies[policy.name] = policy
            if agent_top_k > 1:
                alone = policy.renamed("sdn-cep-dqn", top_k=1)  # the same loaded networks
                policies[alone.name] = alone
        return cls(policies, store, CostConfig(), predictor, **kwargs)

    # -- view -> snapshot ------------------------------------------------------
    def _bandwidth(self, view, src_dpid, dst_dpid, own_traffic=False):
        """Widest-path bandwidth; with ``own_traffic`` (our own transfers, now or within
        the counters' lag, are what loads the path, and the ledger queues behind them)
        the link capacities."""
        if src_dpid == dst_dpid:
            return self.lan_bps
        _, bottleneck = view.widest_path(src_dpid, dst_dpid, use_capacity=own_traffic)
        return min(bottleneck, self.lan_bps) / self.calibration.network

    def snapshot(self, view, device_ip, now, input_bytes=None):
        """The decision core's view for a task from ``device_ip``; with ``input_bytes``
        (the model's input), its input crossing the WAN is costed at the rate the fair
        sharing replay gives it, from the lanes' planned transfers."""
        from agents.decision import NodeState, Snapshot

        device = view.host_by_ip(device_ip)
        if device is None:
            raise PlanningError(f"device {device_ip} is not in the view")
        workers = [h for h in view.hosts() if h["role"] in ("edge", "cloud") and h.get("load")
                   and now - h["load"]["at"] <= HEARTBEAT_STALE_AFTER]
        clouds = [h for h in workers if h["role"] == "cloud"]
        if not clouds:
            raise PlanningError("no live cloud node in the view")
        cloud = clouds[0]
        nodes = []
        slowdown = dict(self.calibration.compute)
        ledger = self.ledger
        own_uplink = ledger.used_within(ledger.of_device(ACC, device_ip), now, self.stats_lag_s)
        own_wan = ledger.wan_used_within(now, self.stats_lag_s)
        edges = [h for h in workers if h["role"] == "edge"]
        # WAN senders share it fairly: a new transfer gets 1/(1 + other busy lanes) of it,
        # or for the device's input, what replaying the lanes' planned transfers gives it
        wan_bps = max((self._bandwidth(view, e["dpid"], cloud["dpid"], True) for e in edges),
                      default=self._bandwidth(view, device["dpid"], cloud["dpid"], True))
        ledger.wan_bps = wan_bps
        lanes = ledger.busy_wan_lanes(now)
        device_lane = ledger.of_device(f"{WAN}@{ACC}", device_ip)

        def wan_share(lane):
            if lane == device_lane and input_bytes:
                start, end = ledger.wan.crossing(lane, now, 8.0 * input_bytes, wan_bps)
                if end > start:
                    return 8.0 * input_bytes / (end - start)
            return wan_bps / (1 + len(lanes - {lane}))

        for host in sorted(workers, key=lambda h: (h["role"] != "edge", h["name"])):
            load = host["load"]
            reserved = ledger.node_reserved(host["name"], now)
            into_own = own_uplink or (own_wan and host["role"] == "cloud")
            from_device = self._bandwidth(view, device["dpid"], host["dpid"], into_own)
            if host["role"] == "cloud":
                from_device = min(from_device, wan_share(device_lane))
            nodes.append(NodeState(
                name=host["name"], role=host["role"], busy=load["busy"],
                cpu_share=load["cpu_share"] / slowdown.get(host["name"], 1.0),
                queue_len=load["queue_len"], mem_free_bytes=load["mem_free_bytes"],
                bw_to_cloud_bps=min(self._bandwidth(view, host["dpid"], cloud["dpid"], own_wan),
                                    wan_share(f"{WAN}@{host['name']}")),
                bw_from_device_bps=from_device,
                backlog_s=max((end for _, end in reserved), default=None), reserved_s=reserved))
        own_lan = ledger.used_within("lan", now, self.stats_lag_s)
        lan = min((self._bandwidth(view, a["dpid"], b["dpid"], own_lan)
                   for a in edges for b in edges if a is not b), default=self.lan_bps)
        return Snapshot(tuple(nodes), now, lan_bps=lan, link_backlog_s=ledger.links(now, device_ip),
                        wan_lanes=True)

    # -- plan --------------------------------------------------------------------
    def complexity(self, request):
        if request.q is not None:
            return float(request.q)
        if request.features and self.predictor is not None:
            import numpy as np
            features = np.atleast_2d(np.asarray(request.features, dtype=float))
            return float(np.ravel(self.predictor.score_features(features))[0])
        return None

    def _fixed(self, snapshot, request):
        """The device's own placement, checked and priced by the cost model."""
        from agents.cost import Plan, check_plan, priced
        from agents.decision import view_from_snapshot

        view = view_from_snapshot(snapshot, request.model, self.store)
        try:
            plan = Plan(request.model, request.hops)
        except ValueError as exc:
            raise PlanningError(f"bad fixed plan: {exc}") from None
        problems = check_plan(plan, view, self.store, self.cost)
        if problems:
            raise PlanningError(f"fixed plan infeasible: {'; '.join(problems)}")
        return priced(plan, view, self.store, self.cost)

    def plan(self, view, request, now):
        from agents.decision import Task, decide

        policy = self.policies.get(request.method)
        if policy is None and request.method != "fixed":
            raise PlanningError(f"method {request.method!r} is not available here "
                                f"(loaded: {sorted(self.policies)})")
        if request.model not in self.store.models():
            raise PlanningError(f"no profile for model {request.model!r}; known: {list(self.store.models())}")
        supports = getattr(policy, "supports", None)  # agents know one model each
        if supports and not supports(request.model):
            # decide() would fall back to the cloud and hide it; say so instead
            raise PlanningError(f"method {request.method!r} has no agent trained for model {request.model!r}")
        if request.in_flight == 0:
            self.ledger.release(request.device_ip, now)
        snapshot = self.snapshot(view, request.device_ip, now,
                                 float(self.store.reference(request.model).out_bytes[0]))
        q = self.complexity(request)
        if request.method == "fixed":
            plan = self._fixed(snapshot, request)
        else:
            plan = decide(policy, snapshot, Task(request.model, q=q, task_id=request.task_id), self.store, self.cost)
        self._commit(plan, snapshot, request.device_ip, now)
        hops = []
        for node, start, end in plan.hops:
            host = view.host_by_name(node)
            hops.append({"node": node, "ip": host["ip"], "port": self.worker_port, "start": start, "end": end})
        transfers = self._transfers(view, request, hops)
        latency = plan.latency
        overhead = self.calibration.overhead_s
        reply = {
            "task_id": request.task_id, "ok": True, "method": request.method, "model": request.model, "q": q,
            "hops": hops,
            "predicted": {"latency_s": latency.total_s + overhead, "overhead_s": overhead,
                          "edge_s": latency.edge_s, "cloud_s": latency.cloud_s,
                          "trans_s": latency.trans_s, "wait_s": latency.wait_s,
                          "cost": plan.cost.total, "reward": plan.reward},
            "paths": [{"src": t.src_ip, "dst": t.dst_ip,
                       "switches": [view.graph.nodes[f"s:{d:016x}"]["name"] for d in t.switches],
                       "bottleneck_mbps": None if t.bottleneck_bps == float("inf")
                       else round(t.bottleneck_bps / 1e6, 3)} for t in transfers],
        }
        return PlannedTask(reply, tuple(transfers))

    def _commit(self, plan, snapshot, device_ip, now):
        from agents.cost import evaluate
        from agents.decision import view_from_snapshot

        netview = view_from_snapshot(snapshot, plan.model, self.store)
        reservations = evaluate(plan, netview, self.store, self.cost).reservations
        out_bytes = self.store.reference(plan.model).out_bytes
        cloud = netview.cloud.name
        senders = (ACC,) + tuple(node for node, _, _ in plan.hops)
        wan_bits = [(netview.wan(sender), 8.0 * float(out_bytes[start]))
                    for sender, (node, start, _) in zip(senders, plan.hops) if node == cloud]
        self.ledger.commit(reservations, {n.name for n in snapshot.nodes}, device_ip, now, wan_bits)

    def _transfers(self, view, request, hops):
        legs = [(request.device_ip, hops[0]["ip"], self.worker_port)]
        legs += [(a["ip"], b["ip"], self.worker_port) for a, b in zip(hops, hops[1:]) if a["ip"] != b["ip"]]
        if request.reply_port:
            legs.append((hops[-1]["ip"], request.device_ip, request.reply_port))
        try:
            return [plan_transfer(view, src, dst, port, **self.timeouts) for src, dst, port in legs]
        except RoutingError as exc:
            raise PlanningError(str(exc)) from None

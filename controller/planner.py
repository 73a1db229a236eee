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

from agents.cost import ACC
from agents.world import Calibration, NodeReading, World
from controller.routing import RoutingError, plan_transfer

# A refusal that goes away by itself (the view is still being built, e.g. after a
# controller restart): the device asks again after this long.
NOT_READY_RETRY_S = 0.5


class PlanningError(RuntimeError):
    """No plan can be made (unknown device, no live cloud, unknown method...).

    ``reason`` labels the refusal in the metrics (sdncep_decision_errors_total);
    ``retry_after_s``, when set, tells the device the refusal is temporary."""

    def __init__(self, message, reason="planning", retry_after_s=None):
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class PlannedTask:
    reply: dict        # JSON-able answer for the device
    transfers: tuple   # controller.routing.Transfer per hop (and the result path)


class Planner:
    def __init__(self, policies, store, cost=None, predictor=None, worker_port=9000, lan_bps=1e9,
                 rule_idle_timeout=5, rule_hard_timeout=120, stats_lag_s=2.5, unavailable=None):
        self.calibration = Calibration()
        # how long port counters keep showing a transfer after it ended: one
        # polling period it is averaged over, plus the next one before it is read
        self.stats_lag_s = stats_lag_s
        self.world = World()
        self.policies = dict(policies)
        self.unavailable = dict(unavailable or {})   # method -> why it could not be loaded
        self.store, self.cost, self.predictor = store, cost, predictor
        self.worker_port, self.lan_bps = worker_port, lan_bps
        self.timeouts = {"idle_timeout": rule_idle_timeout, "hard_timeout": rule_hard_timeout}

    @classmethod
    def from_files(cls, agent_checkpoint=None, predictor_path=None, profiles_dir=None, delta=0.6,
                   complexity_gate=False, agent_top_k=1, policies="", **kwargs):
        """Baselines always; SDN-CEP when trained agent checkpoints are given
        (comma-separated, one per model; and, if ``agent_top_k`` > 1, the DQN alone
        as ``sdn-cep-dqn``).

        The complexity gate is off by default: the shipped predictor is trained on
        the only labelled images available offline (8x8 digits) and scores the
        photos the devices send as hard (q near 1), which would send every task
        to the cloud. q is still computed and reported for each task.

        ``policies``: plug-in methods (``package.module:attr`` or entry point names,
        comma-separated; agents.registry), served under those names.
        """
        from agents.registry import build_baselines, load_plugin
        from agents.calibration import ProfileStore
        from agents.complexity import ComplexityPredictor
        from agents.config import CostConfig

        store = ProfileStore(profiles_dir) if profiles_dir else ProfileStore()
        plugins = [name.strip() for name in policies.split(",") if name.strip()]
        policies = build_baselines(store)
        for name in plugins:
            policies[name] = load_plugin(name, store)
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

    def snapshot(self, view, device_ip, now, input_bytes=None, avoid=()):
        """The decision core's view for a task from ``device_ip``: the live hosts (but
        those in ``avoid``) and the measured paths as readings, then the world model
        (ledger, WAN fair sharing; agents.world) as the simulator applies it too. With
        ``input_bytes`` (the model's input), its input crossing the WAN is costed at the
        rate the fair sharing replay gives it."""
        device = view.host_by_ip(device_ip)
        if device is None:
            raise PlanningError(f"device {device_ip} is not in the view", "not_ready", NOT_READY_RETRY_S)
        workers = [h for h in view.hosts() if h["role"] in ("edge", "cloud") and view.host_alive(h, now)
                   and not (h["role"] == "edge" and h.get("ip") in avoid)]   # the cloud is never avoided
        clouds = [h for h in workers if h["role"] == "cloud"]
        if not clouds:
            raise PlanningError("no live cloud node in the view", "not_ready", NOT_READY_RETRY_S)
        cloud = clouds[0]
        ledger = self.world.ledger
        own_uplink = ledger.used_within(ledger.of_device(ACC, device_ip), now, self.stats_lag_s)
        own_wan = ledger.wan_used_within(now, self.stats_lag_s)
        edges = [h for h in workers if h["role"] == "edge"]
        wan_bps = max((self._bandwidth(view, e["dpid"], cloud["dpid"], True) for e in edges),
                      default=self._bandwidth(view, device["dpid"], cloud["dpid"], True))
        readings = []
        for host in workers:
            load = host["load"]
            into_own = own_uplink or (own_wan and host["role"] == "cloud")
            readings.append(NodeReading(
                name=host["name"], role=host["role"], busy=load["busy"],
                cpu_share=self.calibration.share(host["name"], load["cpu_share"]),
                queue_len=load["queue_len"], mem_free_bytes=load["mem_free_bytes"],
                from_device_bps=self._bandwidth(view, device["dpid"], host["dpid"], into_own),
                to_cloud_bps=self._bandwidth(view, host["dpid"], cloud["dpid"], own_wan),
                distance=view.switch_hops(device["dpid"], host["dpid"])))
        own_lan = ledger.used_within("lan", now, self.stats_lag_s)
        lan = min((self._bandwidth(view, a["dpid"], b["dpid"], own_lan)
                   for a in edges for b in edges if a is not b), default=self.lan_bps)
        return self.world.snapshot(readings, device_ip, now, wan_bps, lan, input_bytes)

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
        from agents.decision import DecisionError, Task, decide, seen_nodes

        policy = self.policies.get(request.method)
        if policy is None and request.method in self.unavailable:
            raise PlanningError(f"method {request.method!r} is unavailable: {self.unavailable[request.method]}",
                                reason="unavailable")
        if policy is None and request.method != "fixed":
            raise PlanningError(f"method {request.method!r} is not available here "
                                f"(loaded: {sorted(self.policies)})")
        if request.model not in self.store.models():
            raise PlanningError(f"no profile for model {request.model!r}; known: {list(self.store.models())}")
        supports = getattr(policy, "supports", None)  # agents know one model each
        if supports and not supports(request.model):
            raise PlanningError(f"method {request.method!r} has no agent trained for model {request.model!r}",
                                reason="no_agent")
        if request.retry == "failed":
            for ip in request.avoid:
                host = view.host_by_ip(ip)
                if host is not None and host["role"] == "edge":   # a cloud a device cannot reach is
                    view.suspect(ip)                               # its own problem, not everyone's
        if request.retry == "late" and self.still_running(view, request, now):
            return PlannedTask({"task_id": request.task_id, "attempt": request.attempt, "ok": True,
                                "keep_waiting": True}, ())
        if request.in_flight == 0:
            self.world.release(request.device_ip, now)
        snapshot = self.snapshot(view, request.device_ip, now,
                                 float(self.store.reference(request.model).out_bytes[0]), request.avoid)
        q = self.complexity(request)
        if request.method == "fixed":
            plan = self._fixed(snapshot, request)
        else:
            try:
                plan = decide(policy, snapshot, Task(request.model, q=q, task_id=request.task_id), self.store,
                              self.cost)
            except DecisionError as exc:   # e.g. more edge nodes than the agent has slots
                raise PlanningError(f"{request.method}: {exc}", reason="agent_mismatch") from None
        self.world.commit(plan, snapshot, request.device_ip, now, self.store, self.cost)
        hops = []
        for node, start, end in plan.hops:
            host = view.host_by_name(node)
            hops.append({"node": node, "ip": host["ip"], "port": self.worker_port, "start": start, "end": end})
        transfers = self._transfers(view, request, hops)
        latency = plan.latency
        overhead = self.calibration.overhead_s
        reply = {
            "task_id": request.task_id, "attempt": request.attempt, "ok": True, "method": request.method, "model": request.model, "q": q,
            # who really made the plan, and why it is not the method's own (None: it is)
            "policy": plan.policy or request.method, "fallback": plan.fallback,
            "hops": hops,
            "predicted": {"latency_s": latency.total_s + overhead, "overhead_s": overhead,
                          "edge_s": latency.edge_s, "cloud_s": latency.cloud_s,
                          "trans_s": latency.trans_s, "wait_s": latency.wait_s, "compute_s": latency.compute_s,
                          "cost": plan.cost.total, "reward": plan.reward},
            "paths": [{"src": t.src_ip, "dst": t.dst_ip,
                       "switches": [view.graph.nodes[f"s:{d:016x}"]["name"] for d in t.switches],
                       "bottleneck_mbps": None if t.bottleneck_bps == float("inf")
                       else round(t.bottleneck_bps / 1e6, 3)} for t in transfers],
            "seen": seen_nodes(snapshot),
        }
        return PlannedTask(reply, tuple(transfers))

    @staticmethod
    def still_running(view, request, now):
        """A late task whose nodes are all alive, with a path from the device through
        them, is still on its way: a new plan would only add a copy of it to the load."""
        if set(request.previous) & set(request.avoid):
            return False
        hosts = [view.host_by_ip(ip) for ip in (request.device_ip, *request.previous)]
        if len(hosts) < 2 or any(h is None for h in hosts) or not all(view.host_alive(h, now) for h in hosts[1:]):
            return False
        return all(view.widest_path(a["dpid"], b["dpid"])[0] is not None for a, b in zip(hosts, hosts[1:]))

    def _transfers(self, view, request, hops):
        legs = [(request.device_ip, hops[0]["ip"], self.worker_port)]
        legs += [(a["ip"], b["ip"], self.worker_port) for a, b in zip(hops, hops[1:]) if a["ip"] != b["ip"]]
        if request.reply_port:
            legs.append((hops[-1]["ip"], request.device_ip, request.reply_port))
        try:
            return [plan_transfer(view, src, dst, port, **self.timeouts) for src, dst, port in legs]
        except RoutingError as exc:
            raise PlanningError(str(exc)) from None


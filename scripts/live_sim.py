"""A live run replayed in the simulator: the same arrivals, the same topology and
calibration, the same policies and agents (agents.simulator.replay).

Per cell and method it gives what the simulator predicts (each task's latency, and
their median), to print beside what the testbed measured, twice: with the policy
planning in the simulator (hearing the simulated nodes' heartbeats as the live planner
hears the real ones), and with the plans the live run chose (``LivePlans``).
Where the first misses and the second does not, the simulator's planner decided
differently; where both miss, the simulated execution is off. Each round of a cell ran
on its own (the runner drains between runs), so each is replayed on its own too.
"""

import functools
import statistics
from collections import defaultdict, deque

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.cost import Plan
from agents.registry import AGENT, METHODS, PluginError, build_policies
from agents.simulator import Arrival, Heartbeats, replay
from agents.world import Calibration
from runtime.client import record_hops
from topologies.spec import TopologySpec

MBPS = 1e6


@functools.lru_cache(maxsize=None)
def _store():
    return ProfileStore()


@functools.lru_cache(maxsize=None)
def _policy(method, agents, top_k):
    if METHODS.get(method) and METHODS[method].kind == AGENT:
        if not agents:
            return None
        from agents.dqn import PerModelPolicy
        policy = PerModelPolicy.load([p for p in agents.split(",") if p], use_gate=False, top_k=top_k)
        return policy if method == "sdn-cep" else policy.renamed(method, top_k=1)
    try:
        return build_policies([method], _store()).get(method)      # built-in baselines and plug-ins
    except PluginError:
        return None                                                 # a plug-in this process cannot import


class LivePlans:
    """The plans a live run chose, in arrival order (as :func:`agents.simulator.replay`
    plans them: sorted by arrival time, stably)."""
    name = "live-plans"

    def __init__(self, rows):
        self.plans = deque(record_hops(r) for r in sorted(rows, key=lambda r: r["arrival_s"]))

    def decide(self, ctx):
        return Plan(ctx.model, self.plans.popleft())


def _replay_rounds(policy_for, method_rows, topology, wan_mbit, cal, feedback=None):
    """{(round, device, seq): simulated latency} over a method's rounds; ``policy_for``
    gives the policy for one round's rows."""
    by_task = {}
    rounds = defaultdict(list)
    for r in method_rows:
        rounds[r.get("round")].append(r)
    for round_no, round_rows in rounds.items():
        round_rows = sorted(round_rows, key=lambda r: r["arrival_s"])
        sim = topology.sim_config(round_rows[0]["model"], bw_mbps=float(wan_mbit))
        arrivals = [Arrival(r["arrival_s"], r["device"], r["model"], task_id=f"{r['device']}:{r['seq']}")
                    for r in round_rows]
        for task in replay(policy_for(round_rows), arrivals, sim, _store(), CostConfig(), cal, feedback):
            device, seq = task.arrival.task_id.split(":")
            by_task[(round_no, device, int(seq))] = task.latency_s
    return by_task


def replay_cell(rows, spec, wan_mbit, calibration, agents="", top_k=5, feedback=Heartbeats()):
    """{method: {"median_s", "by_task", "live_plans_median_s", "live_plans_by_task"}} for
    one cell's records: each task's simulated latency ({(round, device, seq): seconds})
    with the method planning in the simulator, and with the plans the live run chose
    (over the tasks that got one), and their medians.

    ``spec`` is the topology (a TopologySpec mapping), ``calibration`` what the live run
    applied, ``agents`` the comma-separated agent checkpoints it loaded and ``top_k`` the
    controller's agent_top_k (runs that did not record it used 5). A method the
    simulator cannot run (an agent without checkpoints, ``fixed``) is left out.

    ``feedback``: the planner hears the executing world as the live one does (the
    nodes' heartbeats, the devices' tasks in flight; agents.simulator.Heartbeats);
    None plans from the ledger's predictions alone (open loop). Replaying two load
    sweep (6 and 8 tasks/s, WAN 10 and 20 Mbit/s, 3 seeds: 84 method-cells), the closed loop's medians missed the
    live ones by 2.9 % on average and by more than 10 % in 2 cells, the open loop's by
    4.0 % and in 4 (docs/live.md).
    """
    topology = TopologySpec(**spec)
    cal = Calibration.from_mapping(calibration) if calibration else Calibration()
    out = {}
    by_method = defaultdict(list)
    for r in rows:
        by_method[r["method"]].append(r)
    for method, method_rows in sorted(by_method.items()):
        policy = _policy(method, agents or "", top_k)
        if policy is None:
            continue
        by_task = _replay_rounds(lambda _rows: policy, method_rows, topology, wan_mbit, cal, feedback)
        ran = [r for r in method_rows if record_hops(r)]     # a task refused live never loaded the world
        live_plans = _replay_rounds(LivePlans, ran, topology, wan_mbit, cal) if ran else {}
        out[method] = {"median_s": statistics.median(by_task.values()), "by_task": by_task,
                       "live_plans_median_s": statistics.median(live_plans.values()) if live_plans else None,
                       "live_plans_by_task": live_plans}
    return out

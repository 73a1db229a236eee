"""A live run replayed in the simulator: the same arrivals, the same topology and
calibration, the same policies and agents (agents.simulator.replay).

Per cell and method it gives what the simulator predicts (each task's latency, and
their median), to print beside what the testbed measured. Each round of a cell ran
on its own (the runner drains between runs), so each is replayed on its own too.
"""

import functools
import statistics
from collections import defaultdict

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.registry import AGENT, METHODS, PluginError, build_policies
from agents.simulator import Arrival, replay
from agents.world import Calibration
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


def replay_cell(rows, spec, wan_mbit, calibration, agents="", top_k=5):
    """{method: {"median_s", "by_task": {(round, device, seq): latency}}} for one cell's records.

    ``spec`` is the topology (a TopologySpec mapping), ``calibration`` what the live run
    applied, ``agents`` the comma-separated agent checkpoints it loaded and ``top_k`` the
    controller's agent_top_k (runs that did not record it used 5). A method the
    simulator cannot run (an agent without checkpoints, ``fixed``) is left out.
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
        by_task = {}
        rounds = defaultdict(list)
        for r in method_rows:
            rounds[r.get("round")].append(r)
        for round_no, round_rows in rounds.items():
            model = round_rows[0]["model"]
            sim = topology.sim_config(model, bw_mbps=float(wan_mbit))
            arrivals = [Arrival(r["arrival_s"], r["device"], r["model"], task_id=f"{r['device']}:{r['seq']}")
                        for r in round_rows]
            for task in replay(policy, arrivals, sim, _store(), CostConfig(), cal):
                device, seq = task.arrival.task_id.split(":")
                by_task[(round_no, device, int(seq))] = task.latency_s
        out[method] = {"median_s": statistics.median(by_task.values()), "by_task": by_task}
    return out

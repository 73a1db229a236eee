"""One world for simulator and live planner: the same arrivals and measurements through
both give the same plans and predicted latencies.

The planner gets a controller view measured as the default testbed is built (every
link at its shaped rate, idle heartbeats); the simulator gets the same testbed as a
configuration (TopologySpec.sim_config). Two devices send Poisson arrivals that load
the edge nodes and the WAN, so the ledger, the reserved intervals, each device's
uplink, the fair-shared WAN lanes and the release of a device with nothing in
flight all come into play.
"""
from pathlib import Path

import numpy as np
import pytest

from agents.calibration import ProfileStore
from agents.config import CostConfig
from agents.decision import Task, decide
from agents.simulator import Simulator
from protocol.heartbeat import Heartbeat
from protocol.plan_request import PlanRequest
from controller.planner import Planner
from controller.probe import LinkKey
from controller.view import GlobalView
from topologies.spec import TopologySpec, dpid_of

SPEC = TopologySpec(wan_mbit=10.0)
AGENT = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet.pt"


def measured_view(spec):
    """A controller view of ``spec`` as if every link had been probed at its shaped rate."""
    view = GlobalView()
    switches = spec.switches()
    dpids = {name: int(dpid_of(name), 16) for name in switches}
    ports = {name: 0 for name in switches}

    def port(switch):
        ports[switch] += 1
        return ports[switch]

    for name in switches:
        view.add_switch(dpids[name], 0.0, name=name)
    attach = {}
    for a, b, mbit, _kind in spec.links():
        if a in dpids and b in dpids:
            pa, pb = port(a), port(b)
            for key in (LinkKey(dpids[a], pa, dpids[b], pb), LinkKey(dpids[b], pb, dpids[a], pa)):
                view.add_link(key, 0.0)
                view.update_capacity(key, mbit * 1e6, 0.0)
        else:
            host, switch = (a, b) if b in dpids else (b, a)
            attach[host] = (dpids[switch], port(switch))
    hosts = {name: (role, cores, f"10.0.0.{i}", f"00:00:00:00:01:{i:02x}")
             for i, (name, role, cores) in enumerate(spec.hosts(), start=1)}
    return view, hosts, attach


def heartbeats(view, hosts, attach, now):
    for name, (role, cores, ip, mac) in hosts.items():
        view.update_heartbeat(Heartbeat(name, role, ip, 1, cores or 2.0, 0.0, 0, 8 << 30), mac, *attach[name], now)


def arrivals(rate=4.0, per_device=25, seed=3):
    out = []
    for index, device in enumerate(("d1", "d2")):
        times = np.cumsum(np.random.default_rng(seed + index).exponential(1 / rate, per_device))
        out += [(float(t), device) for t in times]
    return sorted(out)


@pytest.mark.parametrize("method", ["only-cloud", "only-edge", "neurosurgeon", "dpto", "oracle", "sdn-cep"])
def test_simulator_and_planner_make_the_same_plans_and_predictions(method):
    if method == "sdn-cep" and not AGENT.exists():
        pytest.skip("no trained agent checkpoint")
    store, cost = ProfileStore(), CostConfig()
    planner = Planner.from_files(agent_checkpoint=str(AGENT) if method == "sdn-cep" else None,
                                 agent_top_k=5, worker_port=9000, stats_lag_s=2.5)
    policy = planner.policies[method]
    simulator = Simulator(SPEC.sim_config(), store, cost)
    view, hosts, attach = measured_view(SPEC)
    live_ends = {"d1": [], "d2": []}
    differing, waited = [], 0.0
    for i, (now, device) in enumerate(arrivals()):
        snapshot = simulator.snapshot(device, now, SPEC.wan_mbit * 1e6, "alexnet")
        sim_plan = decide(policy, snapshot, Task("alexnet", q=0.0), store, cost)
        sim_latency = simulator.commit(sim_plan, snapshot, device, now)

        heartbeats(view, hosts, attach, now)
        in_flight = sum(end > now for end in live_ends[device])
        request = PlanRequest(f"t{i}", "alexnet", method, hosts[device][2], q=0.0, in_flight=in_flight)
        reply = planner.plan(view, request, now).reply
        live_ends[device].append(now + reply["predicted"]["latency_s"])
        live_hops = tuple((h["node"], h["start"], h["end"]) for h in reply["hops"])
        if live_hops != sim_plan.hops or reply["predicted"]["latency_s"] != pytest.approx(sim_latency, rel=1e-9):
            differing.append((i, live_hops, sim_plan.hops, reply["predicted"]["latency_s"], sim_latency))
        waited += sim_plan.latency.wait_s
    assert not differing, differing[:3]
    assert waited > 0.5   # the arrivals did queue: the ledger was exercised

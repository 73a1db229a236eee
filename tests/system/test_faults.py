"""Faults on the real testbed, under load (scripts.chaos_live's events, short).

Each test runs both devices on SDN-CEP while one fault is injected and undone:
every task must end with a result (none lost, none failed), and the plans made
while the fault lasts must go around it.
"""
from types import SimpleNamespace

import pytest

from scripts.bench_live import WORKER_PORT, LiveBench, controller_config, shipped_agents
from scripts.chaos_live import FABRIC_LINK, FAULTY_NODE, Injector, run_event
from topologies.spec import TopologySpec
from topologies.testbed import Testbed

ARGS = SimpleNamespace(outage=3.0, rate=2.5, burst=10)


@pytest.fixture
def bench(tmp_path):
    conf, _ = controller_config(tmp_path, shipped_agents(), None)
    spec = TopologySpec(worker_port=WORKER_PORT, worker_models="alexnet", wan_mbit=20)
    with Testbed(spec, controller_args=["--config-file", str(conf)]) as bed:
        bed.wait_until(bed.view_complete, timeout=120, interval=0.5, what="a complete view")
        with LiveBench(bed, tmp_path, "alexnet") as live:
            live.run_tasks("only-edge", 1, {"event": -1}, rate=2.0, devices=("d1", "d2"))   # warm up
            yield bed, live


def during(rows, event, margin=0.3):
    """Tasks that arose while the fault lasted (after ``margin`` s to notice it)."""
    return [r for r in rows if event["at"] + margin <= r["arrived_at"] < event["undone_at"]]


def check_nothing_lost(rows, expected):
    assert len(rows) == expected
    assert [r for r in rows if r["status"] != "ok"] == []


def test_a_killed_edge_worker_is_planned_around_and_its_tasks_retried(bench):
    bed, live = bench
    event, rows, expected = run_event(live, Injector(bed), 0, "worker-kill", "sdn-cep", ARGS, print)
    check_nothing_lost(rows, expected)
    node = f"{bed.net[FAULTY_NODE].IP()}:"
    assert during(rows, event), "no task arose during the outage"
    assert [r["plan"] for r in during(rows, event) if node in r["plan"]] == []        # none ended up there
    # the controller hears of the dead worker from the first device that cannot reach it
    # (connection refused or closed); from then on no task is planned there
    first_on_it = [r for r in during(rows, event, margin=0.0) if node in r["first_plan"]]
    assert len(first_on_it) <= 2 and all(r["retries"] >= 1 for r in first_on_it)


def test_a_fabric_link_down_moves_the_transfers_to_the_other_core(bench):
    bed, live = bench
    event, rows, expected = run_event(live, Injector(bed), 0, "fabric-link", "sdn-cep", ARGS, print)
    check_nothing_lost(rows, expected)
    a, b = FABRIC_LINK
    for row in during(rows, event):
        for path in row["paths"] or ():
            pairs = set(zip(path["switches"], path["switches"][1:]))
            assert (a, b) not in pairs and (b, a) not in pairs, row["paths"]
    rerouted = next(float(line.split()[-1]) for line in bed.rest_text("/metrics").splitlines()
                    if line.startswith("sdncep_reroutes_total"))
    assert rerouted >= 1


def test_a_controller_restart_under_load_loses_no_task(bench):
    bed, live = bench
    event, rows, expected = run_event(live, Injector(bed), 0, "controller-restart", "sdn-cep", ARGS, print)
    check_nothing_lost(rows, expected)
    after = [r for r in rows if r["arrived_at"] >= event["undone_at"]]
    assert after and all(r["policy"] == "sdn-cep" for r in after)     # the new controller plans with the agent
    assert bed.view_complete(capacities=False)

"""Paced compute emulation on the real testbed: three edge nodes computing at once.

Each edge host runs a paced worker; three clients keep all three busy at the same
time (closed loop, whole-AlexNet hops). Every node's measured compute time per hop
must be its emulated time (median within 5%), with no overrun. Then the budget is
deliberately exceeded (nodes nearly as fast as the machine, CPU hogs beside them)
and the workers must count overruns, reported through their heartbeats.
"""

import json
import statistics
import subprocess
import sys

import pytest

from runtime.pacing import Pacer
from topologies.spec import TopologySpec
from topologies.testbed import Testbed

PORT = 9000
TASKS = 12
BURN = [sys.executable, "-c", "while True: pass"]


def run_clients(bed, tmp_path, sources, tasks=TASKS):
    """One closed-loop client per (source host, edge host): whole-model hops; their records."""
    processes = []
    for source, edge in sources:
        out = tmp_path / f"{source}-{edge}.json"
        command = [sys.executable, "-m", "runtime.client", "--to", f"{bed.net[edge].IP()}:{PORT}",
                   "--model", "alexnet", "--plan", "0-m", "--count", str(tasks), "--arrivals", "closed",
                   "--timeout", "60", "--json", str(out)]
        processes.append((edge, out, bed.net[source].popen(command, cwd=str(Testbed.repo_root()),
                                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    records = {}
    for edge, out, process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
        records[edge] = json.loads(out.read_text())
    return records


def pacing_of(bed):
    return {n["name"]: n["load"]["pacing"] for n in bed.rest("/sdncep/v1/nodes") if n.get("load", {}).get("pacing")}


def test_three_edge_nodes_computing_at_once_keep_their_emulated_speed(tmp_path):
    spec = TopologySpec(worker_port=PORT, worker_models="alexnet")
    with Testbed(spec) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=90, what="a complete view")
        records = run_clients(bed, tmp_path, [("d1", "e1"), ("d2", "e2"), ("cloud", "e3")])
        bed.wait_until(lambda: sum(p["paced_hops"] for p in pacing_of(bed).values()) >= 3 * TASKS,
                       timeout=10, what="heartbeats with every hop counted")
        pacing = pacing_of(bed)
    for edge, rows in records.items():
        assert all(r["status"] == "ok" for r in rows), rows
        emulated = Pacer(spec.cores_of_edge(int(edge[1:]) - 1)).emulated_s("alexnet", 0, 11)
        measured = statistics.median(r["h0_compute_s"] for r in rows[1:])  # the first builds the connection
        print(f"{edge}: median compute {measured * 1000:.1f} ms, emulated {emulated * 1000:.1f} ms")
        assert measured == pytest.approx(emulated, rel=0.05)
        # within budget, at most one hop of a node overruns: the criterion is the median above;
        # a single overrun on this shared 2-core machine happened once in CI
        assert pacing[edge]["paced_hops"] == TASKS and pacing[edge]["overruns"] <= 1


def test_overruns_are_counted_when_the_budget_is_exceeded(tmp_path):
    # nodes of 0.5 cores (0.45 cores of real work each) on a machine whose cores are
    # taken by busy loops: the real compute cannot keep up with the emulated one
    spec = TopologySpec(worker_port=PORT, worker_models="alexnet", edge_cores=(0.5, 0.5, 0.5),
                        cloud_cores=0.1, compute_budget=1.0)
    with Testbed(spec) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=90, what="a complete view")
        hogs = [subprocess.Popen(BURN, start_new_session=True) for _ in range(4)]
        try:
            run_clients(bed, tmp_path, [("d1", "e1"), ("d2", "e2"), ("cloud", "e3")], tasks=8)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait(timeout=10)
        bed.wait_until(lambda: sum(p["paced_hops"] for p in pacing_of(bed).values()) >= 24,
                       timeout=10, what="heartbeats with every hop counted")
        pacing = pacing_of(bed)
    overruns = sum(p["overruns"] for p in pacing.values())
    print({name: (p["overruns"], round(p["overrun_s"], 3)) for name, p in pacing.items()})
    assert overruns > 0 and all(p["overrun_s"] >= 0 for p in pacing.values())

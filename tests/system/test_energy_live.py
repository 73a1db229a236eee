"""Energy-aware offloading live (issue 14): 8 devices on 2 APs, decisions from the
controller's northbound API, tasks run for real (scripts/energy_live.py, one repeat).
The measured latencies follow the model, the DQN's live cost is near the optimum's, and
offloading through one AP slows as more devices share it."""
import json
from types import SimpleNamespace

from scripts.energy_live import orchestrate


def test_a_live_energy_run_follows_the_model(tmp_path):
    assert orchestrate(SimpleNamespace(seed=3, repeats=1, bandwidth_mhz=5.0, out=str(tmp_path))) == 0
    summary = json.loads((tmp_path / "latest" / "live.json").read_text())
    assert summary["tasks"] >= 8 + 8 + 10
    assert summary["mape_offloaded"] < 0.20 and summary["mape_all"] < 0.20
    assert summary["dqn_live_over_optimum_live"] < 1.10
    measured = [s["measured_mean_s"] for s in summary["share"]]
    assert len(measured) == 4 and all(a < b for a, b in zip(measured, measured[1:]))


def test_an_edge_worker_killed_mid_round_loses_no_task_and_offloading_resumes(tmp_path):
    """e1's worker SIGKILLed while a round's offloads are in flight: every task gets a
    record, those in flight complete locally (retried), the next decision is all-local
    with the reason, and once the worker is back the decisions offload again."""
    import threading
    import time

    import numpy as np

    from agents.energy.config import SystemParams
    from agents.energy.instances import draw_instance
    from scripts.energy_chaos import INFLIGHT_S, Rounds
    from scripts.energy_live import (
        EDGE,
        decision,
        device_payload,
        energy_spec,
        start_edge_worker,
    )
    from topologies.testbed import Testbed

    inst = draw_instance(np.random.default_rng(3), system=SystemParams(ap_bandwidth_mhz=5.0), n=8)
    payload = {"method": "dqn", "devices": device_payload(inst, [f"d{i + 1}" for i in range(8)]),
               "system": {"ap_bandwidth_mhz": 5.0}}
    with Testbed(energy_spec(), run_dir=tmp_path, controller_args=["controller.energy_rest"]) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=90, what="the controller's view")
        start_edge_worker(bed)
        rounds = Rounds(bed, inst, payload)
        rounds.run(-1, 0)                                    # warm up: the policy compiles
        killed = {}

        def kill():
            killed["at"] = time.time()
            bed.kill_worker(EDGE)

        def strike(start_at):
            threading.Timer(max(start_at + INFLIGHT_S - time.time(), 0.0), kill).start()
        records, asked = rounds.run(0, 1, on_start=strike)
        assert len(records) == asked and all(r["status"] == "ok" for r in records), records
        in_flight = [r for r in records if r["mode"] == "offload" and r["done_at"] > killed["at"]]
        assert in_flight and all(r["ran"] == "local" and r["retries"] == 1 for r in in_flight), records
        after, asked = rounds.run(0, 2)                      # the devices report e1 unreachable
        assert len(after) == asked and all(r["status"] == "ok" and r["mode"] == "local" for r in after)
        assert all(r["why_local"] and r["edge"] is None for r in after)
        start_edge_worker(bed)
        bed.wait_until(lambda: any(d["offload"] for d in decision(bed, payload)[0]["devices"]), timeout=20,
                       interval=0.5, what="decisions offloading again")
        back, _ = rounds.run(0, 3)
        assert any(r["ran"] == "offload" and r["status"] == "ok" for r in back), back

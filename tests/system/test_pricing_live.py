"""Pricing and placement of training jobs live (issue 15, criterion 5) under faults (issue 16):
real PS and worker processes on the testbed's hosts, their paths checked against the
controller's view and metered on the switches; a worker killed, a PS killed, a worker's
host link down and the controller restarted, one each, while jobs train."""
import json
import math
import subprocess

from scripts.pricing_live import FAULTS, main


def test_jobs_train_on_metered_paths_and_survive_the_faults(tmp_path):
    assert main(["--jobs", "6", "--slot-s", "8", "--faults", ",".join(FAULTS),
                 "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "latest" / "live.json").read_text())
    jobs = result["jobs"]
    assert result["lost"] == 0 and result["job_flows_left"] == [], result["job_flows_left"]
    assert all(j["outcome"] in ("finished", "refused by the network") for j in jobs if j["admitted"])
    assert sum(j["outcome"] == "finished" for j in jobs) >= 4
    distributed = [j for j in jobs if j.get("kind") == "distributed" and j["outcome"] == "finished"]
    assert distributed and all(j["job_packets"] > 0 for j in distributed if len(j["final_placement"]["workers"]) > 1)
    for job in (j for j in jobs if j["outcome"] == "finished"):
        # it trains: below half the untrained model's loss, ln 10 (a job resumed from its PS's
        # checkpoint starts its new workers' "first" losses already lower)
        assert job["loss_last"] < 0.5 * math.log(10)
        assert job["pushes"] == job["minibatches"]                         # all its work, through the faults
        assert job["iteration_error"] < 0.2
        if not job["recoveries"] and not job["start_delay_s"]:
            assert job["within_reservation"], job                          # the model's slots hold the job
    assert any(j["reuses_nodes_of"] for j in jobs if j["admitted"])        # released nodes are used again
    meters = result["meter_check"]
    assert meters["metered_mbps"] <= 1.1 * meters["meter_mbps"] < meters["unmetered_mbps"] / 2
    table = {row["fault"]: row for row in result["fault_table"]}
    assert set(table) == set(FAULTS)
    assert all(row["lost"] == 0 and row["failed"] == 0 and row["unrecovered_events"] == 0 for row in table.values())
    assert not subprocess.run(["pgrep", "-f", "agents.pricing.live_node"], capture_output=True, check=False).stdout

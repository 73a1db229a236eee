"""Split inference across Mininet hosts: workers on edge and cloud hosts, a client on
an end device, the tensor crossing the shaped network (WAN at 20 Mbit/s)."""

import json
import sys

import pytest

from topologies.spec import TopologySpec
from topologies.testbed import Testbed

WORKER_PORT = 9000


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    # Capacity probes off: this module measures the transport itself; what probes
    # cost a transfer is measured and documented separately (docs/testbed.md).
    conf = tmp_path_factory.mktemp("controller") / "no-probes.conf"
    conf.write_text("[sdncep]\nprobe_interval = 0\n")
    testbed = Testbed(TopologySpec(wan_mbit=20.0, worker_port=WORKER_PORT, worker_models="alexnet"),
                      controller_args=["--config-file", str(conf)])
    with testbed:
        testbed.wait_until(lambda: testbed.view_complete(capacities=False), timeout=60, what="a complete view")
        yield testbed


def run_in(host, args, timeout=120):
    """Run a project module on a Mininet host; return (exit code, output)."""
    command = " ".join([sys.executable, "-m", *args])
    output = host.cmd(f"cd {Testbed.repo_root()} && timeout {timeout} {command}; echo EXIT=$?")
    body, _, code = output.rpartition("EXIT=")
    return int(code.strip() or 1), body


def test_split_edge_to_cloud_matches_local_inference(bed, tmp_path):
    import torch

    from models import build_model
    from runtime.images import load_image

    e1, cloud, d1 = bed.net["e1"], bed.net["cloud"], bed.net["d1"]
    out = tmp_path / "tasks.json"
    code, text = run_in(d1, ["runtime.client", "--to", f"{e1.IP()}:{WORKER_PORT}", "--model", "alexnet",
                             "--plan", f"0-5,{cloud.IP()}:{WORKER_PORT}:5-m", "--count", "2",
                             "--arrivals", "closed", "--images", "astronaut", "--timeout", "60",
                             "--json", str(out)])
    assert code == 0, text
    rows = json.loads(out.read_text())
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    model = build_model("alexnet", seed=0)
    local = model.run(torch.from_numpy(load_image("astronaut").copy())[None], 0, model.num_segments)
    assert rows[0]["top1"] == int(local.argmax())
    stages = rows[1]
    assert stages["h0_name"] == "e1" and stages["h1_name"] == "cloud"
    for key in ("h0_net_s", "h0_compute_s", "h1_net_s", "h1_queue_s", "h1_compute_s", "result_net_s"):
        assert stages[key] >= 0, key
    print({k: round(v, 4) for k, v in stages.items() if k.endswith("_s")})


def test_transport_efficiency_over_20_mbit_path(bed, tmp_path):
    d1, cloud = bed.net["d1"], bed.net["cloud"]
    server = cloud.popen([sys.executable, "scripts/bench_transport.py", "--serve", "0.0.0.0:9100"],
                         cwd=str(Testbed.repo_root()))
    try:
        out = tmp_path / "bench.json"
        bed.wait_until(lambda: "LISTEN" in cloud.cmd("ss -ltn 'sport = :9100'"), timeout=20, what="bench server")
        code, text = run_in(d1, ["scripts.bench_transport", "--to", f"{cloud.IP()}:9100", "--bandwidth-mbit",
                                 "20", "--sizes", "1MB", "--repeats", "5", "--json", str(out)])
        assert code == 0, text
        summary = json.loads(out.read_text())["summary"][0]
        print(f"1 MB over 20 Mbit/s: ratio median {summary['ratio_median']:.3f}, max {summary['ratio_max']:.3f}")
        assert summary["ratio_median"] <= 1.15
    finally:
        server.terminate()
        server.wait(timeout=10)

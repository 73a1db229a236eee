"""The controller pins a task's tensor transfers to the path it chose.

d2 sits on leaf l2 and e1 on leaf l1; between the leaves there are two paths, via
core c1 or c2. Ordinary forwarding uses one of them; we throttle that one, plan a
task d2 -> e1, and check with OpenFlow counters that the input tensor crossed the
other core, and that the transfer rules idle out after the task.
"""

import json
import re
import subprocess

import pytest

from controller.routing import PRIORITY_TRANSFER
from tests.system.test_split_inference import run_in
from topologies.spec import TopologySpec
from topologies.testbed import Testbed


def dump_flows(switch):
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch], capture_output=True,
                         text=True, timeout=10).stdout
    return [line for line in out.splitlines() if f"priority={PRIORITY_TRANSFER}" in line]


def bytes_of(lines, text):
    return sum(int(re.search(r"n_bytes=(\d+)", l).group(1)) for l in lines if text in l)


@pytest.fixture(scope="module")
def module_bed():
    with Testbed(TopologySpec(worker_port=9000, worker_models="alexnet")) as testbed:
        testbed.wait_until(testbed.view_complete, timeout=90, what="a complete view")
        yield testbed


def test_tensor_follows_chosen_path_and_rules_expire(bed, tmp_path):
    d2, e1 = bed.net["d2"], bed.net["e1"]
    assert "1 received" in d2.cmd(f"ping -c1 -W2 {e1.IP()}")
    # Which core does ordinary forwarding use from l2 towards e1?
    flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "l2", f"dl_dst={e1.MAC()}"],
                           capture_output=True, text=True, timeout=10).stdout
    port = int(re.search(r"output:(\d+)", flows).group(1))
    default_core = next(l.intf2.node.name if l.intf1.node.name == "l2" else l.intf1.node.name
                        for l in bed.net.links if {l.intf1.node.name, l.intf2.node.name} & {"l2"}
                        and (l.intf1.name == f"l2-eth{port}" or l.intf2.name == f"l2-eth{port}"))
    other_core = {"c1": "c2", "c2": "c1"}[default_core]
    bed.set_link_rate("l2", default_core, 5)
    bed.wait_until(lambda: bed.link_view("l2", default_core)["capacity_mbps"] < 7, timeout=10,
                   what="the throttled link to be measured")

    out = tmp_path / "task.json"
    code, text = run_in(d2, ["runtime.device", "--ip", d2.IP(), "--method", "fixed", "--hops", "e1:0-11",
                             "--model", "alexnet", "--count", "1", "--images", "astronaut", "--out", str(out)])
    assert code == 0, text
    record = json.loads(out.read_text())[0]
    assert record["status"] == "ok", record
    first_leg = record["paths"][0]
    assert first_leg["switches"] == ["a2", "l2", other_core, "l1"], first_leg
    input_bytes = 3 * 224 * 224 * 4
    tensor_leg = f"nw_src={d2.IP()},nw_dst={e1.IP()},tp_dst=9000"
    # OVS copies datapath counters into OpenFlow rules about twice a second: poll.
    bed.wait_until(lambda: bytes_of(dump_flows(other_core), tensor_leg) > input_bytes, timeout=5,
                   what=f"the tensor's bytes on {other_core}")
    assert bytes_of(dump_flows(default_core), tensor_leg) == 0, dump_flows(default_core)
    # Rules idle out (transfer_idle_timeout 5 s) once the task is over.
    bed.wait_until(lambda: not any(dump_flows(s) for s in ("a2", "l2", other_core, "l1")), timeout=15,
                   what="transfer rules to expire")


def test_plan_overhead_and_metrics(bed):
    metrics = bed.rest_text("/metrics")
    assert 'sdncep_decisions_total{method="fixed"}' in metrics
    assert "sdncep_decision_seconds_bucket" in metrics

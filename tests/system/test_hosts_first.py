"""hosts_first: a host's CPU quota comes ahead of other busy processes.

Busy loops, each in a session of its own as the detached ovs-vswitchd is (with
autogroup scheduling each session weighs as much as a host's cgroup, whatever its
nice value), take every core three times over. A host with hosts_first still gets
its quota; a device host (default weight) gets a share like one of the loops.
"""

import subprocess
import time
from pathlib import Path

from mininet.util import numCores

from topologies.spec import TopologySpec
from topologies.testbed import Testbed

BURN = ["timeout", "6", "python3", "-c", "while True: pass"]


def _cores_used(host, seconds):
    usage = Path(f"/sys/fs/cgroup/cpuacct/{host}/cpuacct.usage")
    before, started = int(usage.read_text()), time.monotonic()
    time.sleep(seconds)
    return (int(usage.read_text()) - before) / 1e9 / (time.monotonic() - started)


def test_a_first_host_gets_its_quota_while_high_priority_loops_take_every_core():
    spec = TopologySpec(edges=1, devices=1, access_switches=1, edge_cores=(0.5,), cloud_cores=0.3,
                        hosts_first=True, compute="cgroup")
    with Testbed(spec) as bed:
        assert Path("/sys/fs/cgroup/cpu/e1/cpu.shares").read_text().strip() == "65536"
        assert Path("/sys/fs/cgroup/cpu/d1/cpu.shares").read_text().strip() == "1024"
        hogs = [subprocess.Popen(BURN, start_new_session=True) for _ in range(3 * numCores())]
        burns = [bed.net[name].popen(BURN) for name in ("e1", "d1")]
        try:
            time.sleep(0.5)
            edge, device = _cores_used("e1", 3.0), _cores_used("d1", 3.0)
        finally:
            for process in hogs + burns:
                process.terminate()
                process.wait(timeout=5)
    print(f"e1 (first, quota 0.5): {edge:.2f} cores; d1: {device:.2f} cores")
    assert edge > 0.4 and edge > 1.5 * device

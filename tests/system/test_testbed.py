"""The testbed for real: OVS userspace datapath, ryu-manager subprocess, Mininet.

One testbed for the module (start-up costs ~10 s); after each test the links it
re-rated get their declared rates back (``bed``), so no test sees another's changes;
the last test stops it and checks nothing is left behind. Every wait is bounded.
"""

import json
import subprocess
import time

import pytest

from tests.system.conftest import leftovers
from topologies.schedule import RateChange, ScheduleRunner
from topologies.spec import TopologySpec
from topologies.testbed import Testbed, TestbedError

WAN = ("c1", "g1")


@pytest.fixture(scope="module")
def module_bed():
    testbed = Testbed(TopologySpec())
    with testbed:
        testbed.wait_until(testbed.view_complete, timeout=60, what="a complete view")
        yield testbed


def test_pingall_and_view_lists_everything_with_roles(bed):
    assert bed.net.pingAll(timeout=2) == 0
    view = bed.rest("/sdncep/v1/view")
    spec = bed.spec
    assert sorted(s["name"] for s in view["switches"]) == sorted(spec.switches())
    roles = {n["name"]: n["role"] for n in view["nodes"]}
    assert roles == {name: role for name, role, _ in spec.hosts()}
    switch_links = {(l["src"], l["dst"]) for l in view["links"] if l["kind"] == "switch"}
    for a, b, _mbit, _kind in spec.links():
        if a in roles or b in roles:
            assert (a, b) in {(l["src"], l["dst"]) for l in view["links"]}
        else:
            assert {(a, b), (b, a)} <= switch_links
    xml = bed.rest("/sdncep/v1/view.xml")
    assert xml.count("<switch ") == len(spec.switches()) and xml.count("<node ") == len(roles)


def test_declared_rates_are_measured(bed):
    """Every switch link's measured capacity comes near its shaped rate.

    Polled: on a loaded 2-core machine the userspace datapath can carry a 200 Mbit/s
    train below its rate for a while, and the estimator then holds that reading until
    two later trains agree on the shaped rate.
    """
    declared = {frozenset((a, b)): mbit for a, b, mbit, _ in bed.spec.links()}
    _, directed_links, _ = bed.expected_counts()
    last = {"links": []}

    def far_from_rate():
        return [(l["src"], l["dst"], l["capacity_mbps"]) for l in last["links"]
                if l["capacity_mbps"] != pytest.approx(declared[frozenset((l["src"], l["dst"]))], rel=0.25)]

    def all_near():
        last["links"] = bed.rest("/sdncep/v1/links?kind=switch")
        return len(last["links"]) == directed_links and not far_from_rate()

    try:
        bed.wait_until(all_near, timeout=30, interval=0.5, what="every capacity within 25 % of its rate")
    except TestbedError:
        pytest.fail(f"after 30 s, {len(last['links'])} of {directed_links} switch links in the view; "
                    f"far from their shaped rates: {far_from_rate()}")


def _wait_capacity(bed, target_mbit, timeout):
    started = time.monotonic()

    def close():
        both = [bed.link_view(*WAN), bed.link_view(*reversed(WAN))]
        return all(abs(l["capacity_mbps"] - target_mbit) <= 0.1 * target_mbit for l in both)

    bed.wait_until(close, timeout=timeout, interval=0.1, what=f"WAN capacity ~{target_mbit} Mbit/s")
    return time.monotonic() - started


def test_schedule_change_is_measured_within_5s(bed, record_property):
    seen = {}
    runner = ScheduleRunner([RateChange(0.0, "c1-g1", 10.0)], lambda ends, mbit: bed.set_link_rate(*ends, mbit))
    runner.start()
    runner.join(timeout=5)
    seen["50->10"] = _wait_capacity(bed, 10.0, timeout=5.0)
    bed.set_link_rate(*WAN, 50.0)
    seen["10->50"] = _wait_capacity(bed, 50.0, timeout=5.0)
    record_property("seconds_to_measure", json.dumps(seen))
    print("time to measure a rate change:", seen)


def _wait_listening(bed, host, server, port):
    """Until ``server`` (an iperf3 -s -1) listens; a test connection would use up its one client."""
    def listening():
        if server.poll() is not None:
            pytest.fail(f"iperf3 -s on {host.name}:{port} exited ({server.returncode}): "
                        f"{server.stderr.read().decode(errors='replace')[:300]}")
        probe = host.popen(["ss", "-ltnH", f"sport = :{port}"])
        try:
            out, _ = probe.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            probe.kill()
            probe.wait(timeout=5)
            return False
        return f":{port}" in out.decode()

    bed.wait_until(listening, timeout=10, interval=0.05, what=f"iperf3 listening on {host.name}:{port}")


def test_utilisation_agrees_with_iperf3(bed):
    d1, cloud = bed.net["d1"], bed.net["cloud"]
    server = cloud.popen(["iperf3", "-s", "-1", "-p", "5201"])
    try:
        _wait_listening(bed, cloud, server, 5201)
        client = d1.popen(["iperf3", "-c", cloud.IP(), "-p", "5201", "-u", "-b", "20M", "-t", "6", "-J"])
        time.sleep(4)
        rate = bed.link_view(*WAN)["rate_mbps"]
        utilisation = bed.link_view(*WAN)["utilisation"]
        out, _ = client.communicate(timeout=20)
    finally:
        server.kill()
        server.wait(timeout=5)
    report = json.loads(out)
    iperf_mbit = report["end"]["sum"]["bits_per_second"] / 1e6
    print(f"iperf3 {iperf_mbit:.2f} Mbit/s; view rate {rate} Mbit/s, utilisation {utilisation}")
    # The view counts Ethernet frames, iperf3 UDP payload: 1470 B of 1512 B.
    assert rate == pytest.approx(iperf_mbit * 1512 / 1470, rel=0.1)
    assert utilisation == pytest.approx(rate / bed.link_view(*WAN)["capacity_mbps"], abs=0.05)


def test_wan_shares_fairly_between_sending_hosts(bed):
    """d1 opens four TCP flows to the cloud, d2 one: each host still gets half the WAN."""
    d1, d2, cloud = bed.net["d1"], bed.net["d2"], bed.net["cloud"]
    bed.set_link_rate(*WAN, 10.0)
    servers = [cloud.popen(["iperf3", "-s", "-1", "-p", str(port)]) for port in (5202, 5203)]
    try:
        for server, port in zip(servers, (5202, 5203)):
            _wait_listening(bed, cloud, server, port)
        clients = [d1.popen(["iperf3", "-c", cloud.IP(), "-p", "5202", "-P", "4", "-t", "6", "-J"]),
                   d2.popen(["iperf3", "-c", cloud.IP(), "-p", "5203", "-t", "6", "-J"])]
        reports = [json.loads(client.communicate(timeout=30)[0]) for client in clients]
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=5)
    mbit = [r["end"]["sum_received"]["bits_per_second"] / 1e6 for r in reports]
    print(f"d1 (4 flows) {mbit[0]:.2f} Mbit/s, d2 (1 flow) {mbit[1]:.2f} Mbit/s over a 10 Mbit/s WAN")
    assert sum(mbit) == pytest.approx(10.0 * 8948 / 9014, rel=0.15)  # TCP payload of jumbo frames
    assert mbit[1] == pytest.approx(mbit[0], rel=0.25)


def test_node_load_follows_cpu_burn(bed):
    e2 = bed.net["e2"]
    before = bed.rest("/sdncep/v1/nodes/e2")["load"]
    assert before["busy"] < 0.5
    assert before["cpu_share"] == pytest.approx(bed.spec.cores_of_edge(1), abs=0.01)
    burn = e2.popen(["timeout", "8", "python3", "-c", "while True: pass"])
    started = time.monotonic()
    try:
        bed.wait_until(lambda: bed.rest("/sdncep/v1/nodes/e2")["load"]["busy"] > 0.8, timeout=3,
                       interval=0.1, what="e2 busy > 0.8")
        print(f"e2 busy after {time.monotonic() - started:.2f}s")
    finally:
        burn.terminate()  # timeout(1) passes SIGTERM on to the loop
        burn.wait(timeout=5)


def test_restore_links_gives_back_the_declared_rates(bed):
    bed.set_link_rate("l1", "c1", 20.0, remeasure=True)
    bed.wait_until(lambda: bed.link_view("l1", "c1")["capacity_mbps"] < 30, timeout=10,
                   what="the re-rated l1-c1 measured")
    assert bed.restore_links() == [("l1", "c1")]
    declared = bed.spec.shaped_rates()[frozenset(("l1", "c1"))]
    assert bed.link_view("l1", "c1")["capacity_mbps"] == pytest.approx(declared, rel=0.25)
    assert bed.link_view("c1", "l1")["capacity_mbps"] == pytest.approx(declared, rel=0.25)
    assert bed.restore_links() == []


def test_stop_leaves_nothing_behind(bed):
    bed.stop()
    assert leftovers() == {"interfaces": [], "bridges": [], "processes": []}

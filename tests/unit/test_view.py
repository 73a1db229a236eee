import xml.etree.ElementTree as ET

import pytest

from protocol.heartbeat import Heartbeat
from controller.probe import LinkKey
from controller.rates import PortRate
from controller.view import GlobalView

MAC_E1, MAC_D1 = "00:00:00:00:00:04", "00:00:00:00:00:01"


def rate(tx=0.0, rx=0.0):
    return PortRate(rx_bps=rx, tx_bps=tx, rx_pps=0, tx_pps=0, tx_dropped_ps=0, interval=1.0)


@pytest.fixture
def view():
    """Three switches in a triangle: 1-2 (ports 1/1), 2-3 (2/1), 1-3 (2/2); hosts on port 3."""
    v = GlobalView()
    for dpid, name in ((1, "a1"), (2, "l1"), (3, "c1")):
        v.add_switch(dpid, now=0.0, name=name)
    for a, pa, b, pb in ((1, 1, 2, 1), (2, 2, 3, 1), (1, 2, 3, 2)):
        v.add_link(LinkKey(a, pa, b, pb), 0.0)
        v.add_link(LinkKey(b, pb, a, pa), 0.0)
    return v


def heartbeat(name="e1", role="edge", busy=0.5):
    return Heartbeat(name=name, role=role, ip="10.0.0.4", seq=1, cpu_share=0.5, busy=busy,
                     queue_len=2, mem_free_bytes=100)


def test_links_and_switches(view):
    assert sorted(view.switches()) == [1, 2, 3]
    assert len(view.switch_links()) == 6
    assert view.is_link_port(1, 1) and not view.is_link_port(1, 3)


def test_rate_capacity_utilisation_available(view):
    view.update_capacity(LinkKey(1, 1, 2, 1), 50e6, now=1.0)
    view.update_port_rate(1, 1, rate(tx=20e6), now=2.0)
    record = next(l for l in view.links(now=3.0) if (l["src"], l["dst"]) == ("a1", "l1"))
    assert record["capacity_mbps"] == 50.0 and record["rate_mbps"] == 20.0
    assert record["utilisation"] == 0.4 and record["available_mbps"] == 30.0
    assert record["capacity_age_s"] == 2.0


def test_capacity_for_wrong_port_ignored(view):
    view.update_capacity(LinkKey(1, 9, 2, 1), 50e6, now=1.0)
    assert view.graph.edges["s:0000000000000001", "s:0000000000000002"]["capacity_bps"] is None


def test_host_learning_and_port_rates(view):
    assert view.learn_host(MAC_D1, 1, 3, now=1.0, ip="10.0.0.1")
    assert not view.learn_host(MAC_D1, 1, 3, now=2.0)
    assert not view.learn_host("00:00:00:00:00:99", 1, 1, now=2.0)  # inter-switch port
    view.update_port_rate(1, 3, rate(tx=1e6, rx=3e6), now=3.0)
    links = {(l["src"], l["dst"]): l for l in view.links(now=3.0)}
    assert links[("a1", "h:" + MAC_D1)]["rate_mbps"] == 1.0
    assert links[("h:" + MAC_D1, "a1")]["rate_mbps"] == 3.0
    assert view.host_location(MAC_D1) == (1, 3)
    assert view.learn_host(MAC_D1, 3, 3, now=4.0)  # moved
    assert view.host_location(MAC_D1) == (3, 3)


def test_heartbeat_sets_name_role_and_load_then_goes_stale(view):
    view.update_heartbeat(heartbeat(), MAC_E1, 2, 3, now=10.0)
    node = view.nodes(now=11.0)[0]
    assert node["name"] == "e1" and node["role"] == "edge" and node["switch"] == "l1"
    assert node["alive"] and node["load"]["busy"] == 0.5 and node["load"]["queue_len"] == 2
    assert not view.nodes(now=20.0)[0]["alive"]
    assert view.host_by_name("e1")["mac"] == MAC_E1 and view.host_by_ip("10.0.0.4")


def test_next_hops_form_tree_towards_destination(view):
    hops = view.next_hops_towards(3)
    assert hops == {1: 2, 2: 2}  # both neighbours send straight to switch 3


def test_flood_ports_skip_one_loop_link(view):
    flood = {dpid: view.flood_ports(dpid, [1, 2, 3]) for dpid in (1, 2, 3)}
    tree_ports = sum(len(p) - 1 for p in flood.values())  # minus each host port 3
    assert tree_ports == 4  # a spanning tree of 3 switches has 2 links = 4 port ends
    assert all(3 in ports for ports in flood.values())


def test_remove_switch_drops_links_and_hosts(view):
    view.learn_host(MAC_D1, 1, 3, now=1.0)
    version = view.topology_version
    view.remove_switch(1)
    assert view.host_location(MAC_D1) is None
    assert len(view.switch_links()) == 2 and view.topology_version > version


def test_link_discovered_after_host_learning_evicts_false_host():
    v = GlobalView()
    v.add_switch(1, 0.0)
    v.add_switch(2, 0.0)
    v.learn_host(MAC_D1, 1, 1, now=0.5)  # seen on what is really a trunk port
    v.add_link(LinkKey(1, 1, 2, 1), 1.0)
    assert v.host_location(MAC_D1) is None


def test_xml_and_dict_describe_same_view(view):
    view.update_heartbeat(heartbeat(), MAC_E1, 2, 3, now=1.0)
    data = view.to_dict(now=1.5)
    root = ET.fromstring(view.to_xml(now=1.5))
    assert root.tag == "globalView"
    assert len(root.find("switches")) == len(data["switches"]) == 3
    assert len(root.find("links")) == len(data["links"])
    node = root.find("nodes/node")
    assert node.get("name") == "e1" and node.get("alive") == "true"
    assert node.find("load").get("busy") == "0.5"


def test_widest_path_prefers_bandwidth_then_fewer_hops(view):
    # Direct 1->3 is one hop; 1->2->3 two. Equal (unmeasured) -> direct.
    assert view.widest_path(1, 3) == ([1, 3], float("inf"))
    view.update_capacity(LinkKey(1, 2, 3, 2), 10e6, now=1.0)
    view.update_capacity(LinkKey(1, 1, 2, 1), 50e6, now=1.0)
    view.update_capacity(LinkKey(2, 2, 3, 1), 40e6, now=1.0)
    assert view.widest_path(1, 3) == ([1, 2, 3], 40e6)
    view.update_capacity(LinkKey(2, 2, 3, 1), 12e6, now=2.0)
    view.update_port_rate(2, 2, rate(tx=11e6), now=2.0)  # 2->3 loaded: half its capacity left
    assert view.widest_path(1, 3) == ([1, 3], 10e6)
    assert view.widest_path(1, 99) == (None, 0.0)

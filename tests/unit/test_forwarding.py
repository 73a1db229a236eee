"""The pure forwarding core (controller.forwarding): no Ryu, plain answers."""

from controller import forwarding
from controller.forwarding import FLOOD_DEDUP_WINDOW, ForwardFlow, Forwarder


class StubView:
    """Switches 1-2-3 in a line; host aa:.. on switch 3, port 7; switch 1's port 9 off the tree."""

    def __init__(self, tree=None):
        self.topology_version = 0
        self.tree = {1: 2, 2: 3} if tree is None else tree

    def host_location(self, mac):
        return (3, 7) if mac == "aa:00:00:00:00:01" else None

    def next_hops_towards(self, dst_dpid):
        assert dst_dpid == 3
        return dict(self.tree)

    def flood_ports(self, dpid, ports):
        return [p for p in ports if p != 9]


def test_unicast_installs_the_tree_towards_a_known_host_and_says_where_the_frame_leaves():
    forwarder = Forwarder(StubView())
    route = forwarder.unicast(2, "aa:00:00:00:00:01")
    assert set(route.flows) == {ForwardFlow(1, "aa:00:00:00:00:01", 2), ForwardFlow(2, "aa:00:00:00:00:01", 3),
                                ForwardFlow(3, "aa:00:00:00:00:01", 7)}
    assert route.out_port == 3
    assert forwarder.unicast(3, "aa:00:00:00:00:01").out_port == 7
    assert forwarder.unicast(4, "aa:00:00:00:00:01").out_port is None     # a switch off the tree
    assert forwarder.unicast(2, "bb:00:00:00:00:02") is None              # unknown: flood instead


def test_a_switch_floods_a_frame_once_per_window_on_tree_ports_but_its_in_port():
    forwarder = Forwarder(StubView())
    assert forwarder.flood_ports(1, 1, [1, 2, 9], b"arp", now=10.0) == (2,)
    assert forwarder.flood_ports(1, 2, [1, 2, 9], b"arp", now=10.1) == ()
    assert forwarder.flood_ports(2, 1, [1, 2], b"arp", now=10.1) == (2,)          # another switch
    assert forwarder.flood_ports(1, 1, [1, 2, 9], b"other", now=10.1) == (2,)      # another frame
    assert forwarder.flood_ports(1, 1, [1, 2, 9], b"arp", now=10.0 + FLOOD_DEDUP_WINDOW) == (2,)


def test_topology_changed_once_per_new_version():
    view = StubView()
    forwarder = Forwarder(view)
    assert forwarder.topology_changed()
    assert not forwarder.topology_changed()
    view.topology_version += 1
    assert forwarder.topology_changed() and not forwarder.topology_changed()


def test_a_host_on_a_lone_switch_gets_one_flow_out_of_its_port():
    route = Forwarder(StubView(tree={})).unicast(3, "aa:00:00:00:00:01")
    assert route.flows == (ForwardFlow(3, "aa:00:00:00:00:01", 7),) and route.out_port == 7


def test_remembered_floods_stay_bounded(monkeypatch):
    monkeypatch.setattr(forwarding, "MAX_REMEMBERED_FLOODS", 10)
    forwarder = Forwarder(StubView())
    for i in range(100):
        assert forwarder.flood_ports(1, 1, [2], b"frame %d" % i, now=i * FLOOD_DEDUP_WINDOW) == (2,)
    assert len(forwarder._flooded) <= 11

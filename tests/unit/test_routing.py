import pytest

from protocol.heartbeat import Heartbeat
from controller.probe import LinkKey
from controller.routing import PRIORITY_TRANSFER, RoutingError, plan_transfer
from controller.view import GlobalView


@pytest.fixture
def view():
    """a1(1) -- c1(2) / c2(3) -- l2(4): two disjoint paths; d1 on a1:3, e2 on l2:3."""
    v = GlobalView()
    for dpid in (1, 2, 3, 4):
        v.add_switch(dpid, 0.0)
    for a, pa, b, pb in ((1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 4, 1), (3, 2, 4, 2)):
        v.add_link(LinkKey(a, pa, b, pb), 0.0)
        v.add_link(LinkKey(b, pb, a, pa), 0.0)
        v.update_capacity(LinkKey(a, pa, b, pb), 50e6, 0.0)
        v.update_capacity(LinkKey(b, pb, a, pa), 50e6, 0.0)
    v.update_heartbeat(Heartbeat("d1", "device", "10.0.0.1", 1, 1, 0, 0, 0), "00:00:00:00:00:01", 1, 3, 0.0)
    v.update_heartbeat(Heartbeat("e2", "edge", "10.0.0.5", 1, 1, 0, 0, 0), "00:00:00:00:00:05", 4, 3, 0.0)
    return v


def test_rules_follow_widest_path_both_directions(view):
    view.update_capacity(LinkKey(1, 1, 2, 1), 5e6, 1.0)  # make the c1 path narrow
    transfer = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000)
    assert transfer.switches == (1, 3, 4) and transfer.bottleneck_bps == 50e6
    by_switch = {}
    for rule in transfer.rules:
        by_switch.setdefault(rule.dpid, []).append(rule)
    fwd = {d: next(r for r in rs if r.match_dict["ipv4_src"] == "10.0.0.1") for d, rs in by_switch.items()}
    back = {d: next(r for r in rs if r.match_dict["ipv4_src"] == "10.0.0.5") for d, rs in by_switch.items()}
    assert {d: r.out_port for d, r in fwd.items()} == {1: 2, 3: 2, 4: 3}
    assert {d: r.out_port for d, r in back.items()} == {4: 2, 3: 1, 1: 3}
    assert fwd[1].match_dict["tcp_dst"] == 9000 and back[1].match_dict["tcp_src"] == 9000
    assert all(r.priority == PRIORITY_TRANSFER and r.idle_timeout > 0 for r in transfer.rules)


def test_source_port_matched_when_given(view):
    transfer = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000, src_port=40001)
    assert transfer.rules[0].match_dict["tcp_src"] == 40001
    assert transfer.rules[1].match_dict["tcp_dst"] == 40001


def test_unknown_host_is_a_clear_error(view):
    with pytest.raises(RoutingError, match="10.9.9.9"):
        plan_transfer(view, "10.0.0.1", "10.9.9.9", 9000)


def test_installed_rules_skip_fresh_duplicates(view):
    from controller.routing import InstalledRules
    rules = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000, idle_timeout=4).rules
    cache = InstalledRules()
    assert cache.needed(rules, now=0.0) == list(rules)
    assert cache.needed(rules, now=1.9) == []          # < idle/2: still installed
    assert cache.needed(rules, now=3.8) == []          # kept alive by the transfer planned at 1.9
    assert cache.needed(rules, now=5.8) == list(rules)  # unused since 3.8, might have idled out: resend
    view.update_capacity(LinkKey(1, 1, 2, 1), 1e6, 5.0)
    moved = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000, idle_timeout=4).rules
    resent = cache.needed(moved, now=6.3)  # new path via switch 3: only rules that changed
    assert sorted(r.dpid for r in resent) == [1, 3, 3, 4]


def test_installed_rules_resent_before_their_hard_timeout(view):
    from controller.routing import InstalledRules
    rules = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000, idle_timeout=4, hard_timeout=20).rules
    cache = InstalledRules()
    cache.needed(rules, now=0.0)
    assert all(cache.needed(rules, now=t) == [] for t in (1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0, 11.5, 13.0, 14.5))
    assert cache.needed(rules, now=16.0) == list(rules)  # in use all along, but expires at 20 regardless


def test_ports_in_use_follow_recent_rules(view):
    from controller.routing import InstalledRules
    rules = plan_transfer(view, "10.0.0.1", "10.0.0.5", 9000, idle_timeout=4).rules
    cache = InstalledRules()
    cache.needed(rules, now=0.0)
    assert {(r.dpid, r.out_port) for r in rules} == cache.ports_in_use(now=1.0, within=4)
    assert cache.ports_in_use(now=10.0, within=4) == set()

"""The controller's side of faults: a port that goes down takes its node out of the
plans, a late task on live nodes is told to keep waiting while one on a dead node is
planned anew, unmeasured links are a conservative guess, and transfers over a failed
link are routed around it."""
import pytest

from protocol.plan_request import PlanProtocolError, PlanRequest
from controller.planner import Planner, PlanningError
from controller.routing import ActiveTransfers, plan_transfer
from controller.view import GlobalView
from tests.unit.test_world_parity import heartbeats, measured_view
from topologies.spec import TopologySpec

SPEC = TopologySpec()


@pytest.fixture
def live():
    view, hosts, attach = measured_view(SPEC)
    heartbeats(view, hosts, attach, 0.0)
    ips = {name: ip for name, (_role, _cores, ip, _mac) in hosts.items()}
    return view, attach, ips


def request(ips, method="only-edge", **retry):
    return PlanRequest("t1", "alexnet", method, ips["d1"], **retry)


def nodes_of(planned):
    return {hop["node"] for hop in planned.reply["hops"]}


def test_a_host_behind_a_port_that_went_down_is_not_alive(live):
    view, attach, _ips = live
    e1 = view.host_by_name("e1")
    assert view.host_alive(e1, 0.5)
    view.set_port_down(*attach["e1"], True)
    assert not view.host_alive(e1, 0.5)
    assert next(n for n in view.nodes(0.5) if n["name"] == "e1")["alive"] is False
    view.set_port_down(*attach["e1"], False)
    assert view.host_alive(e1, 0.5)


def test_plans_leave_out_a_node_whose_port_is_down_and_a_node_the_device_avoids(live):
    view, attach, ips = live
    planner = Planner.from_files(worker_port=9000)
    chosen = nodes_of(planner.plan(view, request(ips), 0.5))
    assert chosen & {"e1", "e2", "e3"}
    edge = min(chosen & {"e1", "e2", "e3"})
    view.set_port_down(*attach[edge], True)
    assert edge not in nodes_of(planner.plan(view, request(ips), 0.6))
    view.set_port_down(*attach[edge], False)
    avoided = planner.plan(view, request(ips, retry="failed", attempt=1, previous=(ips[edge],),
                                         avoid=(ips[edge],)), 0.7)
    assert edge not in nodes_of(avoided)


def test_a_late_task_keeps_waiting_while_its_nodes_live_and_is_replanned_when_one_is_down(live):
    view, attach, ips = live
    planner = Planner.from_files(worker_port=9000)
    late = {"retry": "late", "attempt": 1, "previous": (ips["e1"], ips["cloud"])}
    assert planner.plan(view, request(ips, **late), 0.5).reply == {"task_id": "t1", "attempt": 1, "ok": True,
                                                                 "keep_waiting": True}
    view.set_port_down(*attach["e1"], True)
    again = planner.plan(view, request(ips, **late), 0.6)
    assert "keep_waiting" not in again.reply and "e1" not in nodes_of(again)

def test_a_node_whose_heartbeats_stopped_is_down_for_a_late_task(live):
    view, attach, ips = live
    _view, hosts, _attach = measured_view(SPEC)
    heartbeats(view, {n: h for n, h in hosts.items() if n != "e1"}, attach, 10.0)
    planner = Planner.from_files(worker_port=9000)
    again = planner.plan(view, request(ips, retry="late", attempt=1, previous=(ips["e1"], ips["cloud"])), 10.5)
    assert "keep_waiting" not in again.reply and "e1" not in nodes_of(again)


def test_a_view_still_being_built_is_a_temporary_refusal():
    planner = Planner.from_files(worker_port=9000)
    with pytest.raises(PlanningError) as refused:
        planner.plan(GlobalView(), PlanRequest("t1", "alexnet", "only-cloud", "10.0.0.1"), 0.0)
    assert refused.value.reason == "not_ready" and refused.value.retry_after_s > 0


def test_retry_fields_are_checked():
    PlanRequest("t", "alexnet", "dpto", "10.0.0.1", retry="late", attempt=2, previous=("10.0.0.3",))
    for bad in ({"retry": "late"}, {"attempt": 1}, {"retry": "again", "attempt": 1},
                {"retry": "failed", "attempt": 99}, {"retry": "failed", "attempt": True},
                {"retry": "failed", "attempt": 1, "avoid": ["e1"]},
                {"retry": "late", "attempt": 1, "previous": "10.0.0.3"},
                {"retry": "late", "attempt": 1, "previous": ["10.0.0.3"] * 9}):
        with pytest.raises(PlanProtocolError):
            PlanRequest("t", "alexnet", "dpto", "10.0.0.1", **bad)


def test_an_unmeasured_link_costs_what_the_controller_assumes_not_unlimited(live):
    view, _attach, ips = live
    for _u, _v, data in view.switch_links():
        data["capacity_bps"] = None
    assert plan_transfer(view, ips["d1"], ips["cloud"], 9000).bottleneck_bps == float("inf")
    view.unmeasured_bps = 10e6
    assert plan_transfer(view, ips["d1"], ips["cloud"], 9000).bottleneck_bps == 10e6


def test_transfers_over_a_failed_link_move_to_the_remaining_path(live):
    view, _attach, ips = live
    active = ActiveTransfers(horizon=10)
    across = plan_transfer(view, ips["d1"], ips["e2"], 9000)      # a1 - l1 - core - l2
    local = plan_transfer(view, ips["d1"], ips["e1"], 9000)       # a1 - l1
    active.add([across, local], now=0.0)
    a, b = across.switches[1], across.switches[2]                 # l1 -> its core
    view.remove_link(next(k for k in _link_keys(view) if (k.src_dpid, k.dst_dpid) == (a, b)))
    view.remove_link(next(k for k in _link_keys(view) if (k.src_dpid, k.dst_dpid) == (b, a)))
    moves = active.reroute(view, a, b, now=1.0)
    assert len(moves) == 1 and moves[0].old == across             # the local transfer is untouched
    new = moves[0].new
    assert new is not None and b not in new.switches and len(new.switches) == len(across.switches)
    assert {r.dpid for r in moves[0].delete} == {b}                # the core it left keeps no rule
    assert moves[0].install == new.rules
    assert active.reroute(view, a, b, now=1.5) == []                # moved: nothing left on that link


def test_a_transfer_with_no_path_left_only_loses_its_rules(live):
    view, _attach, ips = live
    active = ActiveTransfers()
    to_cloud = plan_transfer(view, ips["e1"], ips["cloud"], 9000)
    active.add([to_cloud], now=0.0)
    gateway = to_cloud.switches[-1]
    for key in [k for k in _link_keys(view) if gateway in (k.src_dpid, k.dst_dpid)]:
        view.remove_link(key)
    moves = active.reroute(view, to_cloud.switches[-2], gateway, now=0.5)
    assert moves[0].new is None and moves[0].delete == to_cloud.rules and len(active) == 0


def _link_keys(view):
    from controller.probe import LinkKey
    return [LinkKey(d_u, data["src_port"], d_v, data["dst_port"])
            for d_u, d_v, data in view.switch_links()]


def test_a_node_a_device_could_not_reach_is_out_until_its_next_heartbeat(live):
    view, attach, ips = live
    planner = Planner.from_files(worker_port=9000)
    edge = min(nodes_of(planner.plan(view, request(ips), 0.5)) & {"e1", "e2", "e3"})
    retry = planner.plan(view, request(ips, retry="failed", attempt=1, previous=(ips[edge],), avoid=(ips[edge],)),
                         0.6)
    assert edge not in nodes_of(retry)
    assert edge not in nodes_of(planner.plan(view, request(ips), 0.7))      # other tasks too
    _view, hosts, _attach = measured_view(SPEC)
    heartbeats(view, {edge: hosts[edge]}, attach, 0.8)                       # it was alive after all
    assert view.host_alive(view.host_by_name(edge), 0.9)


def test_the_cloud_is_never_avoided_nor_suspected(live):
    view, _attach, ips = live
    planner = Planner.from_files(worker_port=9000)
    retry = planner.plan(view, PlanRequest("t1", "alexnet", "only-cloud", ips["d1"], retry="failed", attempt=1,
                                           previous=(ips["cloud"],), avoid=(ips["cloud"],)), 0.5)
    assert nodes_of(retry) == {"cloud"} and view.host_alive(view.host_by_name("cloud"), 0.6)


def test_a_late_task_whose_path_is_gone_is_planned_anew(live):
    view, _attach, ips = live
    planner = Planner.from_files(worker_port=9000)
    late = {"retry": "late", "attempt": 1, "previous": (ips["e2"], ips["cloud"])}
    assert planner.plan(view, request(ips, **late), 0.5).reply.get("keep_waiting")
    for key in _link_keys(view):          # the WAN: no path from an edge node to the cloud
        if {key.src_dpid, key.dst_dpid} == {int("11", 16), int("41", 16)}:
            view.remove_link(key)
    assert not Planner.still_running(view, request(ips, **late), 0.6)

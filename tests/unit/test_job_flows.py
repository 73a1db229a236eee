import pytest

from protocol.heartbeat import Heartbeat
from controller.job_flows import (
    JOB_COOKIE,
    JOB_IDLE_TIMEOUT_S,
    PRIORITY_JOB,
    JobNetwork,
    JobRefused,
    JobRequestError,
    JobSpec,
    parse_jid,
    parse_job,
)
from controller.probe import LinkKey
from controller.routing import PRIORITY_TRANSFER
from controller.view import GlobalView

PS, W1, W2 = "10.0.0.5", "10.0.0.1", "10.0.0.2"


@pytest.fixture
def view():
    """a1(1) -- c1(2) / c2(3) -- l2(4), 50 Mbit/s links; workers on a1:3 and a1:4, the PS on l2:3."""
    v = GlobalView()
    for dpid in (1, 2, 3, 4):
        v.add_switch(dpid, 0.0)
    for a, pa, b, pb in ((1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 4, 1), (3, 2, 4, 2)):
        for key in (LinkKey(a, pa, b, pb), LinkKey(b, pb, a, pa)):
            v.add_link(key, 0.0)
            v.update_capacity(key, 50e6, 0.0)
    v.update_heartbeat(Heartbeat("e1", "edge", W1, 1, 1, 0, 0, 0), "00:00:00:00:00:01", 1, 3, 0.0)
    v.update_heartbeat(Heartbeat("e3", "edge", W2, 1, 1, 0, 0, 0), "00:00:00:00:00:02", 1, 4, 0.0)
    v.update_heartbeat(Heartbeat("e2", "edge", PS, 1, 1, 0, 0, 0), "00:00:00:00:00:05", 4, 3, 0.0)
    return v


def spec(jid=7, workers=(W1, W2, PS), worker_bps=10e6, ps_bps=20e6):
    return JobSpec(jid, PS, 7107, workers, worker_bps, ps_bps)


def test_remote_workers_reserve_their_path_both_ways_and_are_metered(view):
    flows = JobNetwork().place(view, spec())
    assert [ip for ip, _path in flows.paths] == [W1, W2]        # the PS's own worker crosses no link
    path = flows.paths[0][1]
    assert len(path) == 3 and path[0] == 1 and path[-1] == 4
    for a, b in zip(path, path[1:]):
        assert flows.reserved[(a, b)] >= 10e6 and flows.reserved[(b, a)] >= 10e6
    by_switch = {}
    for rule in flows.rules:
        by_switch.setdefault(rule.dpid, set()).add(rule.meter_id)
        assert rule.cookie == JOB_COOKIE | 7 and rule.priority == PRIORITY_JOB > PRIORITY_TRANSFER
        assert rule.idle_timeout == JOB_IDLE_TIMEOUT_S and rule.hard_timeout == 0
    meters = {(m.dpid, m.meter_id): m for m in flows.meters}
    assert all(meters[(1, mid)].rate_kbps == 10_000 for mid in by_switch[1])       # per worker, at b_w
    assert {meters[(4, mid)].rate_kbps for mid in by_switch[4]} == {20_000}        # PS in and out, at b_p z
    assert len(by_switch[4]) == 2 and 0 in by_switch[path[1]]                      # middle switch: no meter
    assert all(m.burst_kbit >= 512 for m in flows.meters)


def test_constraint_1k_is_checked(view):
    with pytest.raises(JobRefused, match=r"\(1k\)"):
        JobNetwork().place(view, spec(ps_bps=15e6))
    JobNetwork().place(view, spec(workers=(W1, PS, PS), ps_bps=10e6))


def test_a_link_is_never_reserved_beyond_its_measured_capacity(view):
    net = JobNetwork()
    net.commit(net.place(view, spec(jid=1, workers=(W1, W2), worker_bps=20e6, ps_bps=40e6)))
    net.commit(net.place(view, spec(jid=2, workers=(W1, W2), worker_bps=20e6, ps_bps=40e6)))
    with pytest.raises(JobRefused, match=r"Mbit/s measured, 40.0 reserved by other jobs"):
        net.place(view, spec(jid=3, workers=(W1,), worker_bps=20e6, ps_bps=20e6))
    net.remove(1)
    net.place(view, spec(jid=3, workers=(W1,), worker_bps=20e6, ps_bps=20e6))
    # the same job placed again does not count against itself
    net.place(view, spec(jid=2, workers=(W1, W2), worker_bps=20e6, ps_bps=40e6))


def test_paths_go_where_the_other_jobs_left_room(view):
    net = JobNetwork()
    first = net.place(view, spec(jid=1, workers=(W1,), worker_bps=45e6, ps_bps=45e6))
    net.commit(first)
    second = net.place(view, spec(jid=2, workers=(W1,), worker_bps=30e6, ps_bps=30e6))
    assert first.paths[0][1][1] != second.paths[0][1][1]           # via c1 and via c2


def test_workers_on_one_host_share_a_route_and_its_meters_at_their_sum(view):
    flows = JobNetwork().place(view, spec(workers=(W1, W1), worker_bps=10e6, ps_bps=20e6))
    assert len(flows.paths) == 1 and len(flows.rules) == 2 * len(flows.paths[0][1])
    worker = {m.rate_kbps for m in flows.meters if m.dpid == 1}
    assert worker == {20_000} and set(flows.reserved.values()) == {20e6}


def test_jobs_never_share_a_meter_id_on_a_switch(view):
    net = JobNetwork()
    ids = {}
    for jid in (3, 65075265, 4294967295):
        flows = net.place(view, spec(jid=jid, workers=(W1,), worker_bps=1e6, ps_bps=1e6))
        net.commit(flows)
        ids[jid] = {(m.dpid, m.meter_id) for m in flows.meters}
    assert not (ids[3] & ids[65075265]) and not (ids[3] & ids[4294967295])
    assert all(0 < mid < 0xFFFF0000 for pairs in ids.values() for _d, mid in pairs)
    again = net.place(view, spec(jid=3, workers=(W1,), worker_bps=1e6, ps_bps=1e6))
    assert {(m.dpid, m.meter_id) for m in again.meters} == ids[3]          # a job keeps its ids
    net.remove(3)
    fresh = net.place(view, spec(jid=7, workers=(W1,), worker_bps=1e6, ps_bps=1e6))
    assert {(m.dpid, m.meter_id) for m in fresh.meters} == ids[3]          # freed ids are reused


def test_a_view_being_rebuilt_is_not_ready_rather_than_refusing(view):
    from controller.job_flows import JobNotReady
    with pytest.raises(JobNotReady, match="10.0.0.9"):
        JobNetwork().place(view, spec(workers=("10.0.0.9",)), settling=True)


def test_jobs_over_a_link_are_found(view):
    net = JobNetwork()
    flows = net.place(view, spec())
    net.commit(flows)
    a, b = flows.paths[0][1][:2]
    assert net.uses_link(a, b) == [7] and net.uses_link(b, a) == [7]


def test_unknown_host_or_no_path_is_a_refusal(view):
    with pytest.raises(JobRefused, match="10.0.0.9"):
        JobNetwork().place(view, spec(workers=("10.0.0.9",)))


@pytest.mark.parametrize("body, message", [
    ([], "JSON object"),
    ({"ps": PS, "port": 1, "workers": [W1], "worker_mbps": True, "ps_mbps": 1}, "worker_mbps must be a number"),
    ({"ps": "10.0.0", "port": 1, "workers": [W1], "worker_mbps": 1, "ps_mbps": 1}, "ps must be an IPv4"),
    ({"ps": PS, "port": 70000, "workers": [W1], "worker_mbps": 1, "ps_mbps": 1}, r"port must be in"),
    ({"ps": PS, "port": 1.5, "workers": [W1], "worker_mbps": 1, "ps_mbps": 1}, "port must be an integer"),
    ({"ps": PS, "port": 1, "workers": W1, "worker_mbps": 1, "ps_mbps": 1}, "workers must be a list"),
    ({"ps": PS, "port": 1, "workers": [W1] * 65, "worker_mbps": 1, "ps_mbps": 1}, "workers must be a list"),
    ({"ps": PS, "port": 1, "workers": [W1], "worker_mbps": 1, "ps_mbps": 1, "x": 1}, "unknown key"),
])
def test_bad_job_bodies_are_clear_errors(body, message):
    with pytest.raises(JobRequestError, match=message):
        parse_job("3", body)


@pytest.mark.parametrize("text", ["-1", "x", "1e3", "99999999999", ""])
def test_bad_job_ids_are_clear_errors(text):
    with pytest.raises(JobRequestError, match="job id"):
        parse_jid(text)


def test_a_good_body_parses():
    job = parse_job("12", {"ps": PS, "port": 7112, "workers": [W1, PS], "worker_mbps": 20, "ps_mbps": 40})
    assert job == JobSpec(12, PS, 7112, (W1, PS), 20e6, 40e6) and job.remote_workers == (W1,)


def test_an_unmeasured_link_is_not_ready_rather_than_refused():
    from controller.job_flows import JobNotReady
    fresh = GlobalView()          # as after a controller restart: links known, capacities not yet
    for dpid in (1, 2, 3, 4):
        fresh.add_switch(dpid, 0.0)
    for a, pa, b, pb in ((1, 1, 2, 1), (1, 2, 3, 1), (2, 2, 4, 1), (3, 2, 4, 2)):
        fresh.add_link(LinkKey(a, pa, b, pb), 0.0)
        fresh.add_link(LinkKey(b, pb, a, pa), 0.0)
    fresh.update_heartbeat(Heartbeat("e1", "edge", W1, 1, 1, 0, 0, 0), "00:00:00:00:00:01", 1, 3, 0.0)
    fresh.update_heartbeat(Heartbeat("e2", "edge", PS, 1, 1, 0, 0, 0), "00:00:00:00:00:05", 4, 3, 0.0)
    with pytest.raises(JobNotReady, match="not measured"):
        JobNetwork().place(fresh, spec(workers=(W1,)))


def test_the_number_of_jobs_is_bounded(view, monkeypatch):
    from controller import job_flows
    monkeypatch.setattr(job_flows, "MAX_JOBS", 2)
    net = JobNetwork()
    for jid in (1, 2):
        net.commit(net.place(view, spec(jid=jid, workers=(PS,))))
    with pytest.raises(JobRefused, match="2 jobs are placed"):
        net.place(view, spec(jid=3, workers=(PS,)))
    net.place(view, spec(jid=2, workers=(PS,)))        # a placed job may be put again

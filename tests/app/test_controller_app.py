import time

import pytest

from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import probe
from protocol import heartbeat
from controller.app import FORWARD_COOKIE, PRIORITY_FORWARD
from controller.probe import LinkKey
from tests.app.conftest import FakeDatapath, frame

E1_MAC, D1_MAC = "00:00:00:00:00:04", "00:00:00:00:00:01"


def connect(app, dpid):
    dp = FakeDatapath(dpid)
    app._switch_features(ofp_event.EventOFPSwitchFeatures(parser.OFPSwitchFeatures(dp)))
    state = ofp_event.EventOFPStateChange(dp)
    state.state = MAIN_DISPATCHER
    app._state_change(state)
    return dp


def packet_in(app, dp, in_port, data):
    msg = parser.OFPPacketIn(dp, buffer_id=0xFFFFFFFF, total_len=len(data), reason=0, table_id=0,
                             cookie=0, match=parser.OFPMatch(in_port=in_port), data=data)
    app._packet_in(ofp_event.EventOFPPacketIn(msg))


def heartbeat_frame(busy=0.7, name="e1"):
    payload = heartbeat.encode(heartbeat.Heartbeat(name, "edge", "10.0.0.4", 1, 0.5, busy, 3, 1000))
    return frame(E1_MAC, "ff:ff:ff:ff:ff:ff", 0x0800, payload, ip_src="10.0.0.4",
                 udp_dst=heartbeat.HEARTBEAT_PORT)


def test_switch_gets_measurement_flows(app):
    dp = connect(app, 1)
    mods = dp.of_type(parser.OFPFlowMod)
    matches = [dict(m.match.items()) for m in mods]
    assert {"udp_dst": heartbeat.HEARTBEAT_PORT, "eth_type": 0x0800, "ip_proto": 17} in matches
    assert {"eth_type": probe.PROBE_ETHERTYPE, "eth_dst": probe.MARKER_DST_MAC} in matches
    assert dp.of_type(parser.OFPPortDescStatsRequest)
    assert app.view.switches() == [1]


def test_heartbeat_packet_in_updates_node_load(app):
    dp = connect(app, 1)
    packet_in(app, dp, 3, heartbeat_frame(busy=0.7))
    node = app.view.nodes(app.clock())[0]
    assert node["name"] == "e1" and node["load"]["busy"] == 0.7 and node["load"]["queue_len"] == 3


def test_bad_heartbeat_is_counted_not_fatal(app):
    dp = connect(app, 1)
    bad = frame(E1_MAC, "ff:ff:ff:ff:ff:ff", 0x0800, heartbeat.MAGIC + b"{oops", ip_src="10.0.0.4",
                udp_dst=heartbeat.HEARTBEAT_PORT)
    packet_in(app, dp, 3, bad)
    assert app._bad_heartbeats == 1 and app.view.hosts() == []


def test_port_stats_reply_becomes_link_rate(app):
    dp1, dp2 = connect(app, 1), connect(app, 2)
    app.view.add_link(LinkKey(1, 1, 2, 1), app.clock())

    def stats(tx_bytes, seconds):
        body = [parser.OFPPortStats(port_no=1, rx_packets=0, tx_packets=0, rx_bytes=0, tx_bytes=tx_bytes,
                                    rx_dropped=0, tx_dropped=0, rx_errors=0, tx_errors=0,
                                    rx_frame_err=0, rx_over_err=0, rx_crc_err=0, collisions=0,
                                    duration_sec=seconds, duration_nsec=0)]
        msg = parser.OFPPortStatsReply(dp1)
        msg.body = body
        app._port_stats(ofp_event.EventOFPPortStatsReply(msg))

    stats(0, 10)
    stats(2_500_000, 12)  # 2.5 MB in 2 s of port time = 10 Mbit/s
    assert app.view.link_rate(1, 2) == 10e6


def _deliver_train(app, dp1, dp2, link, rate_bps):
    """Send a probe train and feed back its markers as if the link carried ``rate_bps``."""
    train = app.prober.plan(link, app.clock())
    duration = 8 * (train.train_bytes + 64) / rate_bps
    app._send_probe(dp1, train)
    outs = dp1.of_type(parser.OFPPacketOut)
    assert sum(len(o.actions) for o in outs) * probe.FRAME_BYTES >= train.train_bytes
    assert all(a.port == 1 for o in outs for a in o.actions)
    markers = [f for f, _ in train.messages if probe.parse_marker(f)]
    start = time.time()
    for data, when in zip(markers, (start, start + duration)):
        msg = parser.OFPPacketIn(dp2, buffer_id=0xFFFFFFFF, total_len=len(data), reason=0, table_id=0,
                                 cookie=0, match=parser.OFPMatch(in_port=1), data=data)
        ev = ofp_event.EventOFPPacketIn(msg)
        ev.timestamp = when
        app._packet_in(ev)


def test_probe_markers_set_capacity_once_two_trains_agree(app):
    dp1, dp2 = connect(app, 1), connect(app, 2)
    link = LinkKey(1, 1, 2, 1)
    app.view.add_link(link, app.clock())
    edge = app.view.graph.edges["s:0000000000000001", "s:0000000000000002"]
    _deliver_train(app, dp1, dp2, link, 20e6)
    assert edge["capacity_bps"] is None                                   # one look: not yet
    assert app.probe_schedule.due([link], app.clock() + app.probe_schedule.confirm_interval) == [link]
    _deliver_train(app, dp1, dp2, link, 22e6)
    assert edge["capacity_bps"] == pytest.approx(21e6, rel=1e-6)


def test_unicast_installs_path_flows_and_unknown_floods(app):
    dp1, dp2 = connect(app, 1), connect(app, 2)
    app.view.add_link(LinkKey(1, 1, 2, 1), app.clock())
    app.view.add_link(LinkKey(2, 1, 1, 1), app.clock())
    packet_in(app, dp2, 3, frame(E1_MAC, "ff:ff:ff:ff:ff:ff", 0x0806))   # e1 on switch 2 port 3
    flood = dp2.of_type(parser.OFPPacketOut)[-1]
    assert sorted(a.port for a in flood.actions) == [1, 2]
    packet_in(app, dp1, 3, frame(D1_MAC, E1_MAC, 0x0800))                 # d1 -> e1
    fwd = [m for m in dp1.of_type(parser.OFPFlowMod) if m.priority == PRIORITY_FORWARD]
    assert fwd and fwd[-1].cookie == FORWARD_COOKIE and dict(fwd[-1].match.items()) == {"eth_dst": E1_MAC}
    assert fwd[-1].instructions[0].actions[0].port == 1
    assert dp1.of_type(parser.OFPPacketOut)[-1].actions[0].port == 1


def test_same_broadcast_flooded_once_per_switch(app):
    dp = connect(app, 1)
    data = frame(D1_MAC, "ff:ff:ff:ff:ff:ff", 0x0806)
    packet_in(app, dp, 3, data)
    packet_in(app, dp, 2, data)  # came back around a loop
    assert len(dp.of_type(parser.OFPPacketOut)) == 1


def test_transfer_rules_are_fenced_by_barriers(app):
    from controller.routing import FlowRule
    dp1, dp2 = connect(app, 1), connect(app, 2)
    match = tuple(sorted({"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": "10.0.0.4", "tcp_dst": 9000}.items()))
    done, keys = app._install_and_fence([FlowRule(1, match, 2), FlowRule(2, match, 3)])
    mods = [m for m in dp1.of_type(parser.OFPFlowMod) if m.priority == 200]
    assert mods and dict(mods[0].match.items())["tcp_dst"] == 9000
    barriers = {dp.id: dp.of_type(parser.OFPBarrierRequest)[0] for dp in (dp1, dp2)}
    assert not done.is_set()
    for dp in (dp1, dp2):
        reply = parser.OFPBarrierReply(dp)
        reply.xid = barriers[dp.id].xid
        app._barrier_reply(ofp_event.EventOFPBarrierReply(reply))
    assert done.is_set() and not app._barriers and len(keys) == 2


def _diamond(app):
    """Switches 1-2-4 and 1-3-4 (port n of switch a faces switch n); d1 on 1:9, e1 on 4:9."""
    dps = {n: connect(app, n) for n in (1, 2, 3, 4)}
    for a, b in ((1, 2), (1, 3), (2, 4), (3, 4)):
        app.view.add_link(LinkKey(a, b, b, a), app.clock())
        app.view.add_link(LinkKey(b, a, a, b), app.clock())
    app.view.learn_host(D1_MAC, 1, 9, app.clock(), ip="10.0.0.1")
    app.view.learn_host(E1_MAC, 4, 9, app.clock(), ip="10.0.0.4")
    return dps


def test_a_failed_link_moves_its_transfers_and_removes_the_stale_rules(app):
    from types import SimpleNamespace
    from controller.routing import plan_transfer
    dps = _diamond(app)
    transfer = plan_transfer(app.view, "10.0.0.1", "10.0.0.4", 9000)
    app._active.add([transfer], time.monotonic())
    via = transfer.switches[1]
    other = 5 - via                                       # the other middle switch
    for dp in dps.values():
        dp.sent.clear()
    port = lambda s, d: SimpleNamespace(dpid=s, port_no=d)   # noqa: E731
    # one direction reported down (Ryu reports each on its own): the link is down both ways
    app._link_delete(SimpleNamespace(link=SimpleNamespace(src=port(via, 1), dst=port(1, via))))
    assert not app.view.graph.has_edge(f"s:{1:016x}", f"s:{via:016x}")
    added = [m for m in dps[other].of_type(parser.OFPFlowMod) if m.command == 0 and m.priority == 200]
    assert len(added) == 2                                # both directions, on the remaining path
    deleted = [m for m in dps[via].of_type(parser.OFPFlowMod) if m.command == 4]   # DELETE_STRICT
    assert len(deleted) == 2 and dict(deleted[0].match.items())["tcp_dst"] in (9000, None)
    flushed = [m for m in dps[1].of_type(parser.OFPFlowMod) if m.command == 3 and m.cookie == FORWARD_COOKIE]
    assert flushed                                        # forwarding recomputed at once
    from controller.routing import TRANSFER_COOKIE
    swept = {(dp_id, m.out_port) for dp_id in (1, via) for m in dps[dp_id].of_type(parser.OFPFlowMod)
             if m.command == 3 and m.cookie == TRANSFER_COOKIE}
    assert swept == {(1, via), (via, 1)}                  # older transfer rules into the link go too
    assert app.metrics.registry.get_sample_value("sdncep_reroutes_total") == 1


def test_a_port_that_goes_down_takes_its_host_out_at_once(app):
    dps = _diamond(app)
    packet_in(app, dps[4], 9, heartbeat_frame())          # e1's heartbeat: alive
    host = app.view.host_by_ip("10.0.0.4")
    assert app.view.host_alive(host, app.clock())
    ofp = dps[4].ofproto
    desc = parser.OFPPort(port_no=9, hw_addr="00:00:00:00:00:09", name=b"s4-eth9", config=0,
                          state=ofp.OFPPS_LINK_DOWN, curr=0, advertised=0, supported=0, peer=0,
                          curr_speed=0, max_speed=0)
    app._port_status(ofp_event.EventOFPPortStatus(parser.OFPPortStatus(dps[4], ofp.OFPPR_MODIFY, desc)))
    assert not app.view.host_alive(host, app.clock())
    up = parser.OFPPort(port_no=9, hw_addr="00:00:00:00:00:09", name=b"s4-eth9", config=0, state=0, curr=0,
                        advertised=0, supported=0, peer=0, curr_speed=0, max_speed=0)
    app._port_status(ofp_event.EventOFPPortStatus(parser.OFPPortStatus(dps[4], ofp.OFPPR_MODIFY, up)))
    assert app.view.host_alive(host, app.clock())


def _plan_packet_in(app, dp, task_id):
    from protocol import plan_request
    payload = plan_request.encode_request(plan_request.PlanRequest(task_id, "alexnet", "only-cloud", "10.0.0.1"))
    data = frame(D1_MAC, "ff:ff:ff:ff:ff:ff", 0x0800, payload, ip_src="10.0.0.1", udp_dst=plan_request.PLAN_PORT)
    msg = parser.OFPPacketIn(dp, buffer_id=0xFFFFFFFF, total_len=len(data), reason=0, table_id=0,
                             cookie=0, match=parser.OFPMatch(in_port=3), data=data)
    return ofp_event.EventOFPPacketIn(msg)


def test_plan_requests_beyond_the_concurrency_bound_are_told_overloaded(app, monkeypatch):
    from controller import app as app_module
    from protocol import plan_request
    spawned = []
    monkeypatch.setattr(app_module.hub, "spawn", lambda fn, *args: spawned.append((fn, args)))
    dp = connect(app, 1)
    for n in range(app_module.MAX_CONCURRENT_PLANS + 2):
        app._packet_in(_plan_packet_in(app, dp, f"t{n}"))
    flags = [args[-1] for _fn, args in spawned]
    assert flags == [False] * app_module.MAX_CONCURRENT_PLANS + [True, True]
    fn, args = spawned[-1]
    fn(*args)                                                     # the last one is answered at once
    reply = plan_request.decode_reply(bytes(dp.of_type(parser.OFPPacketOut)[-1].data)[42:])
    assert reply["ok"] is False and "overloaded" in reply["error"] and reply["retry_after_s"] > 0
    assert app._planning == app_module.MAX_CONCURRENT_PLANS + 1
    assert app.metrics.registry.get_sample_value("sdncep_decision_errors_total", {"reason": "overloaded"}) == 1


def test_port_states_are_relearned_when_a_switch_reconnects(app):
    dps = _diamond(app)
    packet_in(app, dps[4], 9, heartbeat_frame())
    host = app.view.host_by_ip("10.0.0.4")
    ofp = dps[4].ofproto

    def desc(state):
        port = parser.OFPPort(port_no=9, hw_addr="00:00:00:00:00:09", name=b"s4-eth9", config=0, state=state,
                              curr=0, advertised=0, supported=0, peer=0, curr_speed=0, max_speed=0)
        return ofp_event.EventOFPPortDescStatsReply(parser.OFPPortDescStatsReply(dps[4], body=[port]))

    app._port_desc(desc(ofp.OFPPS_LINK_DOWN))            # went down while the switch was away
    assert not app.view.host_alive(host, app.clock())
    app._port_desc(desc(0))
    assert app.view.host_alive(host, app.clock())

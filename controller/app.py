"""SDN-CEP Ryu application: forwarding, measurement and the global view.

    ryu-manager --observe-links controller.app [--config-file sdncep.conf]

This module is the only one (with controller.rest) that imports Ryu. It hands
events to the pure parts: ``GlobalView`` (state), ``Forwarder`` (flows and floods),
``PortRateTracker`` (counters to rates), ``CapacityProber`` (packet trains),
``heartbeat`` (node load) and ``Planner`` (plan requests -> plans and transfer
rules), and turns their answers into OpenFlow messages.
"""

import logging
import time

from ryu import cfg
from ryu.app.wsgi import WSGIApplication
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.lib.packet import arp, ether_types, ethernet, ipv4, packet, udp
from ryu.ofproto import ofproto_v1_3
from ryu.topology import event as topo_event

from controller import probe
from controller.config import ControllerConfig, register_options
from controller.forwarding import Forwarder
from controller.metrics import ControllerMetrics
from controller.planner import Planner, PlanningError
from controller.rates import PortRateTracker, PortSample
from controller.routing import TRANSFER_COOKIE, ActiveTransfers, InstalledRules
from controller.rest import APP_KEY, NorthboundController
from controller.view import GlobalView
from protocol import heartbeat, plan_request

LOG = logging.getLogger("sdncep.controller")

PRIORITY_MISS = 0
PRIORITY_FORWARD = 10
PRIORITY_MEASURE = 100
FORWARD_COOKIE = 0x5DCE0001
BARRIER_TIMEOUT = 1.0
# Plan requests served at once (each a green thread); beyond, a request is answered
# "overloaded" at once with a retry time, rather than queued without bound.
MAX_CONCURRENT_PLANS = 64
OVERLOADED_RETRY_S = 0.2
PROBE_SPACING = 0.1  # seconds between two capacity-probe trains
# Source of plan replies sent by packet-out (locally administered, never on a host).
PLAN_SERVER_MAC = "02:5d:ce:00:00:fe"
PLAN_SERVER_IP = "10.255.255.254"

register_options(cfg.CONF)


class SdnCepController(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = ControllerConfig.from_oslo(cfg.CONF.sdncep)
        self.clock = time.time
        self.view = GlobalView(unmeasured_bps=self.config.unmeasured_link_mbit * 1e6)
        self.forwarder = Forwarder(self.view)
        self.rates = PortRateTracker()
        self.prober = probe.CapacityProber(target_duration=self.config.probe_duration)
        self.capacities = probe.CapacityEstimator()
        self.probe_schedule = probe.ProbeSchedule(self.config.probe_interval or 1.0,
                                                  max(self.config.probe_max_interval, self.config.probe_interval))
        self.datapaths = {}
        self._port_names = {}
        self._bad_heartbeats = 0
        self._barriers = {}
        self._planning = 0
        self._installed = InstalledRules()
        self._active = ActiveTransfers(horizon=2 * self.config.transfer_idle_timeout)
        self.metrics = ControllerMetrics()
        self.planner = self._load_planner()
        kwargs["wsgi"].register(NorthboundController, {APP_KEY: self})
        self._threads = [hub.spawn(self._poll_loop)]
        if self.config.probe_interval > 0:
            self._threads.append(hub.spawn(self._probe_loop))
        LOG.info("SDN-CEP controller up: %s", self.config)

    def _load_planner(self):
        """The planner, or no start at all: a file or plug-in the settings name that
        cannot be used stops ryu-manager with every problem listed (``sdncep check``
        runs the same checks), rather than a controller that plans nothing. With
        ``on_bad_settings = serve_baselines`` it starts without them instead, and the
        methods they served answer with an explicit error naming the file."""
        from sdncep.check import ERROR, check_controller_config, settings_problems, usable_settings

        config = self.config
        # the config files' keys too (oslo passes over unknown options silently); the files
        # and plug-ins named are checked once, as the settings oslo read from them
        problems = [p for path in cfg.CONF.config_file or ()
                    for p in check_controller_config(path, check_settings=False).problems if p.severity == ERROR]
        problems += settings_problems(config)
        unavailable = {}
        if problems:
            for problem in problems:
                LOG.error("sdncep config: %s", problem)
            if config.on_bad_settings == "refuse":
                raise SystemExit("sdncep: refusing to start, [sdncep] settings: "
                                 + "; ".join(str(p).lstrip(": ") for p in problems))
            config, unavailable = usable_settings(config)
            for method, why in unavailable.items():
                LOG.error("sdncep: serving without %s: %s", method, why)
        if config.agent_checkpoint:
            import torch
            # one thread: the agents' forward pass is tiny, and idle torch worker
            # threads spin, which a real-time controller (topologies.testbed) must not do
            torch.set_num_threads(1)
        try:
            return Planner.from_files(
                agent_checkpoint=config.agent_checkpoint or None,
                predictor_path=config.predictor_path or None,
                profiles_dir=config.profiles_dir or None, delta=config.delta,
                complexity_gate=config.complexity_gate, agent_top_k=config.agent_top_k,
                policies=config.policies, unavailable=unavailable,
                worker_port=config.worker_port, rule_idle_timeout=config.transfer_idle_timeout,
                stats_lag_s=2 * config.poll_interval + 0.5)
        except (OSError, ValueError, RuntimeError) as exc:
            LOG.error("sdncep config: %s", exc)
            raise SystemExit(f"sdncep: refusing to start: {exc}") from None

    # -- switch lifecycle -----------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self._add_flow(dp, PRIORITY_MISS, parser.OFPMatch(),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        self._add_flow(dp, PRIORITY_MEASURE,
                       parser.OFPMatch(eth_type=ether_types.ETH_TYPE_IP, ip_proto=17,
                                       udp_dst=heartbeat.HEARTBEAT_PORT),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        self._add_flow(dp, PRIORITY_MEASURE,
                       parser.OFPMatch(eth_type=ether_types.ETH_TYPE_IP, ip_proto=17,
                                       udp_dst=plan_request.PLAN_PORT),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        self._add_flow(dp, PRIORITY_MEASURE,
                       parser.OFPMatch(eth_type=probe.PROBE_ETHERTYPE, eth_dst=probe.MARKER_DST_MAC),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, 128)])
        self._add_flow(dp, PRIORITY_MEASURE,
                       parser.OFPMatch(eth_type=probe.PROBE_ETHERTYPE, eth_dst=probe.BULK_DST_MAC), [])
        dp.send_msg(parser.OFPPortDescStatsRequest(dp, 0))

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER and dp.id is not None:
            self.datapaths[dp.id] = dp
            self.view.add_switch(dp.id, self.clock(), name=self._port_names.get(dp.id))
        elif ev.state == DEAD_DISPATCHER and dp.id in self.datapaths:
            del self.datapaths[dp.id]
            self.view.remove_switch(dp.id)
            self.view.forget_ports(dp.id)
            self.rates.forget(dp.id)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        for port in ev.msg.body:    # a port that changed while the switch was away says so here
            self.view.set_port_down(dp.id, port.port_no, bool(port.state & dp.ofproto.OFPPS_LINK_DOWN))
            if port.port_no == dp.ofproto.OFPP_LOCAL:
                name = port.name.decode(errors="replace") if isinstance(port.name, bytes) else port.name
                self._port_names[dp.id] = name
                self.view.add_switch(dp.id, self.clock(), name=name)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        """A port that goes down takes the host behind it out of the plans at once
        (its heartbeats would take HEARTBEAT_STALE_AFTER to go stale)."""
        msg = ev.msg
        ofp = msg.datapath.ofproto
        down = msg.reason == ofp.OFPPR_DELETE or bool(msg.desc.state & ofp.OFPPS_LINK_DOWN)
        self.view.set_port_down(msg.datapath.id, msg.desc.port_no, down)
        if down:
            LOG.info("port %s of %s is down", msg.desc.port_no, self.view.graph.nodes.get(
                f"s:{msg.datapath.id:016x}", {}).get("name", msg.datapath.id))

    @set_ev_cls(topo_event.EventLinkAdd)
    def _link_add(self, ev):
        self.view.add_link(self._link_key(ev.link), self.clock())

    @set_ev_cls(topo_event.EventLinkDelete)
    def _link_delete(self, ev):
        """A link is down both ways when one direction is (a port status or lost LLDP):
        Ryu reports each direction on its own, and a route planned between the two
        reports would use the half still in the view."""
        key = self._link_key(ev.link)
        reverse = probe.LinkKey(key.dst_dpid, key.dst_port, key.src_dpid, key.src_port)
        for link in (key, reverse):
            self.view.remove_link(link)
            self.prober.forget(link)
            self.capacities.forget(link)
            self.probe_schedule.forget(link)
        self._flush_forwarding_if_topology_changed()   # now, not at the next packet-in
        self._reroute(key)
        self._delete_transfer_rules_out_of(key)

    def _delete_transfer_rules_out_of(self, link):
        """Whatever transfer rule is left pointing into the failed link (one older than
        the rerouting horizon) goes: its traffic falls back to forwarding."""
        for dpid, port in ((link.src_dpid, link.src_port), (link.dst_dpid, link.dst_port)):
            dp = self.datapaths.get(dpid)
            if dp is not None:
                ofp, parser = dp.ofproto, dp.ofproto_parser
                dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                              cookie=TRANSFER_COOKIE, cookie_mask=0xFFFFFFFFFFFFFFFF,
                                              out_port=port, out_group=ofp.OFPG_ANY))
                self._installed.forget_port(dpid, port)

    def _reroute(self, link):
        """Move the recent transfers over a failed link to the remaining paths: the new
        route's rules, then the old route's rules removed where the new one does not go."""
        moves = self._active.reroute(self.view, link.src_dpid, link.dst_dpid, time.monotonic())
        for move in moves:
            self._installed.forget(move.delete)
            self._installed.needed(move.install, time.monotonic())
            self._install_and_fence(move.install)
            self.delete_rules(move.delete)
        if moves:
            self.metrics.reroutes.inc(sum(m.new is not None for m in moves))
            LOG.info("link %s down: %d transfer(s) rerouted, %d without a path", link,
                     sum(m.new is not None for m in moves), sum(m.new is None for m in moves))

    def delete_rules(self, rules):
        """Remove exactly ``rules`` (strict match: priority, match and cookie) from their switches."""
        for rule in rules:
            dp = self.datapaths.get(rule.dpid)
            if dp is not None:
                ofp, parser = dp.ofproto, dp.ofproto_parser
                dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, priority=rule.priority,
                                              match=parser.OFPMatch(**rule.match_dict), cookie=rule.cookie,
                                              cookie_mask=0xFFFFFFFFFFFFFFFF, table_id=0,
                                              out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))

    @staticmethod
    def _link_key(link):
        return probe.LinkKey(link.src.dpid, link.src.port_no, link.dst.dpid, link.dst.port_no)

    # -- packet-in --------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None or eth.ethertype == ether_types.ETH_TYPE_LLDP:
            return
        if eth.ethertype == probe.PROBE_ETHERTYPE:
            self._probe_marker(dp.id, msg.data, ev.timestamp)
            return
        udp_seg = pkt.get_protocol(udp.udp)
        if udp_seg is not None and udp_seg.dst_port == heartbeat.HEARTBEAT_PORT:
            self._heartbeat(pkt, eth.src, dp.id, in_port)
            return
        if udp_seg is not None and udp_seg.dst_port == plan_request.PLAN_PORT:
            self._planning += 1
            hub.spawn(self._serve_plan_packet, dp, in_port, pkt, ev.timestamp, self._planning > MAX_CONCURRENT_PLANS)
            return
        arp_pkt = pkt.get_protocol(arp.arp)
        ip_pkt = pkt.get_protocol(ipv4.ipv4)
        src_ip = arp_pkt.src_ip if arp_pkt else (ip_pkt.src if ip_pkt else None)
        self.view.learn_host(eth.src, dp.id, in_port, self.clock(), ip=src_ip)
        self._forward(dp, msg, in_port, eth.dst)

    def _probe_marker(self, dpid, data, timestamp):
        marker = probe.parse_marker(data)
        if marker is None:
            return
        result = self.prober.on_marker(*marker, dst_dpid=dpid, timestamp=timestamp)
        if result is None:
            return
        previous = self.capacities.current(result.link)
        measured = probe.corrected_capacity(result.capacity_bps,
                                            self.view.link_rate(result.link.src_dpid, result.link.dst_dpid),
                                            previous)
        capacity = self.capacities.update(result.link, measured)
        self.probe_schedule.result(result.link, self.clock(), previous, measured,
                                   unconfirmed=self.capacities.unsettled(result.link))
        if capacity is not None:
            self.view.update_capacity(result.link, capacity, self.clock())
        LOG.debug("probe %s: %.2f Mbit/s, %.2f with cross traffic (train %d B in %.3f s)", result.link,
                  result.capacity_bps / 1e6, measured / 1e6, result.train_bytes, result.duration)

    def _heartbeat(self, pkt, mac, dpid, in_port):
        payload = pkt.protocols[-1]
        try:
            report = heartbeat.decode(payload if isinstance(payload, bytes) else b"")
        except heartbeat.HeartbeatError as exc:
            self._bad_heartbeats += 1
            if self._bad_heartbeats % 100 == 1:
                LOG.warning("dropping bad heartbeat from %s: %s (%d so far)", mac, exc,
                            self._bad_heartbeats)
            return
        self.view.update_heartbeat(report, mac, dpid, in_port, self.clock())

    # -- forwarding -------------------------------------------------------------
    def _forward(self, dp, msg, in_port, dst_mac):
        self._flush_forwarding_if_topology_changed()
        route = self.forwarder.unicast(dp.id, dst_mac)
        if route is None:
            self._flood(dp, msg, in_port)
            return
        for flow in route.flows:
            other = self.datapaths.get(flow.dpid)
            if other is not None:
                parser = other.ofproto_parser
                self._add_flow(other, PRIORITY_FORWARD, parser.OFPMatch(eth_dst=flow.eth_dst),
                               [parser.OFPActionOutput(flow.out_port)],
                               idle_timeout=self.config.forward_idle_timeout, cookie=FORWARD_COOKIE)
        if route.out_port is not None:
            self._packet_out(dp, msg, in_port, [route.out_port])

    def _flood(self, dp, msg, in_port):
        ports = [p.port_no for p in dp.ports.values() if p.port_no <= dp.ofproto.OFPP_MAX]
        out_ports = self.forwarder.flood_ports(dp.id, in_port, ports, bytes(msg.data), self.clock())
        if out_ports:
            self._packet_out(dp, msg, in_port, out_ports)

    @staticmethod
    def _packet_out(dp, msg, in_port, ports):
        parser = dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=dp.ofproto.OFP_NO_BUFFER, in_port=in_port,
                                        actions=[parser.OFPActionOutput(p) for p in ports], data=msg.data))

    def _flush_forwarding_if_topology_changed(self):
        """Paths are recomputed lazily: forget installed ones when the topology moved."""
        if not self.forwarder.topology_changed():
            return
        for dp in self.datapaths.values():
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                          cookie=FORWARD_COOKIE, cookie_mask=0xFFFFFFFFFFFFFFFF,
                                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))

    @staticmethod
    def _add_flow(dp, priority, match, actions, idle_timeout=0, hard_timeout=0, cookie=0, meter_id=0):
        parser = dp.ofproto_parser
        instructions = [parser.OFPInstructionActions(dp.ofproto.OFPIT_APPLY_ACTIONS, actions)]
        if meter_id:
            instructions.insert(0, parser.OFPInstructionMeter(meter_id, dp.ofproto.OFPIT_METER))
        dp.send_msg(parser.OFPFlowMod(dp, priority=priority, match=match, instructions=instructions,
                                      idle_timeout=idle_timeout, hard_timeout=hard_timeout,
                                      cookie=cookie))

    # -- measurement ------------------------------------------------------------
    def _poll_loop(self):
        while True:
            for dp in list(self.datapaths.values()):
                dp.send_msg(dp.ofproto_parser.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY))
            for link in self.prober.expire(self.clock()):
                LOG.info("capacity probe on %s lost (no end marker)", link)
                self.probe_schedule.lost(link, self.clock())
            self.metrics.observe_view(self.view, self.clock())
            hub.sleep(self.config.poll_interval)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        dpid = ev.msg.datapath.id
        for stat in ev.msg.body:
            sample = PortSample.from_counters(stat.rx_bytes, stat.tx_bytes, stat.rx_packets,
                                              stat.tx_packets, stat.tx_dropped,
                                              stat.duration_sec, stat.duration_nsec)
            rate = self.rates.update(dpid, stat.port_no, sample)
            if rate is not None:
                self.view.update_port_rate(dpid, stat.port_no, rate, ev.timestamp)

    def _probe_loop(self):
        """Probe the links that are due (probe.ProbeSchedule), one train at a time.

        Trains are spaced rather than sent together: the userspace datapath is one
        thread, and simultaneous trains would make it miss packets (and markers) on
        its receive sockets. Links that carry a task's transfer (rules sent within
        the transfer idle timeout) wait: a train would queue ahead of the tensor.
        """
        while True:
            now = self.clock()
            carrying = self._installed.ports_in_use(time.monotonic(), self.config.transfer_idle_timeout)
            links = [probe.LinkKey(src, data["src_port"], dst, data["dst_port"])
                     for src, dst, data in self.view.switch_links()]
            for link in self.probe_schedule.due(links, now):
                dp = self.datapaths.get(link.src_dpid)
                unknown = self.capacities.current(link) is None
                if (dp is not None and not self.prober.busy(link)
                        and (unknown or (link.src_dpid, link.src_port) not in carrying)):
                    self._send_probe(dp, self.prober.plan(link, now))
                    self.probe_schedule.sent(link, now)
                    break
            hub.sleep(PROBE_SPACING)

    def _send_probe(self, dp, train):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        for frame, copies in train.messages:
            actions = [parser.OFPActionOutput(train.link.src_port)] * copies
            dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER,
                                            in_port=ofp.OFPP_CONTROLLER, actions=actions, data=frame))
        self.rates.discount_tx(dp.id, train.link.src_port, train.injected_bytes)

    # -- planning -----------------------------------------------------------------
    def plan(self, request, received_at):
        """Plan one task and install its transfer flows; returns the reply dict.

        Waits (green thread) for barrier replies from every switch that got rules,
        so that when the device hears back, its transfers already follow the plan.
        """
        started = time.time()
        try:
            planned = self.planner.plan(self.view, request, self.clock())
        except PlanningError as exc:
            self.metrics.decision_errors.labels(exc.reason).inc()
            refusal = {"task_id": request.task_id, "attempt": request.attempt, "ok": False, "error": str(exc)}
            if exc.retry_after_s is not None:
                refusal["retry_after_s"] = exc.retry_after_s
            return refusal
        except Exception as exc:  # noqa: BLE001 - a planning bug must not leave a device unanswered
            LOG.exception("planning %s failed", request.task_id)
            self.metrics.decision_errors.labels("internal").inc()
            return {"task_id": request.task_id, "attempt": request.attempt, "ok": False,
                    "error": f"internal error: {exc}"}
        decided = time.time()
        if request.retry:
            self.metrics.retries.labels(request.retry, "keep_waiting" if planned.reply.get("keep_waiting")
                                        else "new_plan").inc()
        if planned.reply.get("keep_waiting"):
            return dict(planned.reply, controller_overhead_s=time.time() - received_at)
        self._active.add(planned.transfers, time.monotonic())
        rules = self._installed.needed([r for t in planned.transfers for r in t.rules], time.monotonic())
        done, barriers = self._install_and_fence(rules)
        fenced = done.wait(timeout=BARRIER_TIMEOUT)
        for key in barriers:  # replies that never came must not pile up
            self._barriers.pop(key, None)
        finished = time.time()
        self.metrics.observe_plan(request.method, planned.reply)  # plans, fallbacks, predicted latency
        self.metrics.decision_seconds.observe(finished - received_at)
        return dict(planned.reply, controller_overhead_s=finished - received_at,
                    overhead_parts_s={"queued": started - received_at, "decide": decided - started,
                                      "install": finished - decided},
                    flows_confirmed=bool(fenced))

    def _install_and_fence(self, rules):
        """Send FlowMods for ``rules`` then a barrier per switch.

        Returns (event that fires when every barrier is answered, barrier keys).
        """
        done = hub.Event()
        pending = set()
        for rule in rules:
            dp = self.datapaths.get(rule.dpid)
            if dp is None:
                continue
            parser = dp.ofproto_parser
            self._add_flow(dp, rule.priority, parser.OFPMatch(**rule.match_dict),
                           [parser.OFPActionOutput(rule.out_port)], idle_timeout=rule.idle_timeout,
                           hard_timeout=rule.hard_timeout, cookie=rule.cookie, meter_id=rule.meter_id)
            pending.add(dp.id)
        if not pending:
            done.set()
            return done, []
        waiting = {"left": set(pending), "event": done}
        keys = []
        for dpid in pending:
            dp = self.datapaths[dpid]
            barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
            dp.set_xid(barrier)
            keys.append((dpid, barrier.xid))
            self._barriers[keys[-1]] = waiting
            dp.send_msg(barrier)
        return done, keys

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        key = (ev.msg.datapath.id, ev.msg.xid)
        waiting = self._barriers.pop(key, None)
        if waiting is None:
            return
        waiting["left"].discard(key[0])
        if not waiting["left"]:
            waiting["event"].set()

    def _serve_plan_packet(self, dp, in_port, pkt, received_at, overloaded=False):
        try:
            self._answer_plan_packet(dp, in_port, pkt, received_at, overloaded)
        finally:
            self._planning -= 1

    def _answer_plan_packet(self, dp, in_port, pkt, received_at, overloaded):
        eth, ip, udp_seg = (pkt.get_protocol(p) for p in (ethernet.ethernet, ipv4.ipv4, udp.udp))
        try:
            request = plan_request.decode_request(pkt.protocols[-1] if isinstance(pkt.protocols[-1], bytes) else b"")
            if ip is None or request.device_ip != ip.src:
                raise plan_request.PlanProtocolError("device_ip must be the request's source address")
        except plan_request.PlanProtocolError as exc:
            self.metrics.decision_errors.labels("malformed").inc()
            LOG.warning("bad plan request from %s: %s", eth.src, exc)
            return
        self.view.learn_host(eth.src, dp.id, in_port, self.clock(), ip=ip.src)
        if overloaded:
            self.metrics.decision_errors.labels("overloaded").inc()
            reply = {"task_id": request.task_id, "attempt": request.attempt, "ok": False,
                     "retry_after_s": OVERLOADED_RETRY_S,
                     "error": f"controller overloaded ({MAX_CONCURRENT_PLANS} plan requests at once)"}
        else:
            reply = self.plan(request, received_at)
        try:
            payload = plan_request.encode_reply(reply)
        except plan_request.PlanProtocolError:
            payload = plan_request.encode_reply({"task_id": request.task_id, "ok": False,
                                                  "error": "plan too large for one datagram; use REST"})
        frame = packet.Packet()
        frame.add_protocol(ethernet.ethernet(dst=eth.src, src=PLAN_SERVER_MAC, ethertype=ether_types.ETH_TYPE_IP))
        frame.add_protocol(ipv4.ipv4(src=PLAN_SERVER_IP, dst=ip.src, proto=17))
        frame.add_protocol(udp.udp(src_port=plan_request.PLAN_PORT, dst_port=udp_seg.src_port))
        frame.add_protocol(payload)
        frame.serialize()
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(in_port)], data=frame.data))

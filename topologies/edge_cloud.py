"""The SDN-CEP edge-cloud topology for Mininet (layout in topologies.spec).

As a Mininet custom topology::

    mn --custom topologies/edge_cloud.py --topo edgecloud,edges=3,wan_mbit=20 \\
       --switch ovs,datapath=user --controller remote,port=6653

Or on its own, starting OVS if needed, against a running ryu-manager::

    python -m topologies.edge_cloud [--config topo.yaml] [--schedule trace.csv] [--cli]
"""

import argparse
import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path

if not globals().get("__package__"):
    # Run by `mn --custom`, which exec()s this file without __file__ or a package:
    # make the repository importable from the path the code was compiled from.
    sys.path.insert(0, str(Path(sys._getframe().f_code.co_filename).resolve().parent.parent))

from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.node import OVSSwitch  # noqa: E402
from mininet.topo import Topo  # noqa: E402

from topologies.nodes import (PACED_SHARES_PER_CORE, EdgeCloudHost, NetemUnavailable, ShapedLink,  # noqa: E402
                              SocketRemoteController, pin_process)
from topologies.ovs import OvsDaemons, OvsError  # noqa: E402
from topologies.schedule import TraceError, ScheduleRunner, load_trace  # noqa: E402
from topologies.spec import CPU_PERIOD_US, SpecError, TopologySpec, dpid_of  # noqa: E402


class EdgeCloudTopo(Topo):
    """End devices, access switches, a two-core leaf/spine fabric, edge hosts, a WAN to the cloud."""

    def build(self, spec=None, heartbeat=True, **overrides):
        spec = spec or TopologySpec.from_mapping(overrides)
        self.spec = spec
        for name in spec.switches():
            self.addSwitch(name, dpid=dpid_of(name), protocols="OpenFlow13")
        demand = spec.check_budget()
        worker_cpus, other_cpus = spec.cpu_sets()
        for name, role, cores in spec.hosts():
            paced = spec.paced and role != "device"
            placement = {}
            if worker_cpus:
                placement = ({"cpus": worker_cpus, "shares": max(2, round(PACED_SHARES_PER_CORE * demand[name]))}
                             if paced else {"cpus": other_cpus})
            self.addHost(name, cls=EdgeCloudHost, role=role, cores_limit=cores, heartbeat=heartbeat,
                         period_us=CPU_PERIOD_US,
                         worker_port=spec.worker_port, worker_models=spec.worker_models,
                         first=spec.hosts_first and role != "device",
                         pace=cores if paced else None, pace_jitter=spec.compute_jitter, **placement)
        for a, b, mbit, _kind in spec.links():
            self.addLink(a, b, cls=ShapedLink, **({"bw": mbit} if mbit else {}))


topos = {"edgecloud": lambda **kw: EdgeCloudTopo(**kw)}


def share_wan_per_sender(net):
    """Make the WAN share its rate fairly between the hosts sending over it.

    What the live planner assumes (agents.cost.NetView.wan_lanes) and what an
    operator's per-subscriber shaping does; with one drop-tail queue instead, the
    TCP flow that started first kept most of a slow WAN for seconds.
    """
    senders = [host.IP() for host in net.hosts if host.name != "cloud"]
    for link in net.linksBetween(net["c1"], net["g1"]):
        for intf in (link.intf1, link.intf2):
            if intf.params.get("bw"):
                intf.share_per_source(senders)


def place_infrastructure(spec, pids):
    """Keep ovs-vswitchd and the controller (``pids``) off the paced workers' cores
    (topologies.spec: cpu_split). Returns the cores they may use, or None."""
    _workers, others = spec.cpu_sets()
    if others:
        for pid in pids:
            pin_process(pid, others)
    return others


def make_net(spec, controller_ip="127.0.0.1", controller_port=6653, heartbeat=True):
    """A Mininet (not started) for ``spec`` on userspace-datapath OVS."""
    return Mininet(topo=EdgeCloudTopo(spec=spec, heartbeat=heartbeat),
                   switch=partial(OVSSwitch, datapath="user", protocols="OpenFlow13"),
                   controller=partial(SocketRemoteController, ip=controller_ip, port=controller_port),
                   link=ShapedLink, host=EdgeCloudHost, autoSetMacs=True, waitConnected=False,
                   build=False)


def link_setter(net):
    """A set_rate(ends, mbit) for ScheduleRunner that re-rates both ends of a link."""
    def set_rate(ends, mbit):
        a, b = ends
        links = net.linksBetween(net[a], net[b]) if a in net and b in net else []
        if not links:
            raise TraceError(f"no link {a}-{b} in this topology")
        for link in links:
            link.intf1.set_rate(mbit)
            link.intf2.set_rate(mbit)
    return set_rate


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the SDN-CEP edge-cloud testbed.")
    parser.add_argument("--config", help="YAML file of topology keys (see topologies/spec.py)")
    parser.add_argument("--edges", type=int, help="number of edge hosts (default 3)")
    parser.add_argument("--wan-mbit", type=float, help="WAN (c1-g1) bandwidth, Mbit/s")
    parser.add_argument("--controller", default="127.0.0.1:6653", help="ryu-manager address")
    parser.add_argument("--schedule", help="bandwidth trace CSV (time_s,link,mbit) to apply live")
    parser.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    parser.add_argument("--duration", type=float, help="headless: stop after this many seconds")
    args = parser.parse_args(argv)
    setLogLevel("info")
    try:
        mapping = dict(vars(TopologySpec.from_yaml(args.config))) if args.config else {}
        if args.edges is not None:
            mapping["edges"] = args.edges
        if args.wan_mbit is not None:
            mapping["wan_mbit"] = args.wan_mbit
        spec = TopologySpec.from_mapping(mapping)
        changes = load_trace(args.schedule) if args.schedule else []
        spec.check_trace(changes, args.schedule)
    except (SpecError, TraceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("error: Mininet needs root", file=sys.stderr)
        return 2
    host, _, port = args.controller.partition(":")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with OvsDaemons() as ovs:
            place_infrastructure(spec, ovs.running_pids().values())
            net = make_net(spec, host, int(port or 6653))
            try:
                net.build()
                net.start()
                share_wan_per_sender(net)
                if not net.waitConnected(timeout=30):
                    print("warning: not every switch connected to the controller", file=sys.stderr)
                runner = ScheduleRunner(changes, link_setter(net))
                runner.start()
                if args.cli:
                    from mininet.cli import CLI
                    CLI(net)
                else:
                    print("testbed running; Ctrl-C or SIGTERM stops it", flush=True)
                    stop.wait(args.duration)
                runner.stop()
            finally:
                net.stop()
    except (OvsError, NetemUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

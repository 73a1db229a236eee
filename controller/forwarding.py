"""Forwarding decisions without Ryu: what a frame needs, as plain values.

The Ryu app (controller.app) asks this core and turns its answers into OpenFlow
messages, as faucet's Valve returns messages for faucet.py to send:

* :meth:`Forwarder.topology_changed`: forwarding flows installed for an older
  topology must be deleted (paths are recomputed lazily, at the next frame);
* :meth:`Forwarder.unicast`: the ``eth_dst`` flows along the shortest-path tree
  towards a known host, and the port the frame itself leaves by;
* :meth:`Forwarder.flood_ports`: the spanning-tree ports a broadcast leaves by, or
  none when this switch flooded the same frame within the window (the fabric has
  loops; the tree and the window together keep a broadcast from storming, also
  before LLDP has found every link).
"""

from dataclasses import dataclass

FLOOD_DEDUP_WINDOW = 0.5          # seconds a switch ignores a frame it has flooded
MAX_REMEMBERED_FLOODS = 10_000     # beyond, expired entries are dropped


@dataclass(frozen=True)
class ForwardFlow:
    """Switch ``dpid`` sends frames for ``eth_dst`` out of ``out_port``."""

    dpid: int
    eth_dst: str
    out_port: int


@dataclass(frozen=True)
class Unicast:
    flows: tuple          # ForwardFlow on every switch of the tree towards the host
    out_port: object      # where the frame that asked leaves its switch (None: not on the tree)


class Forwarder:
    def __init__(self, view):
        self.view = view
        self._version = None
        self._flooded = {}

    def topology_changed(self):
        """True once per change of the view's topology (the caller then flushes)."""
        if self._version == self.view.topology_version:
            return False
        self._version = self.view.topology_version
        return True

    def unicast(self, dpid, dst_mac):
        """The flows and out port for a frame to ``dst_mac`` seen at ``dpid``; None
        while the host's location is unknown (the frame is flooded instead)."""
        location = self.view.host_location(dst_mac)
        if location is None:
            return None
        dst_dpid, dst_port = location
        hops = self.view.next_hops_towards(dst_dpid)
        hops[dst_dpid] = dst_port
        return Unicast(tuple(ForwardFlow(d, dst_mac, port) for d, port in hops.items()), hops.get(dpid))

    def flood_ports(self, dpid, in_port, ports, frame, now):
        """Ports of ``ports`` (the switch's physical ports) on the flooding tree, the
        one the frame came in by excluded; () if ``dpid`` flooded ``frame`` lately."""
        key = (dpid, hash(frame))
        if now - self._flooded.get(key, -FLOOD_DEDUP_WINDOW) < FLOOD_DEDUP_WINDOW:
            return ()
        self._flooded[key] = now
        if len(self._flooded) > MAX_REMEMBERED_FLOODS:
            self._flooded = {k: t for k, t in self._flooded.items() if now - t < FLOOD_DEDUP_WINDOW}
        return tuple(self.view.flood_ports(dpid, [p for p in ports if p != in_port]))

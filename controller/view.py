"""The controller's global view: switches, links and hosts in one networkx graph.

Pure and Ryu-free: every method takes the time as an argument, so tests drive it
with a fake clock. Node ids are ``s:<dpid as 16 hex digits>`` for switches and
``h:<mac>`` for hosts; edges are directed, one per direction of a link, and carry
the measured figures (all in bits/s):

- ``capacity_bps``  measured by packet trains (switch-to-switch links), else None;
- ``rate_bps``      user traffic from port counters (probe bytes removed);
- ``utilisation``   rate / capacity;
- ``available_bps`` capacity - rate.
"""

import heapq
import xml.etree.ElementTree as ET

import networkx as nx

# Six heartbeats (every 0.5 s) missed: the node is down. A killed worker or a host
# link taken down is seen sooner (a closed connection at the device, a port status).
HEARTBEAT_STALE_AFTER = 3.0
FAIR_SHARE_FLOOR = 0.5


def switch_id(dpid):
    return f"s:{dpid:016x}"


def host_id(mac):
    return f"h:{mac}"


def _mbit(bps):
    return None if bps is None else round(bps / 1e6, 3)


class GlobalView:
    """Network state as measured by the controller."""

    def __init__(self, unmeasured_bps=float("inf")):
        self.graph = nx.DiGraph()
        self.topology_version = 0
        # what a switch link no probe has measured yet is assumed to carry: after a
        # controller restart, "unlimited" would cost every plan as if the WAN were free
        self.unmeasured_bps = unmeasured_bps
        self.down_ports = set()    # (dpid, port) whose link is down (port status)
        self.suspects = set()      # ips a device reported unreachable since their last heartbeat
        self._tree = (None, None)  # (topology_version, spanning tree) for flooding

    # -- switches and links -------------------------------------------------
    def add_switch(self, dpid, now, name=None):
        node = switch_id(dpid)
        if node not in self.graph:
            self.topology_version += 1
        self.graph.add_node(node, kind="switch", dpid=dpid, name=name or node, since=now)

    def remove_switch(self, dpid):
        node = switch_id(dpid)
        if node in self.graph:
            attached = [n for n in self.graph.successors(node) if self.graph.nodes[n]["kind"] == "host"]
            self.graph.remove_node(node)
            self.graph.remove_nodes_from(attached)
            self.topology_version += 1

    def switches(self):
        return [d["dpid"] for _, d in self.graph.nodes(data=True) if d["kind"] == "switch"]

    def add_link(self, link, now):
        """Add a directed switch-to-switch link (a probe.LinkKey)."""
        src, dst = switch_id(link.src_dpid), switch_id(link.dst_dpid)
        if src not in self.graph or dst not in self.graph:
            return
        if not self.graph.has_edge(src, dst) or self.graph.edges[src, dst]["src_port"] != link.src_port:
            self.topology_version += 1
        self.graph.add_edge(src, dst, kind="switch", src_port=link.src_port, dst_port=link.dst_port,
                            capacity_bps=None, capacity_at=None, rate_bps=0.0, rate_at=now)
        # A port that turned out to be inter-switch cannot have a host behind it.
        for host in [n for n in self.graph.predecessors(src)
                     if self.graph.nodes[n]["kind"] == "host"
                     and self.graph.nodes[n]["port"] == link.src_port]:
            self.graph.remove_node(host)

    def remove_link(self, link):
        src, dst = switch_id(link.src_dpid), switch_id(link.dst_dpid)
        if self.graph.has_edge(src, dst):
            self.graph.remove_edge(src, dst)
            self.topology_version += 1

    def links_between(self, name_a, name_b):
        """probe.LinkKey of both directions of the link between the switches named
        ``name_a`` and ``name_b`` (empty if there is none)."""
        from controller.probe import LinkKey
        names = {name_a, name_b}
        return [LinkKey(self.graph.nodes[u]["dpid"], d["src_port"], self.graph.nodes[v]["dpid"], d["dst_port"])
                for u, v, d in self.graph.edges(data=True)
                if d["kind"] == "switch" and {self.graph.nodes[u]["name"], self.graph.nodes[v]["name"]} == names]

    def switch_links(self):
        """(src_dpid, dst_dpid, edge data) for every directed switch-to-switch link."""
        return [(self.graph.nodes[u]["dpid"], self.graph.nodes[v]["dpid"], d)
                for u, v, d in self.graph.edges(data=True) if d["kind"] == "switch"]

    def is_link_port(self, dpid, port):
        node = switch_id(dpid)
        return node in self.graph and any(
            d["kind"] == "switch" and d["src_port"] == port
            for _, _, d in self.graph.out_edges(node, data=True))

    # -- hosts ----------------------------------------------------------------
    def learn_host(self, mac, dpid, port, now, ip=None):
        """Record that ``mac`` sits behind (dpid, port). Returns True if it moved or is new."""
        if self.is_link_port(dpid, port) or switch_id(dpid) not in self.graph:
            return False
        node, sw = host_id(mac), switch_id(dpid)
        known = self.graph.nodes[node] if node in self.graph else None
        moved = known is None or (known["dpid"], known["port"]) != (dpid, port)
        if moved:
            if known is not None:
                self.graph.remove_node(node)
                attrs = {k: v for k, v in known.items() if k not in ("dpid", "port", "kind", "mac")}
            else:
                attrs = {"name": node, "role": "unknown", "ip": None, "load": None}
            self.graph.add_node(node, **attrs, kind="host", mac=mac, dpid=dpid, port=port)
            for u, v in ((node, sw), (sw, node)):
                self.graph.add_edge(u, v, kind="host", src_port=None if u == node else port,
                                    dst_port=port if v == sw else None,
                                    capacity_bps=None, capacity_at=None, rate_bps=0.0, rate_at=now)
            self.topology_version += 1
        if ip:
            self.graph.nodes[node]["ip"] = ip
        self.graph.nodes[node]["seen_at"] = now
        return moved

    def set_port_down(self, dpid, port, down):
        """A port status: a host behind a port that is down is not alive, whatever its
        last heartbeat said."""
        (self.down_ports.add if down else self.down_ports.discard)((dpid, port))

    def forget_ports(self, dpid):
        """A switch left: what its ports said no longer holds (it tells again on return)."""
        self.down_ports = {(d, p) for d, p in self.down_ports if d != dpid}

    def suspect(self, ip):
        """A device could not reach ``ip`` (its connection was refused or closed): the
        host counts as down until a heartbeat newer than this report comes in. A
        worker that is alive sends one within half a second; a dead one never does."""
        if len(self.suspects) < 4096:
            self.suspects.add(ip)

    def host_alive(self, data, now):
        """A host is alive while its heartbeats are fresh, its port is up, and no
        device has found it unreachable since its last heartbeat."""
        load = data.get("load")
        return (load is not None and now - load["at"] <= HEARTBEAT_STALE_AFTER
                and (data["dpid"], data["port"]) not in self.down_ports and data.get("ip") not in self.suspects)

    def host_location(self, mac):
        data = self.graph.nodes.get(host_id(mac))
        return None if data is None else (data["dpid"], data["port"])

    def hosts(self):
        return [d for _, d in self.graph.nodes(data=True) if d["kind"] == "host"]

    def host_by_name(self, name):
        return next((d for d in self.hosts() if d["name"] == name), None)

    def host_by_ip(self, ip):
        return next((d for d in self.hosts() if d.get("ip") == ip), None)

    def update_heartbeat(self, heartbeat, mac, dpid, port, now):
        """Apply a host's load report received as a packet-in at (dpid, port)."""
        self.learn_host(mac, dpid, port, now, ip=heartbeat.ip)
        node = host_id(mac)
        if node not in self.graph:
            return
        data = self.graph.nodes[node]
        data.update(name=heartbeat.name, role=heartbeat.role, ip=heartbeat.ip)
        self.suspects.discard(heartbeat.ip)
        data["load"] = {"cpu_share": heartbeat.cpu_share, "busy": heartbeat.busy,
                        "queue_len": heartbeat.queue_len,
                        "mem_free_bytes": heartbeat.mem_free_bytes,
                        "pacing": heartbeat.pacing, "seq": heartbeat.seq, "at": now}

    # -- measurements ---------------------------------------------------------
    def update_port_rate(self, dpid, port, rate, now):
        """Apply a PortRate of a switch port to the edges that port carries."""
        sw = switch_id(dpid)
        if sw not in self.graph:
            return
        for _, v, data in self.graph.out_edges(sw, data=True):
            if data["src_port"] == port:
                data.update(rate_bps=rate.tx_bps, rate_at=now)
            if data["kind"] == "host" and self.graph.nodes[v]["port"] == port:
                self.graph.edges[v, sw].update(rate_bps=rate.rx_bps, rate_at=now)

    def link_rate(self, src_dpid, dst_dpid):
        edge = self.graph.edges.get((switch_id(src_dpid), switch_id(dst_dpid)))
        return None if edge is None else edge["rate_bps"]

    def update_capacity(self, link, capacity_bps, now):
        edge = self.graph.edges.get((switch_id(link.src_dpid), switch_id(link.dst_dpid)))
        if edge is not None and edge["src_port"] == link.src_port:
            edge.update(capacity_bps=capacity_bps, capacity_at=now)

    # -- paths ----------------------------------------------------------------
    def switch_graph(self):
        return self.graph.subgraph(n for n, d in self.graph.nodes(data=True) if d["kind"] == "switch")

    def switch_hops(self, src_dpid, dst_dpid):
        """How many switches the shortest path from switch ``src_dpid`` to ``dst_dpid`` crosses
        (1 for the same switch), or None if there is none."""
        try:
            return nx.shortest_path_length(self.switch_graph(), switch_id(src_dpid), switch_id(dst_dpid)) + 1
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None

    def next_hops_towards(self, dst_dpid):
        """{dpid: out_port} on a shortest-path tree towards switch ``dst_dpid``."""
        graph = self.switch_graph()
        target = switch_id(dst_dpid)
        if target not in graph:
            return {}
        paths = nx.shortest_path(graph.reverse(copy=False), source=target)
        hops = {}
        for node, path in paths.items():
            if len(path) >= 2:
                nxt = path[-2]
                hops[graph.nodes[node]["dpid"]] = graph.edges[node, nxt]["src_port"]
        return hops

    def available_bps(self, src, dst, use_capacity=False):
        """Bandwidth a new transfer can expect on a switch edge; unmeasured: ``unmeasured_bps``.

        ``capacity - rate``, but never less than half the capacity: the load on our
        links is TCP transfers, and a new TCP flow gets about a fair share of a link
        that one other flow fills. Without that floor, a link busy for a moment would
        look nearly unusable and a plan would be costed at minutes.
        """
        data = self.graph.edges[src, dst]
        capacity = data["capacity_bps"]
        if capacity is None:
            return self.unmeasured_bps
        return capacity if use_capacity else max(capacity - data["rate_bps"], capacity * FAIR_SHARE_FLOOR)

    def widest_path(self, src_dpid, dst_dpid, tolerance=0.1, use_capacity=False, width_of=None):
        """(dpids, bottleneck bits/s): the switch path with most available bandwidth.

        Widths within ``tolerance`` (relative) of each other count as equal, so that
        measurement noise does not buy a detour: among those, fewer hops win.
        ``width_of(u, v)``: another width of the edge u -> v (graph node ids; default
        ``available_bps``). Returns (None, 0.0) if unreachable.
        """
        if width_of is None:
            def width_of(u, v):
                return self.available_bps(u, v, use_capacity)

        def better(width, hops, known):
            if known is None:
                return True
            known_width, known_hops = known
            if width > known_width * (1 + tolerance):
                return True
            return width >= known_width * (1 - tolerance) and hops < known_hops

        graph = self.switch_graph()
        source, target = switch_id(src_dpid), switch_id(dst_dpid)
        if source not in graph or target not in graph:
            return None, 0.0
        best = {source: (float("inf"), 0)}
        previous = {}
        heap = [(-float("inf"), 0, source)]
        while heap:
            neg_width, hops, node = heapq.heappop(heap)
            if node == target:
                break
            if (-neg_width, hops) != best.get(node):
                continue
            for nxt in graph.successors(node):
                width = min(-neg_width, width_of(node, nxt))
                if better(width, hops + 1, best.get(nxt)):
                    best[nxt] = (width, hops + 1)
                    previous[nxt] = node
                    heapq.heappush(heap, (-width, hops + 1, nxt))
        if target not in best:
            return None, 0.0
        path = [target]
        while path[-1] != source:
            path.append(previous[path[-1]])
        path.reverse()
        return [graph.nodes[n]["dpid"] for n in path], best[target][0]

    def out_port(self, src_dpid, dst_dpid):
        return self.graph.edges[switch_id(src_dpid), switch_id(dst_dpid)]["src_port"]

    def flood_ports(self, dpid, all_ports):
        """Ports to flood on: host ports plus inter-switch ports on a spanning tree."""
        version, tree = self._tree
        if version != self.topology_version:  # recomputed only when the topology moved
            graph = self.switch_graph().to_undirected(as_view=False)
            tree = nx.minimum_spanning_tree(graph) if graph.number_of_nodes() else graph
            self._tree = (self.topology_version, tree)
        node = switch_id(dpid)
        link_ports = {d["src_port"]: v for _, v, d in self.graph.out_edges(node, data=True)
                      if d["kind"] == "switch"} if node in self.graph else {}
        return [p for p in all_ports if p not in link_ports or tree.has_edge(node, link_ports[p])]

    # -- serialisation --------------------------------------------------------
    def _edge_record(self, u, v, data, now):
        capacity, rate = data["capacity_bps"], data["rate_bps"]
        src, dst = self.graph.nodes[u], self.graph.nodes[v]
        return {
            "src": src["name"], "dst": dst["name"], "kind": data["kind"],
            "src_port": data["src_port"], "dst_port": data["dst_port"],
            "capacity_mbps": _mbit(capacity), "rate_mbps": _mbit(rate),
            "utilisation": None if not capacity else round(min(rate / capacity, 1.0), 4),
            "available_mbps": None if capacity is None else _mbit(max(capacity - rate, 0.0)),
            "capacity_age_s": None if data["capacity_at"] is None else round(now - data["capacity_at"], 3),
        }

    def links(self, now):
        return [self._edge_record(u, v, d, now) for u, v, d in self.graph.edges(data=True)]

    def nodes(self, now):
        records = []
        for data in self.hosts():
            load = data.get("load")
            records.append({
                "name": data["name"], "role": data["role"], "ip": data.get("ip"), "mac": data["mac"],
                "switch": self.graph.nodes[switch_id(data["dpid"])]["name"], "port": data["port"],
                "alive": self.host_alive(data, now),
                "load": None if load is None else {k: v for k, v in load.items() if k != "at"}
                | {"age_s": round(now - load["at"], 3)},
            })
        return records

    def switch_records(self):
        return [{"dpid": f"{d['dpid']:016x}", "name": d["name"]}
                for _, d in self.graph.nodes(data=True) if d["kind"] == "switch"]

    def to_dict(self, now):
        return {"timestamp": now, "switches": self.switch_records(),
                "links": self.links(now), "nodes": self.nodes(now)}

    def to_xml(self, now):
        """The global-view message as XML (one element per switch, link and node)."""
        root = ET.Element("globalView", timestamp=f"{now:.3f}")
        switches = ET.SubElement(root, "switches")
        for record in self.switch_records():
            ET.SubElement(switches, "switch", _xml_attrs(record))
        links = ET.SubElement(root, "links")
        for record in self.links(now):
            ET.SubElement(links, "link", _xml_attrs(record))
        nodes = ET.SubElement(root, "nodes")
        for record in self.nodes(now):
            load = record.pop("load")
            node = ET.SubElement(nodes, "node", _xml_attrs(record))
            if load is not None:
                ET.SubElement(node, "load", _xml_attrs(load))
        return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _xml_attrs(record):
    return {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in record.items() if value is not None}

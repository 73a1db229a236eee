"""What an edge-cloud testbed looks like, as validated data (no Mininet import).

Layout (defaults: 3 edge hosts, 2 access switches, 2 end devices)::

    d1 - a1 --+                      +-- c1 --(WAN)-- g1 - cloud
              +-- l1 - e1      (every leaf l_i links to both c1 and c2,
    d2 - a2 --+-- l2 - e2       so edge hosts have two disjoint paths)
                  l3 - e3    +-- c2

Switch names encode their tier (c core, l leaf, a access, g cloud gateway) and
carry explicit datapath ids so the controller's view shows the same names.
Bandwidths are in Mbit/s; ``None`` leaves a link unshaped.

A node's speed is a property of the topology: ``edge_cores`` and ``cloud_cores``
give it in cores of the machine the profiles were measured on (a number, or a
host class: edge-large 0.5, edge-medium 0.35, edge-small 0.2, cloud 1.0). How it
is emulated is ``compute``:

* ``paced`` (default): the workers run the real layers at this machine's full
  speed, then hold each result until the profiled time on a node of that speed has
  passed (runtime.pacing). A figure then means the same on a laptop as on a large
  server, as long as the machine keeps up; the budget check below refuses a
  topology it could not keep up with, and the workers count the hops where it
  did not (overruns). The default nodes are Pi-class edges (0.15, 0.2 and 0.1
  cores) and a cloud of 0.35 cores: about 0.6 cores at full load.
* ``cgroup``: each host gets a CFS quota of that many cores (Mininet's
  CPULimitedHost). Emulated nodes that compute at the same time then share the
  machine's cores with OVS and each other, and run slower than their quotas
  promise when the machine has few cores (30-80% slower on two).

Budget check (:meth:`TopologySpec.check_budget`): at full load a paced node keeps
its real time over its emulated time busy (0.28 cores for the default cloud,
0.07 for an edge node of 0.1); the paced nodes together may ask for at most
``compute_budget`` of the machine's cores, the rest being left to OVS, the
controller and the devices.

``hosts_first`` gives the edge and cloud hosts' cgroups a large CPU weight, so that a
host gets its quota as soon as it wants it, as a server with CPUs of its own would;
the switches and devices get the rest (by default each weighs as much as a host).
Use it when the hosts' cores add up to well under the machine's, leaving the switches
about half a core: with the default cores (2.05 on two) they would starve.
"""

from dataclasses import dataclass, fields

import yaml

DEFAULT_EDGE_CORES = (0.15, 0.2, 0.1)
HOST_CLASS_CORES = {"cloud": 1.0, "edge-large": 0.5, "edge-medium": 0.35, "edge-small": 0.2}
COMPUTE_MODES = ("paced", "cgroup")
# CFS period of the hosts' CPU limits: the profiler's, so that layer times measured
# under a quota (models.profiler) hold on the hosts.
CPU_PERIOD_US = 10_000
DPID_BASE = {"c": 0x10, "l": 0x20, "a": 0x30, "g": 0x40}


class SpecError(ValueError):
    """An invalid topology description."""


@dataclass(frozen=True)
class TopologySpec:
    edges: int = 3
    access_switches: int = 2
    devices: int = 2
    edge_cores: tuple = DEFAULT_EDGE_CORES
    cloud_cores: float = 0.35
    wan_mbit: float = 50.0
    fabric_mbit: float = 200.0    # twice a device uplink: two devices' inputs to one node fit side by side
    access_mbit: float = 100.0
    lan_mbit: float = None
    delay: str = None
    loss: float = None
    worker_port: int = None       # run a split-inference worker on edge/cloud hosts
    worker_models: str = "all"
    hosts_first: bool = False     # edge/cloud hosts get their CPU quota ahead of the switches
    compute: str = "paced"        # how node speeds are emulated: paced | cgroup
    compute_jitter: bool = False  # paced: draw segment times from the profiles' spread
    compute_budget: float = 0.5   # paced: share of the machine's cores the nodes may keep busy
    cpu_split: bool = True        # paced: the workers get the last core(s), OVS, controller, devices the rest

    def __post_init__(self):
        if self.delay or self.loss:
            raise SpecError(
                "link delay/loss need the tc 'netem' qdisc, which this kernel does not have; "
                "remove 'delay'/'loss' (bandwidth shaping with htb works)")
        for name in ("edges", "access_switches", "devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 16:
                raise SpecError(f"{name} must be an integer in 1..16, got {value!r}")
        for name in ("wan_mbit", "fabric_mbit", "access_mbit", "lan_mbit"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and 0.1 <= value <= 1000):
                raise SpecError(f"{name} must be in 0.1..1000 Mbit/s or null, got {value!r}")
        if not isinstance(self.edge_cores, (list, tuple)) or not self.edge_cores:
            raise SpecError(f"edge_cores must be a list of CPU cores or host classes, got {self.edge_cores!r}")
        object.__setattr__(self, "edge_cores", tuple(_cores(c, "edge_cores") for c in self.edge_cores))
        object.__setattr__(self, "cloud_cores", _cores(self.cloud_cores, "cloud_cores"))
        if self.compute not in COMPUTE_MODES:
            raise SpecError(f"compute must be one of {list(COMPUTE_MODES)}, got {self.compute!r}")
        if not isinstance(self.compute_jitter, bool):
            raise SpecError(f"compute_jitter must be true or false, got {self.compute_jitter!r}")
        if not isinstance(self.cpu_split, bool):
            raise SpecError(f"cpu_split must be true or false, got {self.cpu_split!r}")
        if (not isinstance(self.compute_budget, (int, float)) or isinstance(self.compute_budget, bool)
                or not 0.05 <= self.compute_budget <= 1):
            raise SpecError(f"compute_budget must be a share of the machine's cores in 0.05..1, "
                            f"got {self.compute_budget!r}")
        if not isinstance(self.hosts_first, bool):
            raise SpecError(f"hosts_first must be true or false, got {self.hosts_first!r}")
        if self.worker_port is not None and not (isinstance(self.worker_port, int) and not isinstance(self.worker_port, bool)
                                                 and 1024 <= self.worker_port <= 65535):
            raise SpecError(f"worker_port must be a TCP port in 1024..65535, got {self.worker_port!r}")

    @classmethod
    def from_mapping(cls, mapping):
        known = {f.name for f in fields(cls)}
        unknown = set(mapping) - known
        if unknown:
            raise SpecError(f"unknown topology key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**mapping)

    @classmethod
    def from_yaml(cls, path):
        try:
            with open(path, encoding="utf-8") as handle:
                mapping = yaml.safe_load(handle) or {}
        except UnicodeDecodeError as exc:
            raise SpecError(f"topology file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except (OSError, yaml.YAMLError) as exc:
            raise SpecError(f"cannot read topology file {path}: {exc}") from None
        if not isinstance(mapping, dict):
            raise SpecError(f"{path}: expected a mapping of topology keys")
        return cls.from_mapping(mapping)

    def check_trace(self, changes, source="trace"):
        """Refuse a bandwidth trace naming a link this topology does not have."""
        links = {frozenset((a, b)) for a, b, _, _ in self.links()}
        unknown = sorted({c.link for c in changes if frozenset(c.ends) not in links})
        if unknown:
            raise SpecError(f"{source}: no link {', '.join(unknown)} in this topology "
                            f"(links: {', '.join(sorted('-'.join(sorted(l)) for l in links))})")

    @property
    def paced(self):
        return self.compute == "paced"

    def paced_demand(self, store=None):
        """{node: cores it keeps busy computing without pause} for the paced workers:
        real time (the profile at one core) over emulated time, the worst of the
        models it serves. Empty when nothing is paced (no workers, or cgroup mode)."""
        if not self.paced or self.worker_port is None:
            return {}
        from runtime.pacing import Pacer  # numpy: only where workers run
        models = self.served_models()
        return {name: max(Pacer(cores, store).demand(model) for model in models)
                for name, role, cores in self.hosts() if role != "device"}

    def served_models(self):
        from models.zoo import model_names
        return model_names() if self.worker_models == "all" else tuple(self.worker_models.split(","))

    def check_budget(self, machine_cores=None, store=None):
        """Refuse a paced topology this machine could not keep up with (SpecError)."""
        import os
        demand = self.paced_demand(store)
        cores = machine_cores or os.cpu_count() or 1
        allowed = self.compute_budget * cores
        if sum(demand.values()) > allowed:
            nodes = ", ".join(f"{n} {d:.2f}" for n, d in demand.items())
            raise SpecError(
                f"the paced nodes would keep {sum(demand.values()):.2f} cores busy at full load ({nodes}), "
                f"more than compute_budget {self.compute_budget:g} of this machine's {cores} cores "
                f"({allowed:.2f}): the rest is for OVS, the controller and the devices. Make the nodes "
                f"slower (edge_cores, cloud_cores), use fewer, or run on a machine with more cores")
        return demand

    def cpu_sets(self, machine_cores=None, store=None):
        """(cores of the paced workers, cores of everything else) with ``cpu_split``, else
        (None, None). The workers get as many of the machine's last cores as they would
        keep busy at full load (at least one), the rest go to ovs-vswitchd, the
        controller and the devices: on the userspace datapath ovs-vswitchd's one
        forwarding thread spins a core while a shaped link is full, and a worker it
        preempts overruns its emulated time."""
        import math
        import os
        cores = machine_cores or os.cpu_count() or 1
        demand = sum(self.paced_demand(store).values())
        if not (self.cpu_split and demand and cores >= 2):
            return None, None
        workers = min(cores - 1, max(1, math.ceil(demand)))
        return tuple(range(cores - workers, cores)), tuple(range(cores - workers))

    def sim_config(self, model="alexnet", **overrides):
        """The simulator set up like this testbed (agents.config.SimConfig): the same node
        speeds, each device's uplink, the fabric between edge nodes; the WAN rate is
        ``bw_mbps`` (an override; default this spec's ``wan_mbit``)."""
        from agents.config import EdgeSpec, SimConfig
        if self.devices > self.access_switches:
            raise SpecError("the simulator gives each device an uplink of its own; this topology has "
                            f"{self.devices} devices behind {self.access_switches} access switches")
        lan = min(self.fabric_mbit or 1e4, self.lan_mbit or 1e4)
        to_edge = min(self.access_mbit or 1e4, lan)
        edges = tuple(EdgeSpec(name, cpu_share=cores, access_mbps=to_edge, mem_bytes=64e9)
                      for name, role, cores in self.hosts() if role == "edge")
        settings = dict(model=model, edges=edges, cloud_share=self.cloud_cores, bw_mbps=self.wan_mbit,
                        bw_range_mbps=None, lan_mbps=lan, devices=self.devices,
                        uplink_mbps=self.access_mbit, distances=self.distances())
        return SimConfig(**dict(settings, **overrides))

    def distances(self):
        """(device, node, switches on the shortest path between them) for every device and
        edge or cloud node, as the controller's view counts them."""
        import networkx as nx
        switches = set(self.switches())
        graph = nx.Graph([(a, b) for a, b, *_ in self.links() if a in switches and b in switches])
        attached = {a if b in switches else b: b if b in switches else a
                    for a, b, *_ in self.links() if (a in switches) != (b in switches)}
        return tuple((device, node, nx.shortest_path_length(graph, attached[device], attached[node]) + 1)
                     for device, role, _ in self.hosts() if role == "device"
                     for node, other, _ in self.hosts() if other != "device")

    def cores_of_edge(self, index):
        """CPU cores of edge host ``index`` (0-based); the list repeats if shorter."""
        return self.edge_cores[index % len(self.edge_cores)]

    # The graph, as plain tuples, for Mininet and for tests.
    def switches(self):
        names = ["c1", "c2"] + [f"l{i + 1}" for i in range(self.edges)]
        names += [f"a{i + 1}" for i in range(self.access_switches)] + ["g1"]
        return names

    def hosts(self):
        """(name, role, cores) for every host."""
        hosts = [(f"d{i + 1}", "device", None) for i in range(self.devices)]
        hosts += [(f"e{i + 1}", "edge", self.cores_of_edge(i)) for i in range(self.edges)]
        return hosts + [("cloud", "cloud", self.cloud_cores)]

    def shaped_rates(self):
        """{frozenset((a, b)): Mbit/s} of every link shaped to a rate (the others are unshaped)."""
        return {frozenset((a, b)): mbit for a, b, mbit, _ in self.links() if mbit is not None}

    def links(self):
        """(node a, node b, Mbit/s or None, kind) for every link."""
        links = []
        for i in range(self.edges):
            links += [(f"l{i + 1}", "c1", self.fabric_mbit, "fabric"),
                      (f"l{i + 1}", "c2", self.fabric_mbit, "fabric"),
                      (f"e{i + 1}", f"l{i + 1}", self.lan_mbit, "lan")]
        for i in range(self.access_switches):
            links.append((f"a{i + 1}", f"l{i % self.edges + 1}", self.access_mbit, "access"))
        for i in range(self.devices):
            links.append((f"d{i + 1}", f"a{i % self.access_switches + 1}", self.lan_mbit, "lan"))
        links += [("c1", "g1", self.wan_mbit, "wan"), ("cloud", "g1", self.lan_mbit, "lan")]
        return links


def _cores(value, key):
    """Cores of the profiling machine, from a number or a host class name."""
    if isinstance(value, str) and value in HOST_CLASS_CORES:
        return HOST_CLASS_CORES[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 64:
        raise SpecError(f"{key}: each value must be CPU cores in 0.01..64 or a host class "
                        f"({', '.join(HOST_CLASS_CORES)}), got {value!r}")
    return float(value)


def dpid_of(switch_name):
    """Datapath id of a switch name such as 'l2' -> 0x22, as 16 hex digits."""
    tier, number = switch_name[0], switch_name[1:]
    if tier not in DPID_BASE or not number.isdigit():
        raise SpecError(f"not a testbed switch name: {switch_name!r}")
    return f"{DPID_BASE[tier] + int(number):016x}"

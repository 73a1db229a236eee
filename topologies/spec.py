"""What an edge-cloud testbed looks like, as validated data (no Mininet import).

Layout (defaults: 3 edge hosts, 2 access switches, 2 end devices)::

    d1 - a1 --+                      +-- c1 --(WAN)-- g1 - cloud
              +-- l1 - e1      (every leaf l_i links to both c1 and c2,
    d2 - a2 --+-- l2 - e2       so edge hosts have two disjoint paths)
                  l3 - e3    +-- c2

Switch names encode their tier (c core, l leaf, a access, g cloud gateway) and
carry explicit datapath ids so the controller's view shows the same names.
Bandwidths are in Mbit/s; ``None`` leaves a link unshaped. Edge CPU shares are in
cores and follow the profiled host classes (edge-large 0.5, edge-medium 0.35,
edge-small 0.2); the cloud host gets one core.

``hosts_first`` gives the edge and cloud hosts' cgroups a large CPU weight, so that a
host gets its quota as soon as it wants it, as a server with CPUs of its own would;
the switches and devices get the rest (by default each weighs as much as a host).
Use it when the hosts' cores add up to well under the machine's, leaving the switches
about half a core: with the default cores (2.05 on two) they would starve.
"""

from dataclasses import dataclass, fields

import yaml

DEFAULT_EDGE_CORES = (0.5, 0.35, 0.2)
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
    cloud_cores: float = 1.0
    wan_mbit: float = 50.0
    fabric_mbit: float = 100.0
    access_mbit: float = 50.0
    lan_mbit: float = None
    delay: str = None
    loss: float = None
    worker_port: int = None       # run a split-inference worker on edge/cloud hosts
    worker_models: str = "all"
    hosts_first: bool = False     # edge/cloud hosts get their CPU quota ahead of the switches


    def __post_init__(self):
        if self.delay or self.loss:
            raise SpecError(
                "link delay/loss need the tc 'netem' qdisc, which this kernel does not have; "
                "remove 'delay'/'loss' (bandwidth shaping with htb works)")
        for name in ("edges", "access_switches", "devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 16:
                raise SpecError(f"{name} must be an integer in 1..16, got {value!r}")
        for name in ("wan_mbit", "fabric_mbit", "access_mbit", "lan_mbit"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0.1 <= value <= 1000):
                raise SpecError(f"{name} must be in 0.1..1000 Mbit/s or null, got {value!r}")
        cores = tuple(self.edge_cores)
        if not cores or any(not isinstance(c, (int, float)) or not 0.01 <= c <= 64 for c in cores):
            raise SpecError(f"edge_cores must be a list of CPU cores in 0.01..64, got {self.edge_cores!r}")
        if not isinstance(self.cloud_cores, (int, float)) or not 0.01 <= self.cloud_cores <= 64:
            raise SpecError(f"cloud_cores must be in 0.01..64, got {self.cloud_cores!r}")
        object.__setattr__(self, "edge_cores", cores)
        if not isinstance(self.hosts_first, bool):
            raise SpecError(f"hosts_first must be true or false, got {self.hosts_first!r}")
        if self.worker_port is not None and not (isinstance(self.worker_port, int)
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
        except (OSError, yaml.YAMLError) as exc:
            raise SpecError(f"cannot read topology file {path}: {exc}") from None
        if not isinstance(mapping, dict):
            raise SpecError(f"{path}: expected a mapping of topology keys")
        return cls.from_mapping(mapping)

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


def dpid_of(switch_name):
    """Datapath id of a switch name such as 'l2' -> 0x22, as 16 hex digits."""
    tier, number = switch_name[0], switch_name[1:]
    if tier not in DPID_BASE or not number.isdigit():
        raise SpecError(f"not a testbed switch name: {switch_name!r}")
    return f"{DPID_BASE[tier] + int(number):016x}"

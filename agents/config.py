"""Typed, validating configuration of the decision core.

Every dataclass checks itself in ``__post_init__`` and is frozen, so a bad value
fails at load time with a message naming the field.  :func:`load_config` reads a
JSON or YAML file with the sections ``cost``, ``sim`` and ``predictor`` and refuses
unknown keys (faucet's ``conf.py`` habit).  Units: seconds, bytes, bit/s inside;
Mbit/s only in fields whose name ends in ``_mbps``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .calibration import HOST_CLASSES, MODELS, known_models
from .errors import ConfigError


def _finite(name: str, v: float) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {v!r}")


def _nonneg(name: str, v: float) -> None:
    _finite(name, v)
    if v < 0:
        raise ConfigError(f"{name} must be >= 0, got {v}")


def _pos(name: str, v: float) -> None:
    _finite(name, v)
    if v <= 0:
        raise ConfigError(f"{name} must be > 0, got {v}")


@dataclass(frozen=True)
class Prices:
    """Unit prices (arbitrary currency).  May later be filled by a pricing module.

    ``per_node`` overrides the role default for named nodes.
    """
    edge_per_s: float = 0.25       #: price of one second of an edge node's allotted CPU
    cloud_per_s: float = 0.5       #: price of one second of the cloud node's CPU
    wan_per_byte: float = 1e-7     #: b_c: price per byte sent over the WAN to the cloud
    lan_per_byte: float = 0.0      #: price per byte on the device/edge LAN
    per_node: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for f in ("edge_per_s", "cloud_per_s", "wan_per_byte", "lan_per_byte"):
            _nonneg(f"prices.{f}", getattr(self, f))
        object.__setattr__(self, "per_node", tuple((str(n), float(p)) for n, p in
                                                   (self.per_node.items() if isinstance(self.per_node, Mapping)
                                                    else self.per_node)))
        for n, p in self.per_node:
            _nonneg(f"prices.per_node[{n}]", p)

    def per_s(self, node: str, role: str) -> float:
        for n, p in self.per_node:
            if n == node:
                return p
        return self.cloud_per_s if role == "cloud" else self.edge_per_s


@dataclass(frozen=True)
class CostConfig:
    """Weights of reward r = -((1 - w) T_all + w C_all), w = Tu / Cu."""
    w: float | None = None         #: explicit weight in [0, 1]; if None, Tu / Cu is used
    t_upper_s: float = 1.0         #: Tu, latency upper bound, seconds
    c_upper: float = 10.0          #: Cu, cost upper bound, currency units
    prices: Prices = field(default_factory=Prices)
    max_queue: int = 50            #: C3: a node with this many tasks queued takes no more
    max_backlog_s: float = 60.0    #: C2: a node with this much queued CPU work takes no more

    def __post_init__(self) -> None:
        if isinstance(self.prices, Mapping):
            object.__setattr__(self, "prices", _build(Prices, self.prices, "cost.prices"))
        _pos("cost.t_upper_s", self.t_upper_s)
        _pos("cost.c_upper", self.c_upper)
        if self.w is not None:
            _finite("cost.w", self.w)
            if self.w < 0:
                raise ConfigError(f"cost.w must be >= 0 (it weighs cost against latency), got {self.w}")
            if self.w > 1:
                raise ConfigError(f"cost.w must be <= 1 so that 1 - w >= 0, got {self.w}")
        elif self.t_upper_s / self.c_upper > 1:
            raise ConfigError(f"w = Tu/Cu = {self.t_upper_s / self.c_upper:g} > 1; "
                              "choose Tu <= Cu or give w explicitly")
        if int(self.max_queue) < 1:
            raise ConfigError(f"cost.max_queue must be >= 1, got {self.max_queue}")
        _pos("cost.max_backlog_s", self.max_backlog_s)

    @property
    def weight(self) -> float:
        return float(self.w) if self.w is not None else self.t_upper_s / self.c_upper


@dataclass(frozen=True)
class EdgeSpec:
    """One simulated edge node."""
    name: str
    host_class: str = "edge-medium"
    access_mbps: float = 100.0     #: device -> node bandwidth (nearer nodes get more)
    mem_bytes: float = 512e6       #: memory available for model segments
    cpu_share: float | None = None  #: cores of the reference machine; None: the host class's

    def __post_init__(self) -> None:
        if self.host_class not in HOST_CLASSES or self.host_class == "cloud":
            raise ConfigError(f"edge {self.name}: unknown edge host class {self.host_class!r}; "
                              f"known: {', '.join(c for c in HOST_CLASSES if c != 'cloud')}")
        _pos(f"edge {self.name}: access_mbps", self.access_mbps)
        _pos(f"edge {self.name}: mem_bytes", self.mem_bytes)
        if self.cpu_share is not None:
            _pos(f"edge {self.name}: cpu_share", self.cpu_share)

    @property
    def share(self) -> float:
        """The node's speed in cores (its own, else its host class's)."""
        return float(self.cpu_share) if self.cpu_share is not None else HOST_CLASSES[self.host_class]


def _default_edges() -> tuple[EdgeSpec, ...]:
    return (EdgeSpec("es1", "edge-large", 50.0, 1.0e9),
            EdgeSpec("es2", "edge-medium", 200.0, 512e6),
            EdgeSpec("es3", "edge-small", 400.0, 128e6))


@dataclass(frozen=True)
class SimConfig:
    """The simulated world: model, nodes, bandwidth trace, task arrivals."""
    model: str = "alexnet"
    edges: tuple[EdgeSpec, ...] = field(default_factory=_default_edges)
    cloud_share: float = 1.0
    bw_trace: str = "constant"      #: constant | stepped | wifi | a CSV trace file (agents.traces)
    trace_link: str = "c1-g1"       #: the link of a trace file the simulator's WAN follows
    bw_mbps: float = 10.0           #: WAN rate for "constant", mean for the others
    bw_range_mbps: tuple[float, float] | None = (1.0, 100.0)  #: if set, bw_mbps is drawn log-uniformly per episode
    lan_mbps: float = 1000.0        #: edge <-> edge bandwidth
    n_tasks: int = 100              #: tasks (images) per episode, i.e. k of a batch T
    n_tasks_range: tuple[int, int] | None = None  #: if set, n_tasks is drawn per episode
    window_s: float = 10.0          #: the k tasks arrive as a Poisson process over this window
    delta: float = 0.6              #: predictor threshold: q(x) >= delta -> cloud
    use_gate: bool = False          #: apply the complexity gate inside the env's action mask
    two_hop: bool = False           #: add (ES_j, ES_k) two-edge cuts to the action space
    devices: int = 1                #: end devices; each has its own uplink and WAN lane
    uplink_mbps: float | None = None  #: each device's uplink (caps its rate to every node); None: no cap
    edge_down_prob: float = 0.0     #: per episode, each edge node is down with this chance (one stays up)
    distances: tuple[tuple[str, str, int], ...] = ()  #: (device, node, switches between them); unset: unknown

    def __post_init__(self) -> None:
        if self.model not in MODELS and self.model not in known_models():
            raise ConfigError(f"sim.model: unknown model {self.model!r}; known: {', '.join(known_models())} "
                              "(a model of your own needs a profile first: docs/howto/add-a-model.md)")
        edges = tuple(e if isinstance(e, EdgeSpec) else _build(EdgeSpec, e, "sim.edges[]")
                      for e in self.edges)
        object.__setattr__(self, "edges", edges)
        if not edges:
            raise ConfigError("sim.edges must list at least one edge node")
        if len({e.name for e in edges}) != len(edges) or any(e.name == "cloud" for e in edges):
            raise ConfigError("sim.edges: node names must be unique and not 'cloud'")
        _pos("sim.cloud_share", self.cloud_share)
        from .traces import LinkRate, TraceError, is_trace_file, load_trace
        if is_trace_file(self.bw_trace):
            try:
                LinkRate(load_trace(self.bw_trace), self.trace_link)
            except TraceError as exc:
                raise ConfigError(f"sim.bw_trace: {exc}") from None
        elif self.bw_trace not in ("constant", "stepped", "wifi"):
            raise ConfigError(f"sim.bw_trace must be constant|stepped|wifi or a .csv trace file, "
                              f"got {self.bw_trace!r}")
        _pos("sim.bw_mbps (bandwidth)", self.bw_mbps)
        if self.bw_range_mbps is not None:
            lo, hi = self.bw_range_mbps
            _pos("sim.bw_range_mbps[0] (bandwidth)", lo)
            _pos("sim.bw_range_mbps[1] (bandwidth)", hi)
            if lo > hi:
                raise ConfigError(f"sim.bw_range_mbps: low {lo} > high {hi}")
            object.__setattr__(self, "bw_range_mbps", (float(lo), float(hi)))
        _pos("sim.lan_mbps (bandwidth)", self.lan_mbps)
        if int(self.n_tasks) < 1:
            raise ConfigError(f"sim.n_tasks must be >= 1, got {self.n_tasks}")
        if self.n_tasks_range is not None:
            lo, hi = self.n_tasks_range
            if not (1 <= int(lo) <= int(hi)):
                raise ConfigError(f"sim.n_tasks_range must satisfy 1 <= lo <= hi, got {self.n_tasks_range}")
            object.__setattr__(self, "n_tasks_range", (int(lo), int(hi)))
        _pos("sim.window_s", self.window_s)
        check_delta(self.delta, "sim.delta")
        if not isinstance(self.devices, int) or isinstance(self.devices, bool) or not 1 <= self.devices <= 64:
            raise ConfigError(f"sim.devices must be an integer in 1..64, got {self.devices!r}")
        if self.uplink_mbps is not None:
            _pos("sim.uplink_mbps (bandwidth)", self.uplink_mbps)
        object.__setattr__(self, "distances", tuple((str(d), str(n), int(h)) for d, n, h in self.distances))
        _finite("sim.edge_down_prob", self.edge_down_prob)
        if not 0.0 <= self.edge_down_prob < 1.0:
            raise ConfigError(f"sim.edge_down_prob must be in [0, 1), got {self.edge_down_prob}")

    def replace(self, **kw: Any) -> "SimConfig":
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(kw)
        return SimConfig(**d)


def check_delta(delta: float, name: str = "delta") -> None:
    _finite(name, delta)
    if not 0.0 <= delta <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1] (it thresholds q(x) in [0, 1]), got {delta}")


@dataclass(frozen=True)
class PredictorConfig:
    path: str = "results/complexity.json"  #: saved predictor (JSON)
    delta: float = 0.6

    def __post_init__(self) -> None:
        check_delta(self.delta, "predictor.delta")


@dataclass(frozen=True)
class CoreConfig:
    cost: CostConfig = field(default_factory=CostConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)


def lists_as_tuples(data: Mapping[str, Any]) -> dict:
    """YAML/JSON lists as the tuples frozen configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(sorted(known))}")
    kw = dict(data)
    for k in ("bw_range_mbps", "n_tasks_range"):
        if k in kw and isinstance(kw[k], list):
            kw[k] = tuple(kw[k])
    if "edges" in kw:
        kw["edges"] = tuple(_build(EdgeSpec, e, f"{where}.edges[]") for e in kw["edges"])
    if "per_node" in kw and isinstance(kw["per_node"], Mapping):
        kw["per_node"] = tuple(kw["per_node"].items())
    try:
        return cls(**kw)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def config_from_dict(data: Mapping[str, Any]) -> CoreConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("config root must be a mapping")
    unknown = sorted(set(data) - {"cost", "sim", "predictor"})
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                          "allowed: cost, sim, predictor")
    return CoreConfig(
        cost=_build(CostConfig, data.get("cost", {}), "cost"),
        sim=_build(SimConfig, data.get("sim", {}), "sim"),
        predictor=_build(PredictorConfig, data.get("predictor", {}), "predictor"),
    )


def read_mapping(path: str | Path) -> Any:
    """The data of a JSON or YAML file (by its suffix), for a ``*_from_dict`` to check."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        import yaml  # optional dependency, present in the venv
        return yaml.safe_load(text) or {}
    return json.loads(text)


def load_config(path: str | Path) -> CoreConfig:
    """Read a JSON or YAML config; unknown keys and bad values raise :class:`ConfigError`."""
    return config_from_dict(read_mapping(path))

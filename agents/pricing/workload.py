"""Generated clusters and job streams (the text's setting: 50-300 edge servers and a cloud,
150 one-hour slots, 5 worker and 5 PS types, worker bandwidth 100-5120 Mbit/s, PS 5-20 Gbit/s).

"Each edge server has [1, 5] worker nodes and [1, 3] PS nodes" is read per node type: an
edge server hosts 1..3 worker types with 1..5 nodes each and 1..2 PS types with 1..3 nodes
each; the cloud hosts every type, ``cloud_workers`` / ``cloud_ps`` nodes each, but a job's
data take ``delay`` slots to reach it (WAN), one slot to reach another edge server.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from agents.config import ConfigError, _build, _pos, lists_as_tuples

from .cluster import Cluster
from .jobs import UTILITY_KINDS, Job, Utility


def _range(name, v, integer=False, lo=0.0):
    if not (isinstance(v, (tuple, list)) and len(v) == 2):
        raise ConfigError(f"workload.{name} must be [low, high], got {v!r}")
    a, b = v
    for x in (a, b):
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
            raise ConfigError(f"workload.{name} must hold finite numbers, got {v!r}")
        if integer and int(x) != x:
            raise ConfigError(f"workload.{name} must hold integers, got {v!r}")
    if not lo <= a <= b:
        raise ConfigError(f"workload.{name} must satisfy {lo} <= low <= high, got {v!r}")
    return (int(a), int(b)) if integer else (float(a), float(b))


@dataclass(frozen=True)
class WorkloadConfig:
    """One generated world.  Bandwidths in Mbit/s, sizes in MB/GB (user-facing units)."""
    servers: int = 50                    #: edge servers (the cloud is one more)
    cloud: bool = True
    slots: int = 150                     #: T
    slot_s: float = 3600.0
    jobs: int = 300
    worker_types: int = 5
    ps_types: int = 5
    worker_types_per_server: tuple = (1, 3)
    ps_types_per_server: tuple = (1, 2)
    edge_workers: tuple = (1, 5)         #: nodes per hosted worker type
    edge_ps: tuple = (1, 3)              #: nodes per hosted PS type
    cloud_workers: int = 8
    cloud_ps: int = 3
    worker_bw_mbps: tuple = (100.0, 5120.0)
    ps_bw_mbps: tuple = (5120.0, 20480.0)
    chunks: tuple = (2, 10)              #: d_j
    minibatches: tuple = (50, 300)       #: m_j
    epochs: tuple = (10, 80)             #: e_j
    compute_s: tuple = (1.0, 4.0)        #: one mini-batch on the reference worker type
    grad_mb: tuple = (10.0, 200.0)
    data_gb: tuple = (5.0, 50.0)
    edge_link_mbps: float = 1000.0
    wan_mbps: float = 200.0
    value_density: tuple = (1.0, 20.0)   #: value per worker-slot (log-uniform)
    deadline_slack: tuple = (1.2, 3.0)   #: deadline / shortest duration
    utility: str = "mixed"               #: linear | sigmoid | step | mixed
    arrival_span: float = 0.85           #: jobs arrive over the first fraction of the slots

    def __post_init__(self) -> None:
        for name in ("servers", "slots", "jobs", "worker_types", "ps_types"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"workload.{name} must be an integer >= 1, got {v!r}")
        for name in ("cloud_workers", "cloud_ps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"workload.{name} must be an integer >= 0, got {v!r}")
        ints = ("worker_types_per_server", "ps_types_per_server", "edge_workers", "edge_ps", "chunks",
                "minibatches", "epochs")
        for name in ints:
            object.__setattr__(self, name, _range(name, getattr(self, name), integer=True, lo=1))
        for name in ("worker_bw_mbps", "ps_bw_mbps", "compute_s", "grad_mb", "data_gb", "value_density",
                     "deadline_slack"):
            object.__setattr__(self, name, _range(name, getattr(self, name), lo=1e-12))
        if self.worker_types_per_server[1] > self.worker_types or self.ps_types_per_server[1] > self.ps_types:
            raise ConfigError("workload: more types per server than types")
        if self.deadline_slack[0] < 1:
            raise ConfigError("workload.deadline_slack must be >= 1")
        for name in ("slot_s", "edge_link_mbps", "wan_mbps", "arrival_span"):
            _pos(f"workload.{name}", getattr(self, name))
        if self.arrival_span > 1:
            raise ConfigError("workload.arrival_span must be in (0, 1]")
        if self.utility not in UTILITY_KINDS + ("mixed",):
            raise ConfigError(f"workload.utility must be one of {', '.join(UTILITY_KINDS)}, mixed; "
                              f"got {self.utility!r}")

    def replace(self, **kw) -> WorkloadConfig:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(kw)
        return WorkloadConfig(**d)


def workload_from_dict(data: Mapping[str, Any]) -> WorkloadConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("workload must be a mapping")
    return _build(WorkloadConfig, lists_as_tuples(data), "workload")


#: small instances for the offline optimum (ILP): 3 edge servers + cloud, 2+2 types, 12 slots
SMALL = WorkloadConfig(servers=3, slots=12, jobs=10, worker_types=2, ps_types=2,
                       worker_types_per_server=(1, 2), ps_types_per_server=(1, 1), edge_workers=(1, 3),
                       edge_ps=(1, 2), cloud_workers=2, cloud_ps=1, chunks=(1, 4), epochs=(2, 8),
                       deadline_slack=(1.2, 3.0))


def make_cluster(cfg: WorkloadConfig, rng: np.random.Generator) -> Cluster:
    W, P, E = cfg.worker_types, cfg.ps_types, cfg.servers
    S = E + (1 if cfg.cloud else 0)
    wc = np.zeros((S, W), dtype=np.int64)
    pc = np.zeros((S, P), dtype=np.int64)
    for s in range(E):
        for w in rng.choice(W, rng.integers(cfg.worker_types_per_server[0], cfg.worker_types_per_server[1] + 1),
                            replace=False):
            wc[s, w] = rng.integers(cfg.edge_workers[0], cfg.edge_workers[1] + 1)
        for p in rng.choice(P, rng.integers(cfg.ps_types_per_server[0], cfg.ps_types_per_server[1] + 1),
                            replace=False):
            pc[s, p] = rng.integers(cfg.edge_ps[0], cfg.edge_ps[1] + 1)
    if cfg.cloud:
        wc[E, :] = cfg.cloud_workers
        pc[E, :] = cfg.cloud_ps
    wb = np.geomspace(*cfg.worker_bw_mbps, W) * 1e6 if W > 1 else np.array([cfg.worker_bw_mbps[0] * 1e6])
    pb = np.geomspace(*cfg.ps_bw_mbps, P) * 1e6 if P > 1 else np.array([cfg.ps_bw_mbps[0] * 1e6])
    names = tuple(f"e{i + 1}" for i in range(E)) + (("cloud",) if cfg.cloud else ())
    return Cluster(wc, pc, wb, pb, cfg.slots, cfg.slot_s, names)


def worker_speed(W: int) -> np.ndarray:
    """Relative speed of the worker types (type W//2 is the reference, 1.0)."""
    return np.geomspace(0.5, 2.0, W) if W > 1 else np.ones(1)


def make_jobs(cfg: WorkloadConfig, cluster: Cluster, rng: np.random.Generator) -> list[Job]:
    W, P, E, S = cfg.worker_types, cfg.ps_types, cfg.servers, cluster.n_servers
    speed = worker_speed(W)
    ps_speed = np.geomspace(0.5, 2.0, P) if P > 1 else np.ones(1)
    last = max(1, int(cfg.slots * cfg.arrival_span))
    arrivals = np.sort(rng.integers(0, last, cfg.jobs))
    kinds = UTILITY_KINDS if cfg.utility == "mixed" else (cfg.utility,)
    jobs = []
    for j, r in enumerate(arrivals):
        d = int(rng.integers(cfg.chunks[0], cfg.chunks[1] + 1))
        m = int(rng.integers(cfg.minibatches[0], cfg.minibatches[1] + 1))
        e = int(rng.integers(cfg.epochs[0], cfg.epochs[1] + 1))
        compute = rng.uniform(*cfg.compute_s)
        grad = rng.uniform(*cfg.grad_mb) * 1e6
        comm = 2 * grad * 8 / cluster.worker_bw                     # push gradient, pull parameters
        agg = 0.05 * compute / ps_speed                             # PS applies the update
        tau = compute / speed[:, None] + comm[:, None] + agg[None, :]
        origin = int(rng.integers(0, E))
        data = rng.uniform(*cfg.data_gb) * 8e9
        delay = np.full(S, math.ceil(data / (cfg.edge_link_mbps * 1e6) / cfg.slot_s), dtype=np.int64)
        if cfg.cloud:
            delay[E] = math.ceil(data / (cfg.wan_mbps * 1e6) / cfg.slot_s)
        delay[origin] = 0
        need_ref = max(1.0, e * d * m * float(np.median(tau)) / cfg.slot_s)
        k_min = math.ceil(need_ref / d)
        deadline = max(1, math.ceil(rng.uniform(*cfg.deadline_slack) * k_min) + int(np.median(delay)))
        density = math.exp(rng.uniform(math.log(cfg.value_density[0]), math.log(cfg.value_density[1])))
        kind = kinds[int(rng.integers(len(kinds)))]
        util = Utility(kind, round(density * need_ref, 3), deadline)
        jobs.append(Job(j, int(r), util, d, m, e, tau, grad, delay, origin, {"density": density}))
    return jobs


def make_world(cfg: WorkloadConfig, seed: int) -> tuple[Cluster, list[Job]]:
    rng = np.random.default_rng(seed)
    cluster = make_cluster(cfg, rng)
    return cluster, make_jobs(cfg, cluster, rng)

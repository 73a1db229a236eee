"""The provider's servers, what is in use slot by slot, and schedules.

Server ``s`` has ``c_sw`` worker nodes of type ``w`` and ``c_sp`` PS nodes of type ``p``;
a worker of type ``w`` has ``b_w`` bit/s, a PS of type ``p`` ``b_p`` bit/s.  ``Usage`` holds
q_sw(t) and h_sp(t), the nodes in use per slot.  :func:`check_schedule` is the one
independent check of constraints (1a)-(1l) for one schedule; :meth:`Usage.allocate`
refuses anything it rejects, so capacity can never be exceeded silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from agents.config import ConfigError


@dataclass(frozen=True, eq=False)
class Cluster:
    worker_cap: np.ndarray      #: (S, W) int, c_sw
    ps_cap: np.ndarray          #: (S, P) int, c_sp
    worker_bw: np.ndarray       #: (W,) bit/s, b_w
    ps_bw: np.ndarray           #: (P,) bit/s, b_p
    slots: int                  #: T
    slot_s: float = 3600.0      #: seconds per slot
    names: tuple = ()           #: server names (default s0.., the last one may be "cloud")

    def __post_init__(self) -> None:
        wc = np.asarray(self.worker_cap, dtype=np.int64)
        pc = np.asarray(self.ps_cap, dtype=np.int64)
        if wc.ndim != 2 or pc.ndim != 2 or wc.shape[0] != pc.shape[0] or wc.shape[0] < 1:
            raise ConfigError("cluster: worker_cap (S, W) and ps_cap (S, P) must have the same S >= 1")
        if (wc < 0).any() or (pc < 0).any():
            raise ConfigError("cluster: capacities must be >= 0")
        wb, pb = np.asarray(self.worker_bw, float), np.asarray(self.ps_bw, float)
        if wb.shape != (wc.shape[1],) or pb.shape != (pc.shape[1],) or (wb <= 0).any() or (pb <= 0).any():
            raise ConfigError("cluster: worker_bw (W,) and ps_bw (P,) must be > 0")
        if int(self.slots) != self.slots or self.slots < 1:
            raise ConfigError(f"cluster: slots must be an integer >= 1, got {self.slots!r}")
        if not self.slot_s > 0:
            raise ConfigError("cluster: slot_s must be > 0")
        names = tuple(self.names) or tuple(f"s{i}" for i in range(wc.shape[0]))
        if len(names) != wc.shape[0]:
            raise ConfigError("cluster: one name per server")
        for k, v in (("worker_cap", wc), ("ps_cap", pc), ("worker_bw", wb), ("ps_bw", pb), ("names", names)):
            object.__setattr__(self, k, v)

    @property
    def n_servers(self) -> int:
        return self.worker_cap.shape[0]

    @property
    def n_worker_types(self) -> int:
        return self.worker_cap.shape[1]

    @property
    def n_ps_types(self) -> int:
        return self.ps_cap.shape[1]

    @cached_property
    def type_servers(self) -> tuple[np.ndarray, ...]:
        """Servers having each type as flat lists and each server's position in them:
        ``sw[sw_at[w]:sw_at[w + 1]]`` host type-w workers, ``pos_w[w, s]`` is s's place there
        (-1: none); the same for PS types (sp, sp_at, pos_p)."""
        out = []
        for cap in (self.worker_cap, self.ps_cap):
            lists = [np.flatnonzero(cap[:, t] > 0) for t in range(cap.shape[1])]
            pos = np.full((cap.shape[1], self.n_servers), -1, dtype=np.int64)
            for t, srv in enumerate(lists):
                pos[t, srv] = np.arange(len(srv))
            out += [np.concatenate(lists).astype(np.int64), np.cumsum([0] + [len(x) for x in lists]), pos]
        return tuple(out)

    def ps_needed(self, remote: int | np.ndarray, w: int, p: int):
        """PS nodes on the PS server so that ``remote`` workers' bandwidth fits (1k), >= 1 (1f)."""
        remote = np.asarray(remote)
        need = np.ceil(remote * self.worker_bw[w] / self.ps_bw[p] - 1e-9).astype(np.int64)
        out = np.maximum(1, need)
        return out if out.ndim else int(out)


@dataclass(frozen=True, eq=False)
class Schedule:
    """One placement of one job: ``workers[s]`` type-``w`` workers on server ``s`` and
    ``ps_count`` type-``p`` PS nodes on ``ps_server``, all over slots ``start..end``."""
    jid: int
    w: int
    p: int
    start: int
    end: int                    #: inclusive
    workers: np.ndarray         #: (S,) int
    ps_server: int
    ps_count: int
    cost: float = 0.0           #: priced cost when chosen (the payment if admitted)
    utility: float = 0.0
    kind: str = "centralised"   #: centralised | distributed
    extra: dict = field(default_factory=dict)

    @property
    def n_workers(self) -> int:
        return int(self.workers.sum())

    @property
    def slots(self) -> int:
        return self.end - self.start + 1

    @property
    def remote_workers(self) -> int:
        return self.n_workers - int(self.workers[self.ps_server])

    def servers(self) -> list[int]:
        return sorted(set(np.flatnonzero(self.workers).tolist()) | {self.ps_server})


class ScheduleError(ValueError):
    """A schedule breaks one of the job's or the cluster's constraints."""


def check_schedule(job, sched: Schedule, cluster: Cluster, usage: Usage | None = None) -> None:
    """Raise :class:`ScheduleError` unless ``sched`` satisfies (1a)-(1l) for ``job``
    (and fits in what ``usage`` leaves free, if given)."""
    S = cluster.n_servers
    w, p, a, e = sched.w, sched.p, sched.start, sched.end
    y = np.asarray(sched.workers)
    if y.shape != (S,) or (y < 0).any():
        raise ScheduleError("workers must be (S,) counts >= 0")
    n = int(y.sum())
    if not 1 <= n <= job.chunks:                                           # (1b)
        raise ScheduleError(f"{n} workers, job allows 1..{job.chunks}")
    if not (job.arrival <= a <= e < cluster.slots):                         # (1l)
        raise ScheduleError(f"interval {a}..{e} outside arrival {job.arrival}..T-1")
    placed = np.flatnonzero(y)
    if (a < job.arrival + job.delay[placed]).any():                         # data must be there
        raise ScheduleError("workers start before their data arrive")
    need = int(job.worker_slots(cluster.slot_s)[w, p])
    if n * (e - a + 1) < need:                                              # (1g)
        raise ScheduleError(f"{n} x {e - a + 1} worker-slots < {need} needed")
    if (y > cluster.worker_cap[:, w]).any() or sched.ps_count > cluster.ps_cap[sched.ps_server, p]:
        raise ScheduleError("more nodes than the server has")               # (1i), (1j)
    if sched.ps_count < 1:                                                  # (1f)
        raise ScheduleError("no PS while workers run")
    remote = n - int(y[sched.ps_server])
    if remote * cluster.worker_bw[w] > sched.ps_count * cluster.ps_bw[p] * (1 + 1e-9):   # (1k)
        raise ScheduleError(f"{remote} remote workers x {cluster.worker_bw[w]:.3g} bit/s > "
                            f"{sched.ps_count} PS x {cluster.ps_bw[p]:.3g} bit/s")
    if usage is not None:
        free_w = cluster.worker_cap[:, w, None] - usage.q[:, w, a:e + 1]
        free_p = cluster.ps_cap[sched.ps_server, p] - usage.h[sched.ps_server, p, a:e + 1]
        if (y[:, None] > free_w).any() or (sched.ps_count > free_p).any():
            raise ScheduleError("not enough free nodes over the interval")


class Usage:
    """q_sw(t), h_sp(t) and the schedules that make them up."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        S, W, P, T = cluster.n_servers, cluster.n_worker_types, cluster.n_ps_types, cluster.slots
        self.q = np.zeros((S, W, T), dtype=np.int64)
        self.h = np.zeros((S, P, T), dtype=np.int64)
        self.active: dict[int, Schedule] = {}
        self.version = 0                       #: bumped on every change (price caches key on it)
        self._log: list[np.ndarray] = []       #: servers changed by version i -> i + 1

    def allocate(self, job, sched: Schedule) -> None:
        check_schedule(job, sched, self.cluster, self)
        self.q[:, sched.w, sched.start:sched.end + 1] += sched.workers[:, None]
        self.h[sched.ps_server, sched.p, sched.start:sched.end + 1] += sched.ps_count
        self.active[sched.jid] = sched
        self._bump(sched)

    def release(self, jid: int, from_slot: int) -> Schedule:
        """The job finished (or stopped): free its nodes from ``from_slot`` on."""
        sched = self.active.pop(jid)
        lo = max(from_slot, sched.start)
        if lo <= sched.end:
            self.q[:, sched.w, lo:sched.end + 1] -= sched.workers[:, None]
            self.h[sched.ps_server, sched.p, lo:sched.end + 1] -= sched.ps_count
        self._bump(sched)
        return sched

    def can_move(self, jid: int, role: str, src: int, dst: int, from_slot: int) -> bool:
        """Whether one of the job's workers (``role`` "worker") or all its PS nodes ("ps") can
        move from server ``src`` to ``dst`` for ``from_slot..end``: a free node of the job's
        type on ``dst`` in every one of those slots, and (1k) still holding after the move.
        A job past its reservation holds nothing in these books: then ``dst`` needs a free
        node in ``from_slot`` (the driver's start gate keeps the hosts from oversubscription)."""
        sched = self.active[jid]
        lo = min(max(from_slot, sched.start), self.cluster.slots - 1)
        hi = max(sched.end, lo) + 1            # past the reservation: the slot ``lo`` alone
        if role == "worker":
            if sched.workers[src] < 1:
                return False
            workers = sched.workers.copy()
            workers[src] -= 1
            workers[dst] += 1
            free = self.cluster.worker_cap[dst, sched.w] - self.q[dst, sched.w, lo:hi].max()
            remote = int(workers.sum() - workers[sched.ps_server])
            return free >= 1 and self.cluster.ps_needed(remote, sched.w, sched.p) <= sched.ps_count
        if sched.ps_server != src:
            return False
        free = self.cluster.ps_cap[dst, sched.p] - self.h[dst, sched.p, lo:hi].max()
        remote = sched.n_workers - int(sched.workers[dst])
        return free >= sched.ps_count and self.cluster.ps_needed(remote, sched.w, sched.p) <= sched.ps_count

    def move(self, jid: int, role: str, src: int, dst: int, from_slot: int) -> Schedule:
        """Move one of the job's workers (or all its PS nodes) from ``src`` to ``dst`` from
        ``from_slot`` on (a node that failed is replaced there); see :meth:`can_move`."""
        if not self.can_move(jid, role, src, dst, from_slot):
            raise ScheduleError(f"job {jid}: its {role} on server {src} cannot move to server {dst}")
        sched = self.active[jid]
        lo, hi = max(from_slot, sched.start), sched.end + 1     # empty past the reservation
        if role == "worker":
            workers = sched.workers.copy()
            workers[src] -= 1
            workers[dst] += 1
            self.q[src, sched.w, lo:hi] -= 1
            self.q[dst, sched.w, lo:hi] += 1
            moved = replace(sched, workers=workers)
        else:
            self.h[src, sched.p, lo:hi] -= sched.ps_count
            self.h[dst, sched.p, lo:hi] += sched.ps_count
            moved = replace(sched, ps_server=dst)
        self.active[jid] = moved
        self._log.append(np.array(sorted({src, dst}), dtype=np.int64))    # the price caches' invalidation
        self.version += 1
        return moved

    def _bump(self, sched: Schedule) -> None:
        self._log.append(np.array(sched.servers(), dtype=np.int64))
        self.version += 1

    def changed_since(self, version: int) -> np.ndarray:
        """Servers whose usage changed after ``version`` (all of them if unknown)."""
        if not 0 <= version <= self.version:
            return np.arange(self.cluster.n_servers)
        parts = self._log[version:]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def check(self) -> None:
        """Capacity (1i), (1j) over every slot."""
        if (self.q > self.cluster.worker_cap[:, :, None]).any() or (self.h > self.cluster.ps_cap[:, :, None]).any():
            raise ScheduleError("capacity exceeded")
        if (self.q < 0).any() or (self.h < 0).any():
            raise ScheduleError("negative usage")

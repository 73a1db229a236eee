"""The online mechanism: jobs arrive one by one, are priced, admitted or refused, placed.

``run_online`` drives one method over one job stream and returns the decisions with the
welfare (sum of admitted jobs' utilities = provider revenue + users' surplus), revenue
(sum of payments) and a check of every constraint at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .cluster import Schedule, Usage
from .prices import PriceBook, PriceConfig
from .schedule import Placement, best_schedule


@dataclass(frozen=True)
class Method:
    name: str
    prices: PriceConfig = field(default_factory=PriceConfig)
    placement: Placement = field(default_factory=Placement)
    order: str = "arrival"          #: arrival | density (within one arrival slot)
    about: str = ""


@dataclass
class Decision:
    jid: int
    admitted: bool
    utility: float = 0.0
    payment: float = 0.0
    schedule: object = None
    seconds: float = 0.0


@dataclass
class Outcome:
    method: str
    decisions: list = field(default_factory=list)
    usage: Usage | None = None

    @property
    def admitted(self) -> list:
        return [d for d in self.decisions if d.admitted]

    @property
    def welfare(self) -> float:
        return float(sum(d.utility for d in self.admitted))

    @property
    def revenue(self) -> float:
        return float(sum(d.payment for d in self.admitted))

    def summary(self) -> dict:
        adm = self.admitted
        times = np.array([d.seconds for d in self.decisions]) if self.decisions else np.zeros(1)
        return {"method": self.method, "jobs": len(self.decisions), "admitted": len(adm),
                "welfare": round(self.welfare, 3), "revenue": round(self.revenue, 3),
                "surplus": round(self.welfare - self.revenue, 3),
                "distributed": sum(1 for d in adm if d.schedule.kind == "distributed"),
                "decision_ms_p50": round(1e3 * float(np.percentile(times, 50)), 3)}


def _density(job, slot_s):
    return job.utility.peak / job.min_worker_slots(slot_s)


def admit(job, cluster, usage, book, placement) -> Schedule | None:
    """One online step of the mechanism: observe the bid, price, admit iff mu > 0 and
    allocate; the admitted schedule (its cost is the payment), or None."""
    book.observe(job)
    sched = best_schedule(job, cluster, usage, book, placement)
    ok = sched is not None and sched.utility - sched.cost > 0
    book.decided_on(ok)
    if not ok:
        return None
    usage.allocate(job, sched)
    return sched


def run_online(jobs, cluster, method: Method, on_decision=None) -> Outcome:
    usage = Usage(cluster)
    book = PriceBook(cluster, method.prices)
    if method.order == "density":
        key = lambda j: (j.arrival, -_density(j, cluster.slot_s), j.jid)
    else:
        key = lambda j: (j.arrival, j.jid)
    out = Outcome(method.name, usage=usage)
    for job in sorted(jobs, key=key):
        t0 = time.perf_counter()
        sched = admit(job, cluster, usage, book, method.placement)
        ok = sched is not None
        dec = Decision(job.jid, ok, sched.utility if ok else 0.0, sched.cost if ok else 0.0,
                       sched if ok else None, time.perf_counter() - t0)
        out.decisions.append(dec)
        if on_decision:
            on_decision(dec)
    usage.check()
    return out

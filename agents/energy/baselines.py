"""Reference methods: all-local, all-offload, random, greedy by cost, the exhaustive optimum.

A method is an object with a ``name`` and ``decide(tab) -> Decision``; every decision is
passed through :func:`agents.energy.feasibility.repair` and the number of changed devices
is kept in ``Decision.repaired``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .feasibility import repair
from .model import PENALTY, Tables, all_decisions, evaluate


@dataclass(frozen=True)
class Decision:
    x: np.ndarray          #: (D,) bool, True = offload
    repaired: int = 0      #: devices whose raw decision was infeasible and changed by repair


def finish(tab: Tables, x) -> Decision:
    x, changed = repair(tab, x)
    return Decision(x, changed)


class AllLocal:
    name = "all-local"

    def decide(self, tab: Tables) -> Decision:
        return finish(tab, np.zeros(tab.inst.n, bool))


class AllOffload:
    name = "all-offload"

    def decide(self, tab: Tables) -> Decision:
        return finish(tab, np.ones(tab.inst.n, bool))


class RandomPolicy:
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def decide(self, tab: Tables) -> Decision:
        return finish(tab, self.rng.random(tab.inst.n) < 0.5)


class GreedyCost:
    """Start all-local; offload, one at a time, the device whose move lowers the (penalised)
    total cost most; stop when no single move helps."""
    name = "greedy"

    def decide(self, tab: Tables) -> Decision:
        n = tab.inst.n
        x = np.zeros(n, bool)
        best = evaluate(tab, x).penalised()[0]
        for _ in range(n):
            cand = np.repeat(x[None], n, axis=0)
            cand[np.arange(n), np.arange(n)] = True
            costs = evaluate(tab, cand).penalised()
            costs[x] = np.inf
            j = int(np.argmin(costs))
            if costs[j] >= best:
                break
            x, best = cand[j], costs[j]
        return finish(tab, x)


def optimum(tab: Tables) -> np.ndarray:
    """The exhaustive optimum over 2^D decisions (least total cost among the feasible ones;
    fewest violations first if none is feasible)."""
    xs = all_decisions(tab.inst.n)
    return xs[int(np.argmin(evaluate(tab, xs).penalised(PENALTY)))]


class Exhaustive:
    name = "optimum"
    max_devices = 16

    def decide(self, tab: Tables) -> Decision:
        if tab.inst.n > self.max_devices:
            raise ValueError(f"exhaustive search over {tab.inst.n} devices (2^{tab.inst.n}) is too slow")
        return Decision(optimum(tab), 0)

"""The trained offloading model at decision time, with the execution order of claim 2.

Each round: the network proposes an action for every pending task (masked argmax of Q);
the reward function scores each proposal (``A - marginal cost``); the ``n_exec`` tasks of
highest reward are executed (their decisions fixed, the loads updated) and the rest are
re-scored against the new state.  ``n_exec = 1`` is the text's preferred setting.  The
final vector goes through :func:`~agents.energy.feasibility.repair`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .baselines import Decision, finish
from .dqn import EnergyAgent
from .mdp import OffloadState
from .model import Tables

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "energy-dqn.pt"


class DqnPolicy:
    name = "dqn"

    def __init__(self, agent: EnergyAgent, n_exec: int = 1):
        if not isinstance(n_exec, int) or n_exec < 1:
            raise ValueError(f"n_exec must be an integer >= 1, got {n_exec!r}")
        self.agent, self.n_exec = agent, n_exec
        self.reward_a = float(agent.meta.get("reward_a", 2.0))
        self.penalty = float(agent.meta.get("penalty", 5.0))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CHECKPOINT, n_exec: int = 1) -> DqnPolicy:
        return cls(EnergyAgent.load(path), n_exec)

    def raw(self, tab: Tables) -> np.ndarray:
        """The network's decisions in claim-2 order, before any repair (N = 1: compiled,
        agents.energy.fast; the same rounds as :meth:`rounds`)."""
        state = OffloadState(tab, self.penalty)
        if self.n_exec == 1:
            from .fast import fast_raw
            return fast_raw(state, self.agent._layers)
        return self.rounds(state)

    def rounds(self, state: OffloadState) -> np.ndarray:
        """The claim-2 rounds in numpy, from ``state``."""
        while True:
            pending = state.pending
            if not len(pending):
                return state.decisions()
            obs, mask, marginal = state.features(pending)
            act = np.where(mask, self.agent.q_values(obs), -np.inf).argmax(axis=1)
            cost = marginal[np.arange(len(pending)), act]       # reward = A - cost
            if self.n_exec == 1:                 # the first of equal rewards, as the stable sort below
                best = (int(np.argmin(cost)),)
            else:
                best = np.argsort(cost, kind="stable")[:self.n_exec]
            for r in best:
                state.apply(int(pending[r]), int(act[r]))

    def decide(self, tab: Tables) -> Decision:
        return finish(tab, self.raw(tab))

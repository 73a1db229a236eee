"""The MDP as a Gymnasium env: ``sdncep/EnergyOffload-v0`` (registered on import).

One episode = one instance; one step = one device's decision, in a random order drawn at
reset (the trained policy then applies the execution order of claim 2, see
:mod:`agents.energy.policy`).  ``reset(options={"instance": inst})`` replays a given
instance.  ``info["action_mask"]`` masks actions that break C1/C2 at the current load.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .config import EnergyConfig
from .instances import draw_instance
from .mdp import OBS_DIM, OffloadState
from .model import build_tables, evaluate

ENV_ID = "sdncep/EnergyOffload-v0"


class EnergyOffloadEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, config: EnergyConfig | None = None, seed: int | None = None):
        self.cfg = config or EnergyConfig()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._seed = seed
        self.state: OffloadState | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if seed is not None else self._seed)
        self._seed = None
        inst = (options or {}).get("instance") or draw_instance(self.np_random, self.cfg.instances, self.cfg.system)
        self.tab = build_tables(inst)
        self.state = OffloadState(self.tab, self.cfg.train.penalty)
        self.order = self.np_random.permutation(inst.n)
        self.l = 0
        return self._obs()

    def _obs(self):
        obs, mask, marginal = self.state.features(self.order[self.l:self.l + 1])
        self._mask, self._marginal = mask[0], marginal[0]
        return obs[0], {"action_mask": self._mask.copy(), "device": int(self.order[self.l])}

    def action_masks(self) -> np.ndarray:
        return self._mask.copy()

    def step(self, action):
        a = int(action)
        reward = float(self.cfg.train.reward_a - self._marginal[a])
        self.state.apply(int(self.order[self.l]), a)
        self.l += 1
        if self.state.done:
            out = evaluate(self.tab, self.state.decisions())
            info = {"action_mask": np.ones(2, bool), "total_cost": float(out.total[0]),
                    "feasible": bool(out.all_feasible[0])}
            return np.zeros(OBS_DIM, np.float32), reward, True, False, info
        obs, info = self._obs()
        return obs, reward, False, False, info


def make_env(config: EnergyConfig | None = None, seed: int | None = None) -> EnergyOffloadEnv:
    return EnergyOffloadEnv(config, seed)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=f"{__name__}:make_env")


register()

"""The simulator as a Gymnasium library: the training distribution, reward and mask wrappers.

Importing this module **registers** ``sdncep/EdgeCloud-v0`` with Gymnasium (Gymnasium 1.x
has no plug-in entry points, so something must import it first)::

    import gymnasium
    import agents.gym_env                        # registers sdncep/EdgeCloud-v0
    env = gymnasium.make("sdncep/EdgeCloud-v0", config="configs/testbed_sim.yaml", seed=1)
    # or, without the import: gymnasium.make("agents.gym_env:sdncep/EdgeCloud-v0", config=...)

What ``make`` builds is :class:`TrainingDistribution`: the episodes the SDN-CEP DQN
(:func:`agents.dqn.train`) is trained on, one seeded env. Its keyword arguments are
those of :func:`make_env`: ``config`` (a YAML/JSON path read by
:func:`agents.config.load_config`, or a :class:`~agents.config.CoreConfig`; default
the built-in defaults), ``seed``, ``model``, ``two_hop``, ``profiles`` (a profiles
root, ``"synthetic"``, or a :class:`~agents.calibration.ProfileStore`), ``traces``,
``bw_range_mbps``, ``n_tasks_range`` and ``q_pool``.

Wrappers:

* :class:`LogReward`: the reward the DQN learns from, ``-log(-r / 0.1)``
  (:func:`transform_reward`, the one implementation; :mod:`agents.dqn` uses it);
* :class:`MaskInfeasible`: for agents that cannot use an action mask (SB3's DQN or
  PPO): an infeasible action is replaced by the nearest feasible one (fewest layers
  moved) and counted in ``info``, or raises :class:`InfeasibleActionError`.

Agents with mask support (sb3-contrib's ``MaskablePPO``) call ``action_masks()``,
which every env and wrapper here reaches through ``get_wrapper_attr``; the mask is
also ``info["action_mask"]``, as in :class:`~agents.sim_env.EdgeCloudEnv`.

Only numpy and gymnasium here (no torch of its own; :mod:`agents.calibration` loads
:mod:`models.zoo`, which does import torch).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from .calibration import ProfileStore
from .codec import ActionCodec
from .config import ConfigError, CoreConfig, CostConfig, SimConfig, load_config
from .sim_env import EdgeCloudEnv

ENV_ID = "sdncep/EdgeCloud-v0"

#: The DQN's training distribution (defaults of :class:`agents.dqn.Args`).
TRACES: tuple[str, ...] = ("constant", "stepped", "wifi")
BW_RANGE_MBPS: tuple[float, float] = (1.0, 100.0)
TASKS_RANGE: tuple[int, int] = (10, 200)

#: :func:`log_reward`: ``-log(max(-r, FLOOR) / SCALE)``.
LOG_SCALE, LOG_FLOOR = 0.1, 1e-4


# --------------------------------------------------------------------------- reward
def log_reward(r: float | np.ndarray):
    """``-log(max(-r, 1e-4) / 0.1)``: monotone in r, so for gamma ~ 0 the argmax is unchanged,
    while every bandwidth regime (rewards of milliseconds and of minutes) gets the same relative precision."""
    return -np.log(np.maximum(-np.asarray(r, dtype=np.float64), LOG_FLOOR) / LOG_SCALE)


def transform_reward(r: float | np.ndarray, kind: str):
    """The DQN's reward transform: ``"none"`` (r itself) or ``"log"`` (:func:`log_reward`)."""
    if kind == "none":
        return r
    if kind != "log":
        raise ValueError(f"reward transform must be none|log, got {kind!r}")
    return log_reward(r)


class LogReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reward ``-log(-r / 0.1)`` (:func:`log_reward`); the simulator's own reward stays in
    ``info["raw_reward"]`` (the DQN logs that one)."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action):
        obs, r, terminated, truncated, info = self.env.step(action)
        info["raw_reward"] = float(r)
        return obs, float(log_reward(r)), terminated, truncated, info


# --------------------------------------------------------------------------- training distribution
class TrainingDistribution(gym.Env):
    """The DQN's training episodes as one seeded env.

    One :class:`~agents.sim_env.EdgeCloudEnv` per bandwidth trace in ``traces``, all
    on ``sim`` with ``bw_range_mbps`` (the episode's mean WAN rate is drawn log-uniformly
    in it) and ``n_tasks_range`` (the episode's task count is drawn uniformly in it);
    ``None`` keeps the value ``sim`` has. Each :meth:`reset` picks one of them at
    random, then resets it with a seed drawn after it, both from this env's
    ``np_random``: ``reset(seed=s)`` makes the episodes from then on reproducible.
    :func:`agents.dqn.train` shares its own generator with the env (``env.np_random = rng``),
    which gives the same episodes as before this class existed.

    Observation and action spaces are the sub-envs' (equal for every trace).
    ``info`` is the sub-env's plus ``trace`` and ``bw_mean_mbps`` of the episode.
    """

    metadata = {"render_modes": []}

    def __init__(self, sim: SimConfig | None = None, cost: CostConfig | None = None,
                 store: ProfileStore | None = None, q_pool: np.ndarray | None = None, *,
                 traces: Sequence[str] = TRACES,
                 bw_range_mbps: tuple[float, float] | None = BW_RANGE_MBPS,
                 n_tasks_range: tuple[int, int] | None = TASKS_RANGE,
                 seed: int | None = None):
        super().__init__()
        sim = sim or SimConfig()
        traces = [traces] if isinstance(traces, str) else list(traces)
        if not traces:
            raise ConfigError("TrainingDistribution needs at least one bandwidth trace")
        kw: dict[str, Any] = {}
        if bw_range_mbps is not None:
            kw["bw_range_mbps"] = tuple(bw_range_mbps)
        if n_tasks_range is not None:
            kw["n_tasks_range"] = tuple(n_tasks_range)
        self.cost = cost or CostConfig()
        self.store = store or ProfileStore()
        self.envs = [EdgeCloudEnv(sim.replace(bw_trace=t, **kw), self.cost, self.store, q_pool)
                     for t in traces]
        self.traces = tuple(traces)
        self._env = self.envs[0]
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space
        if seed is not None:
            from gymnasium.utils import seeding
            self._np_random, self._np_random_seed = seeding.np_random(seed)

    # ------------------------------------------------------------- the episode's env
    @property
    def current(self):
        """The :class:`~agents.sim_env.EdgeCloudEnv` of the current episode."""
        return self._env

    @property
    def sim(self) -> SimConfig:
        return self._env.sim

    @property
    def model(self) -> str:
        return self._env.model

    @property
    def m(self) -> int:
        return self._env.m

    @property
    def codec(self) -> ActionCodec:
        return self._env.codec

    @property
    def edge_names(self) -> tuple[str, ...]:
        return self._env.edge_names

    @property
    def bw_mean_mbps(self) -> float:
        return self._env.bw_mean_mbps

    @property
    def stats(self) -> dict:
        return self._env.stats

    @property
    def task_q(self) -> float:
        return self._env.task_q

    def view(self):
        return self._env.view()

    def slot_names(self) -> list[str]:
        return self._env.slot_names()

    def action_masks(self) -> np.ndarray:
        return self._env.action_masks()

    # ------------------------------------------------------------- gym API
    def _info(self, info: dict) -> dict:
        info["trace"] = self._env.sim.bw_trace
        info["bw_mean_mbps"] = self._env.bw_mean_mbps
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._env = self.envs[int(rng.integers(len(self.envs)))]
        obs, info = self._env.reset(seed=int(rng.integers(2 ** 31)))
        return obs, self._info(info)

    def step(self, action):
        obs, r, terminated, truncated, info = self._env.step(action)
        return obs, r, terminated, truncated, self._info(info)

    def step_plan(self, plan):
        obs, r, terminated, truncated, info = self._env.step_plan(plan)
        return obs, r, terminated, truncated, self._info(info)


# --------------------------------------------------------------------------- infeasible actions
class InfeasibleActionError(ValueError):
    """:class:`MaskInfeasible` (``on_infeasible="raise"``) was given an infeasible action."""


def placements(codec: ActionCodec) -> np.ndarray:
    """``P[a, l]`` = where action ``a`` runs layer ``l + 1``: edge slot 0..n-1, or n for the cloud."""
    P = np.full((codec.n, codec.m), codec.n_edge, dtype=np.int16)
    for a in range(1, codec.n):
        p, j, q, k = codec.decode(a)
        P[a, :p] = j
        if q is not None:
            P[a, p:q] = k
    return P


class MaskInfeasible(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """For agents that cannot take an action mask (SB3's ``DQN``, ``PPO``).

    Without it, :meth:`EdgeCloudEnv.step` runs an infeasible action (one the mask
    forbids: a node down, full, or without memory for the segment) as the all-cloud
    plan, flagged only by ``info["invalid_action"]``. Here, with
    ``on_infeasible="nearest"`` (default), the action is replaced by the **nearest
    feasible action**: the one that places the fewest of the model's layers on another
    node than the asked-for action does (every action says, for each layer, edge slot
    or cloud: :func:`placements`); ties go to the lowest action index (so to all-cloud,
    index 0, when it is as near as anything else, as when the asked-for node is down).
    E.g. a cut too large for a node's memory becomes the largest cut that fits there.
    ``info`` then has ``requested_action`` (what the agent asked), ``action`` (what
    ran), ``remapped`` (True/False) and ``remapped_in_episode`` (count so far this
    episode); :attr:`remapped` / :attr:`steps` count over the wrapper's lifetime.
    The agent is still trained on the reward of the action that ran.

    With ``on_infeasible="raise"`` an infeasible action raises
    :class:`InfeasibleActionError` (for evaluating an agent that must never choose one).
    """

    def __init__(self, env: gym.Env, on_infeasible: str = "nearest"):
        gym.utils.RecordConstructorArgs.__init__(self, on_infeasible=on_infeasible)
        gym.Wrapper.__init__(self, env)
        if on_infeasible not in ("nearest", "raise"):
            raise ValueError(f"on_infeasible must be nearest|raise, got {on_infeasible!r}")
        self.on_infeasible = on_infeasible
        self._placements = placements(env.get_wrapper_attr("codec"))
        self.remapped = 0
        self.steps = 0
        self._episode = 0

    def nearest_feasible(self, action: int, mask: np.ndarray) -> int:
        """The feasible action nearest ``action`` (the rule of the class docstring)."""
        P = self._placements
        d = (P != P[int(action)]).sum(axis=1)
        d = np.where(np.asarray(mask, dtype=bool), d, np.iinfo(np.int64).max)
        return int(np.argmin(d))     # first minimum: the lowest index

    def reset(self, **kwargs):
        self._episode = 0
        obs, info = self.env.reset(**kwargs)
        info["remapped_in_episode"] = 0
        return obs, info

    def step(self, action):
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        mask = self.env.get_wrapper_attr("action_masks")()
        ran = a
        if not mask[a]:
            if self.on_infeasible == "raise":
                raise InfeasibleActionError(f"action {a} ({self._describe(a)}) is infeasible here; feasible: "
                                            f"{np.flatnonzero(mask).tolist()}")
            ran = self.nearest_feasible(a, mask)
            self.remapped += 1
            self._episode += 1
        self.steps += 1
        obs, r, terminated, truncated, info = self.env.step(ran)
        info.update(requested_action=a, action=ran, remapped=ran != a, remapped_in_episode=self._episode)
        return obs, r, terminated, truncated, info

    def _describe(self, a: int) -> str:
        hops = self.env.get_wrapper_attr("codec").hops(a, self.env.get_wrapper_attr("slot_names")())
        return " -> ".join(f"{n}[{s}:{e}]" for n, s, e in hops)


# --------------------------------------------------------------------------- gymnasium.make
def profile_store(profiles) -> ProfileStore:
    """A ProfileStore from a root path, "synthetic" (the built-in profiles only), None (the repo's) or itself."""
    if isinstance(profiles, ProfileStore):
        return profiles
    if profiles == "synthetic":
        return ProfileStore(None)
    return ProfileStore() if profiles is None else ProfileStore(profiles)


def make_env(config: str | Path | CoreConfig | None = None, *, seed: int | None = None,
             model: str | None = None, two_hop: bool | None = None,
             profiles: str | Path | ProfileStore | None = None,
             traces: Sequence[str] = TRACES,
             bw_range_mbps: tuple[float, float] | None = BW_RANGE_MBPS,
             n_tasks_range: tuple[int, int] | None = TASKS_RANGE,
             q_pool: np.ndarray | None = None) -> TrainingDistribution:
    """The entry point of ``sdncep/EdgeCloud-v0``: a :class:`TrainingDistribution` on
    ``config``'s ``sim`` and ``cost`` sections (``model``/``two_hop`` override the
    config's), as ``scripts/train_agent.py --config`` with default flags trains on."""
    cfg = config if isinstance(config, CoreConfig) else (load_config(config) if config is not None
                                                          else CoreConfig())
    sim = cfg.sim
    over = {k: v for k, v in (("model", model), ("two_hop", two_hop)) if v is not None}
    if over:
        sim = sim.replace(**over)
    return TrainingDistribution(sim, cfg.cost, profile_store(profiles), q_pool, traces=traces,
                                bw_range_mbps=bw_range_mbps, n_tasks_range=n_tasks_range, seed=seed)


def register() -> None:
    """Register ``sdncep/EdgeCloud-v0`` (done on import; again is a no-op)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=f"{__name__}:make_env")


register()

"""Gymnasium simulator of the SDN cloud-edge world, calibrated from profiles.

One episode is one batch T of ``k`` tasks (images) arriving as a Poisson process of
rate ``k / window_s``, each from one of ``sim.devices`` end devices.  Each step
decides one task: the action (``ActionCodec``) is a partition point x edge node; the
plan is costed by :mod:`agents.cost` in the world model the live planner uses too
(:mod:`agents.world`: nodes' reserved intervals, each device's uplink, the WAN's
fair-shared lanes), and its reservations are committed, so later tasks queue behind
it.  The WAN rate B follows a trace (constant, stepped or a WiFi-like random walk).
With ``sim.edge_down_prob`` some edge nodes are down for an episode: their slots
are empty and masked, as a node that stops sending heartbeats is live.
``info['action_mask']`` / :meth:`action_masks` mark the feasible actions (C1-C3,
plus the complexity gate if ``use_gate``).

Baselines and the Oracle act through :meth:`view` + :meth:`step_plan`, which takes any
:class:`~agents.cost.Plan` (e.g. two-hop plans outside the agent's action space).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .calibration import ProfileStore
from .codec import ActionCodec
from .config import CostConfig, SimConfig
from .cost import NetView, Plan, check_plan, cloud_only, priced
from .decision import Snapshot, view_from_snapshot
from .features import OBS_HIGH, OBS_LOW, action_mask, edge_slots, obs_dim, observe
from .simulator import Simulator
from .traces import WAN_LINK, LinkRate, is_trace_file, load_trace, wifi_rates

MBPS = 1e6


class BandwidthTrace:
    """B(t) in bit/s; piecewise constant on a grid of ``dt`` seconds.

    ``kind``: constant | stepped | wifi (agents.traces' generator, shared with the
    testbed) | a CSV trace file (agents.traces format; its ``link`` rows, scaled so
    their mean is ``mean_mbps`` when ``scale`` is set, else as recorded).
    """

    def __init__(self, kind: str, mean_mbps: float, horizon_s: float, rng: np.random.Generator,
                 dt: float = 0.5, link: str = WAN_LINK, scale: bool = False):
        n = int(np.ceil(horizon_s / dt)) + 2
        if kind == "constant":
            v = np.full(n, mean_mbps)
        elif kind == "stepped":
            # a new level every ~horizon/5, drawn within x/÷ 4 of the mean
            step = max(1, n // 5)
            lv = mean_mbps * 2.0 ** rng.uniform(-2, 2, size=n // step + 1)
            v = np.repeat(lv, step)[:n]
        elif kind == "wifi":
            v = wifi_rates(mean_mbps, n, rng)
        elif is_trace_file(kind):
            rate = LinkRate(load_trace(kind), link)
            factor = mean_mbps * MBPS / rate.mean_bps if scale else 1.0
            v = np.array([rate.at(i * dt) * factor for i in range(n)]) / MBPS
        else:
            raise ValueError(f"unknown bandwidth trace {kind!r}")
        self.dt = dt
        self.values_bps = np.clip(v, 0.05, 1e4) * MBPS

    def at(self, t: float) -> float:
        i = min(int(max(t, 0.0) / self.dt), len(self.values_bps) - 1)
        return float(self.values_bps[i])


class EdgeCloudEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, sim: SimConfig | None = None, cost: CostConfig | None = None,
                 store: ProfileStore | None = None, q_pool: np.ndarray | None = None):
        super().__init__()
        self.sim = sim or SimConfig()
        self.cost = cost or CostConfig()
        self.store = store or ProfileStore()
        self.model = self.sim.model
        self.m = self.store.reference(self.model).m
        self.edge_names = tuple(e.name for e in self.sim.edges)
        self.codec = ActionCodec(self.m, len(self.edge_names), self.sim.two_hop)
        self.q_pool = (np.asarray(q_pool, dtype=float) if q_pool is not None
                       else None)
        self.action_space = gym.spaces.Discrete(self.codec.n)
        d = obs_dim(self.m, len(self.edge_names))
        self.observation_space = gym.spaces.Box(OBS_LOW, OBS_HIGH, shape=(d,), dtype=np.float32)
        self._episode_setup(np.random.default_rng(0))

    # ----------------------------------------------------------------- episode state
    def _episode_setup(self, rng: np.random.Generator) -> None:
        s = self.sim
        self.k = (int(rng.integers(s.n_tasks_range[0], s.n_tasks_range[1] + 1))
                  if s.n_tasks_range else s.n_tasks)
        self.bw_mean_mbps = (float(np.exp(rng.uniform(np.log(s.bw_range_mbps[0]), np.log(s.bw_range_mbps[1]))))
                             if s.bw_range_mbps else s.bw_mbps)
        rate = self.k / s.window_s
        self.arrivals = np.cumsum(rng.exponential(1.0 / rate, size=self.k))
        self.devices = [f"d{i + 1}" for i in rng.integers(0, s.devices, size=self.k)]
        self.trace = BandwidthTrace(s.bw_trace, self.bw_mean_mbps, float(self.arrivals[-1]) + 5.0, rng,
                                    link=s.trace_link, scale=s.bw_range_mbps is not None)
        if self.q_pool is not None and len(self.q_pool):
            self.q = self.q_pool[rng.integers(0, len(self.q_pool), size=self.k)]
        else:
            self.q = rng.beta(2.0, 5.0, size=self.k)   # synthetic complexity scores
        up = [n for n in self.edge_names if rng.random() >= s.edge_down_prob] if s.edge_down_prob else None
        if up == []:   # keep one edge node up
            up = [self.edge_names[int(rng.integers(len(self.edge_names)))]]
        self.world = Simulator(s, self.store, self.cost, up=up)
        self.i = 0
        self.now = float(self.arrivals[0])
        self.stats = {"latency": [], "cost": [], "reward": [], "gated": 0}
        self._cache_key: int | None = None

    def _current(self) -> tuple[Snapshot, NetView, np.ndarray]:
        """The current task's snapshot, view and mask (computed once per task)."""
        if self._cache_key != self.i:
            device = self.devices[min(self.i, self.k - 1)]
            snapshot = self.world.snapshot(device, self.now, self.trace.at(self.now), self.model)
            view = view_from_snapshot(snapshot, self.model, self.store)
            self._slots = edge_slots(view, self.edge_names)
            mask = action_mask(view, self.model, self.codec, self.store, self.cost, self.gated, self._slots)
            self._cached = (snapshot, view, mask)
            self._cache_key = self.i
        return self._cached

    def view(self) -> NetView:
        """The cost model's view of the world at the current task's arrival."""
        return self._current()[1]

    @property
    def task_q(self) -> float:
        return float(self.q[min(self.i, self.k - 1)])

    @property
    def device(self) -> str:
        return self.devices[min(self.i, self.k - 1)]

    @property
    def gated(self) -> bool:
        return bool(self.sim.use_gate and self.task_q >= self.sim.delta)

    def action_masks(self) -> np.ndarray:
        return self._current()[2]

    def slot_names(self) -> list[str]:
        """The codec's edge names for the current task (empty slots get placeholders)."""
        from .features import slot_names
        self._current()
        return slot_names(self._slots)

    def _obs(self) -> np.ndarray:
        self._current()
        return observe(self.view(), self.model, self.store, self._slots)

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.action_masks(), "q": self.task_q, "gated": self.gated,
                "bandwidth_bps": self.trace.at(self.now), "device": self.device}

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episode_setup(self.np_random)
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        plan = self.codec.plan(a, self.model, self.slot_names())
        invalid = not self.action_masks()[a]
        if invalid:   # infeasible: fall back to the always-feasible all-cloud plan
            plan = cloud_only(self.model, self.m)
        return self._apply(plan, {"invalid_action": invalid, "action": a})

    def step_plan(self, plan: Plan):
        """Step with an explicit plan (baselines, Oracle); infeasible -> all-cloud."""
        invalid = bool(check_plan(plan, self.view(), self.store, self.cost))
        if invalid:
            plan = cloud_only(self.model, self.m)
        return self._apply(plan, {"invalid_action": invalid, "action": plan.action})

    def _apply(self, plan: Plan, info: dict[str, Any]):
        snapshot, view, _ = self._current()
        plan = priced(plan, view, self.store, self.cost)
        self.world.commit(plan, snapshot, self.device, self.now)
        latency, cost, reward = plan.latency.total_s, plan.cost.total, float(plan.reward)
        self.stats["latency"].append(latency)
        self.stats["cost"].append(cost)
        self.stats["reward"].append(reward)
        self.stats["gated"] += int(self.gated)
        info.update({"latency_s": latency, "cost": cost, "plan": plan.hops, "breakdown": plan.latency})
        self.i += 1
        terminated = self.i >= self.k
        if not terminated:
            self.now = float(self.arrivals[self.i])
        obs = self._obs()
        info.update(self._info())
        return obs, reward, terminated, False, info

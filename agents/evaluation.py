"""Run any policy through the simulator with common random numbers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import ProfileStore
from .config import CostConfig, SimConfig
from .decision import DecisionContext
from .sim_env import EdgeCloudEnv


@dataclass(frozen=True)
class EpisodeResult:
    mean_latency_s: float
    mean_cost: float
    mean_reward: float
    p95_latency_s: float
    gated: int
    tasks: int


def run_episode(policy, sim: SimConfig, cost: CostConfig, store: ProfileStore, seed: int,
                q_pool: np.ndarray | None = None) -> EpisodeResult:
    env = EdgeCloudEnv(sim, cost, store, q_pool)
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        ctx = DecisionContext(env.view(), env.model, store, cost, env.task_q, obs, info["action_mask"])
        plan = policy.decide(ctx)
        obs, _, done, _, info = env.step_plan(plan)
    s = env.stats
    lat = np.asarray(s["latency"])
    return EpisodeResult(float(lat.mean()), float(np.mean(s["cost"])), float(np.mean(s["reward"])),
                         float(np.percentile(lat, 95)), int(s["gated"]), len(lat))


def run_cell(policy, sim: SimConfig, cost: CostConfig, store: ProfileStore, seeds,
             q_pool: np.ndarray | None = None) -> dict[str, float]:
    rs = [run_episode(policy, sim, cost, store, s, q_pool) for s in seeds]
    return {"latency_s": float(np.mean([r.mean_latency_s for r in rs])),
            "cost": float(np.mean([r.mean_cost for r in rs])),
            "reward": float(np.mean([r.mean_reward for r in rs])),
            "p95_latency_s": float(np.mean([r.p95_latency_s for r in rs])),
            "gated_frac": float(np.sum([r.gated for r in rs]) / np.sum([r.tasks for r in rs]))}


def episode_tasks(policy, sim: SimConfig, cost: CostConfig, store: ProfileStore, seed: int,
                  q_pool: np.ndarray | None = None) -> list[dict]:
    """One episode, one row per task: what the policy planned and what it cost.

    ``infeasible`` marks a plan the simulator replaced by the all-cloud one
    (EdgeCloudEnv.step_plan), so a policy's infeasible choices are counted, not hidden.
    """
    env = EdgeCloudEnv(sim, cost, store, q_pool)
    obs, info = env.reset(seed=seed)
    rows, done = [], False
    while not done:
        ctx = DecisionContext(env.view(), env.model, store, cost, env.task_q, obs, info["action_mask"])
        arrival, device = env.now, env.device
        plan = policy.decide(ctx)
        obs, reward, done, _, info = env.step_plan(plan)
        rows.append({"task": len(rows), "device": device, "arrival_s": arrival, "latency_s": info["latency_s"],
                     "cost": info["cost"], "reward": float(reward), "infeasible": info["invalid_action"],
                     "hops": " ".join(f"{node}:{start}-{end}" for node, start, end in info["plan"])})
    return rows

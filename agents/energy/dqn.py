"""DQN training of the offloading model, reusing :mod:`agents.dqn` (QNetwork, ReplayBuffer,
masked_argmax, the Agent checkpoint format).

As in the text: an online network and a target network of the same shape, a replay
memory, and the text's exploration: with probability beta the network's action, with
1 - beta a random one, beta low at first and raised linearly.  Each episode starts from
the initial state of a freshly drawn instance; each step's (state, action, next state,
reward) is a "training sample group" stored in the replay memory.  TD target
``r + gamma max_{a' feasible} Q_target(s', a')``, MSE loss, Adam.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict

import numpy as np
import torch

from ..dqn import Agent, QNetwork, ReplayBuffer, masked_argmax, numpy_layers
from .config import EnergyConfig
from .env import EnergyOffloadEnv
from .mdp import OBS_DIM


class EnergyAgent(Agent):
    """:class:`agents.dqn.Agent` (numpy forward pass, ``save``/``load`` with
    ``weights_only=True``) without the partition-action codec: two actions, local/offload."""

    def __init__(self, q: QNetwork, meta: dict):
        self.q = q.eval()
        self.meta = meta
        self._layers = numpy_layers(q)


def beta_at(episode: int, cfg: EnergyConfig) -> float:
    t = cfg.train
    frac = min(1.0, episode / max(1.0, t.beta_fraction * t.episodes))
    return t.beta_start + frac * (t.beta_end - t.beta_start)


def train(cfg: EnergyConfig = EnergyConfig(), progress=None, log_every: int = 200) -> tuple[EnergyAgent, list[dict]]:
    """Train; returns the agent and one log row per ``log_every`` episodes.
    ``progress(done, total)`` is called every episode if given."""
    t = cfg.train
    torch.set_num_threads(t.torch_threads)
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    env = EnergyOffloadEnv(cfg, seed=t.seed)
    q = QNetwork(OBS_DIM, 2, t.hidden)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=t.learning_rate)
    buf = ReplayBuffer(t.buffer_size, OBS_DIM, 2, rng)
    steps, rows, losses, returns = 0, [], [], []
    start = time.perf_counter()
    for ep in range(t.episodes):
        obs, info = env.reset()
        beta, ret, done = beta_at(ep, cfg), 0.0, False
        while not done:
            mask = info["action_mask"]
            if rng.random() < beta:
                with torch.no_grad():
                    a = int(masked_argmax(q(torch.as_tensor(obs)), torch.as_tensor(mask)))
            else:
                a = int(rng.choice(np.flatnonzero(mask)))
            nobs, r, done, _, info = env.step(a)
            buf.add(obs, nobs, a, r, float(done), info["action_mask"])
            obs, ret, steps = nobs, ret + r, steps + 1
            if steps >= t.learning_starts and buf.n >= t.batch_size:
                o, no, act, rew, d, nm = buf.sample(t.batch_size)
                with torch.no_grad():
                    nq = torch.where(nm, target(no), torch.full((len(no), 2), -1e9)).max(dim=1).values
                    y = rew + t.gamma * (1.0 - d) * nq
                pred = q(o).gather(1, act[:, None]).squeeze(1)
                loss = torch.nn.functional.mse_loss(pred, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            if steps % t.target_every == 0:
                target.load_state_dict(q.state_dict())
        returns.append(info["total_cost"])
        if progress:
            progress(ep + 1, t.episodes)
        if (ep + 1) % log_every == 0 or ep + 1 == t.episodes:
            rows.append({"episode": ep + 1, "steps": steps, "beta": round(beta, 4),
                         "td_loss": float(np.mean(losses[-500:])) if losses else float("nan"),
                         "mean_cost": float(np.mean(returns[-log_every:])),
                         "seconds": round(time.perf_counter() - start, 2)})
    meta = {"kind": "energy-dqn", "obs_dim": OBS_DIM, "n_actions": 2, "hidden": t.hidden,
            "reward_a": t.reward_a, "penalty": t.penalty, "config": _jsonable(asdict(cfg)),
            "trained_episodes": t.episodes, "train_seconds": round(time.perf_counter() - start, 1)}
    return EnergyAgent(q, meta), rows


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v

"""DQN for adaptive partition + offloading (cleanrl ``dqn.py`` style, one file).

Evaluation network Q(s, a; theta) and target network Q(s', a'; theta'), a replay
buffer, a linear epsilon schedule and action masking.  Target (3):
``Q_t = r + gamma * max_{a' feasible} Q(s', a'; theta')``; loss (4): mean squared
error.  The paper's settings are the defaults (lr 0.01, gamma 0.09, replay 500,
batch 64, delta 0.6).  The training episodes are
:class:`agents.gym_env.TrainingDistribution` in :class:`agents.gym_env.LogReward`
(:func:`make_train_env`): the env that ``gymnasium.make("sdncep/EdgeCloud-v0")`` gives
other learners.

Training is a script-time activity (``scripts/train_agent.py``); the live controller
only loads a checkpoint into :class:`Agent` and calls :meth:`Agent.act`, a single
masked forward pass.  Checkpoints are ``torch.save(state_dict)`` + a JSON sidecar of
metadata, loaded with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

from .calibration import ProfileStore
from .codec import ActionCodec
from .config import CostConfig, SimConfig, check_delta
from .cost import Plan, best_plan, cloud_only
from .decision import DecisionContext, DecisionError
from .features import action_mask, edge_slots, observe, slot_names
from .gym_env import BW_RANGE_MBPS, TASKS_RANGE, TRACES, TrainingDistribution, transform_reward  # noqa: F401


@dataclass
class Args:
    exp_name: str = "sdn_cep_dqn"
    """name of this run (used for file names)"""
    seed: int = 1
    """seed of random, numpy, torch and the env"""
    torch_threads: int = 1
    """torch.set_num_threads; the machine is shared"""
    model: str = "alexnet"
    """DNN model whose partition is learned"""
    total_episodes: int = 600
    """training episodes (one episode = one batch T of tasks)"""
    learning_rate: float = 0.01
    """Adam learning rate (paper: 0.01)"""
    gamma: float = 0.09
    """discount factor (paper: 0.09)"""
    buffer_size: int = 500
    """replay memory size (paper: 500)"""
    batch_size: int = 64
    """minibatch size (paper: 64)"""
    delta: float = 0.6
    """complexity threshold: q(x) >= delta -> cloud (paper: 0.6)"""
    use_gate: bool = False
    """apply the complexity gate during training (tasks with q >= delta forced to the cloud)"""
    hidden: int = 128
    """width of the two hidden layers"""
    start_e: float = 1.0
    """initial exploration epsilon"""
    end_e: float = 0.02
    """final exploration epsilon"""
    exploration_fraction: float = 0.4
    """fraction of the episodes over which epsilon decays linearly"""
    learning_starts: int = 500
    """environment steps before learning starts"""
    train_frequency: int = 1
    """gradient steps happen every this many env steps"""
    target_network_frequency: int = 200
    """env steps between copies of the evaluation network into the target network"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 10% of its value over the episodes"""
    reward_transform: str = "log"
    """'none' (train on r) or 'log' (train on -log(-r / 0.1)); for gamma ~ 0 the argmax is unchanged
    while every bandwidth regime gets the same relative precision"""
    bw_traces: str = ",".join(TRACES)
    """bandwidth traces drawn per episode (comma separated)"""
    bw_min_mbps: float = BW_RANGE_MBPS[0]
    """lowest WAN rate drawn per episode"""
    bw_max_mbps: float = BW_RANGE_MBPS[1]
    """highest WAN rate drawn per episode"""
    tasks_min: int = TASKS_RANGE[0]
    """fewest tasks per episode"""
    tasks_max: int = TASKS_RANGE[1]
    """most tasks per episode"""
    two_hop: bool = False
    """include two-edge-node cuts in the action space"""
    out_dir: str = "results/agent"
    """checkpoint, metadata and CSV log directory"""
    progress: bool = True
    """show a tqdm progress bar"""

    def __post_init__(self) -> None:
        check_delta(self.delta, "delta")
        if self.learning_rate <= 0 or not 0 <= self.gamma < 1:
            raise ValueError("need learning_rate > 0 and 0 <= gamma < 1")
        if self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size {self.buffer_size} < batch_size {self.batch_size}")
        if self.reward_transform not in ("none", "log"):
            raise ValueError(f"reward_transform must be none|log, got {self.reward_transform!r}")
        if self.bw_min_mbps <= 0 or self.bw_max_mbps < self.bw_min_mbps:
            raise ValueError("need 0 < bw_min_mbps <= bw_max_mbps (bandwidth must be positive)")


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n_actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.bool(), q, torch.full_like(q, -1e9)).argmax(dim=-1)


def numpy_layers(q: QNetwork) -> list:
    """The (weight, bias) of each linear layer as numpy arrays, for the numpy forward pass."""
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
            for m in q.network if isinstance(m, nn.Linear)]


class Agent:
    """Inference-only wrapper: ``act(obs, mask) -> action`` (one masked forward pass).

    The forward pass runs in numpy on weights copied from the torch module once (for a
    net this small that avoids most of torch's per-call overhead); :meth:`q_values`
    gives the same numbers as ``self.q(obs)`` (unit-tested).
    """

    def __init__(self, q: QNetwork, meta: dict[str, Any]):
        self.q = q.eval()
        self.meta = meta
        self.codec = ActionCodec(meta["m"], meta["n_edge"], meta.get("two_hop", False))
        # the edge slots it was trained for; older checkpoints name none
        self.edge_names = tuple(meta.get("edge_names") or (f"es{i + 1}" for i in range(meta["n_edge"])))
        self._layers = numpy_layers(q)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=np.float32)
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = h @ w + b
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h

    def act(self, obs: np.ndarray, mask: np.ndarray | None = None) -> int:
        return self.shortlist(obs, mask, 1)[0]

    def shortlist(self, obs: np.ndarray, mask: np.ndarray | None, k: int) -> list[int]:
        """The ``k`` allowed actions of highest Q, best first."""
        q = self.q_values(obs)
        if mask is not None:
            q = np.where(np.asarray(mask, dtype=bool), q, -np.inf)
        order = np.argsort(-q, kind="stable")[:k]
        return [int(a) for a in order if np.isfinite(q[a])] or [int(order[0])]

    def save(self, directory: str | Path, stem: str = "agent") -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.q.state_dict(), d / f"{stem}.pt")
        (d / f"{stem}.json").write_text(json.dumps(self.meta, indent=1))
        return d / f"{stem}.pt"

    @classmethod
    def load(cls, path: str | Path) -> "Agent":
        p = Path(path)
        meta = json.loads(p.with_suffix(".json").read_text())
        q = QNetwork(meta["obs_dim"], meta["n_actions"], meta["hidden"])
        q.load_state_dict(torch.load(p, weights_only=True))
        return cls(q, meta)


@dataclass
class SdnCepPolicy:
    """SDN-CEP: complexity gate (formula (1)) then the DQN's (p, ES_j) choice.

    With ``top_k`` > 1 the DQN shortlists its ``top_k`` best actions and the cost
    model, fed with the live view, picks among them: the network's Q-values are an
    approximation learned in the simulator, and a few cost evaluations (microseconds
    each) catch its near-misses. ``top_k`` = 1 is the DQN alone.
    """
    agent: Agent
    delta: float = 0.6
    use_gate: bool = True
    predictor: Any = None
    name: str = "sdn-cep"
    top_k: int = 1

    def __post_init__(self) -> None:
        check_delta(self.delta)
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k!r}")

    @classmethod
    def load(cls, agent_path: str | Path, predictor_path: str | Path | None = None,
             delta: float = 0.6, use_gate: bool = True, top_k: int = 1,
             name: str = "sdn-cep") -> "SdnCepPolicy":
        """What the live controller does at start-up: load checkpoint (+ predictor)."""
        pred = None
        if predictor_path is not None:
            from .complexity import ComplexityPredictor
            pred = ComplexityPredictor.load(predictor_path)
        return cls(Agent.load(agent_path), delta, use_gate, pred, name, top_k)

    def decide(self, ctx: DecisionContext) -> Plan:
        view = ctx.view
        m = ctx.store.reference(ctx.model).m
        if self.use_gate and ctx.q is not None and ctx.q >= self.delta:
            return cloud_only(ctx.model, m, view.cloud.name)        # f0: cloud
        codec = self.agent.codec
        if codec.m != m:
            raise DecisionError(f"{self.name}: agent trained for {self.agent.meta['model']} (m={codec.m}), "
                                f"asked to plan {ctx.model} (m={m})")
        slots = edge_slots(view, self.agent.edge_names)   # missing or down nodes: empty slots
        obs = ctx.obs if ctx.obs is not None else observe(view, ctx.model, ctx.store, slots)
        mask = ctx.mask if ctx.mask is not None and len(ctx.mask) == codec.n else \
            action_mask(view, ctx.model, codec, ctx.store, ctx.cost, slots=slots)
        names = slot_names(slots)
        plans = [codec.plan(a, ctx.model, names, view.cloud.name)     # f1: edge/collaborative
                 for a in self.agent.shortlist(obs, mask, self.top_k)]
        return plans[0] if len(plans) == 1 else best_plan(plans, view, ctx.store, ctx.cost)


class NoAgentForModel(DecisionError):
    """SDN-CEP was asked to plan a model it has no trained agent for."""


@dataclass
class PerModelPolicy:
    """SDN-CEP over several DNN models: an agent's actions are the cut points of the
    one model it was trained for, so each model gets its own agent."""
    policies: Mapping[str, SdnCepPolicy]
    name: str = "sdn-cep"

    @classmethod
    def load(cls, agent_paths, predictor_path=None, delta: float = 0.6, use_gate: bool = True,
             top_k: int = 1) -> "PerModelPolicy":
        policies = {}
        for path in agent_paths:
            policy = SdnCepPolicy.load(path, predictor_path, delta, use_gate, top_k)
            model = policy.agent.meta["model"]
            if model in policies:
                raise ValueError(f"two agent checkpoints for model {model!r} (the second is {path})")
            policies[model] = policy
        if not policies:
            raise ValueError("no agent checkpoint given")
        return cls(policies)

    def renamed(self, name: str, top_k: int) -> "PerModelPolicy":
        """The same loaded agents under another name and shortlist length."""
        return PerModelPolicy({m: replace(p, top_k=top_k, name=name) for m, p in self.policies.items()}, name)

    def supports(self, model: str) -> bool:
        return model in self.policies

    def decide(self, ctx: DecisionContext) -> Plan:
        policy = self.policies.get(ctx.model)
        if policy is None:
            raise NoAgentForModel(f"{self.name} has no agent trained for model {ctx.model!r} (trained: "
                                  f"{', '.join(sorted(self.policies))}); train one with scripts/train_agent.py "
                                  f"--model {ctx.model} and add it to agent_checkpoint")
        return policy.decide(ctx)


class ReplayBuffer:
    def __init__(self, size: int, obs_dim: int, n_actions: int, rng: np.random.Generator):
        self.size, self.rng, self.n, self.i = size, rng, 0, 0
        self.obs = np.zeros((size, obs_dim), np.float32)
        self.next_obs = np.zeros((size, obs_dim), np.float32)
        self.act = np.zeros(size, np.int64)
        self.rew = np.zeros(size, np.float32)
        self.done = np.zeros(size, np.float32)
        self.next_mask = np.zeros((size, n_actions), np.bool_)

    def add(self, o, no, a, r, d, nm) -> None:
        i = self.i
        self.obs[i], self.next_obs[i], self.act[i], self.rew[i], self.done[i], self.next_mask[i] = o, no, a, r, d, nm
        self.i = (i + 1) % self.size
        self.n = min(self.n + 1, self.size)

    def sample(self, b: int):
        idx = self.rng.integers(0, self.n, size=b)
        t = torch.as_tensor
        return (t(self.obs[idx]), t(self.next_obs[idx]), t(self.act[idx]), t(self.rew[idx]),
                t(self.done[idx]), t(self.next_mask[idx]))


def make_train_env(args: Args, cost: CostConfig, store: ProfileStore,
                   q_pool: np.ndarray | None = None, base: SimConfig | None = None):
    """The training distribution of ``args`` on ``base`` (:class:`agents.gym_env.TrainingDistribution`),
    wrapped in :class:`agents.gym_env.LogReward` if ``args.reward_transform`` is ``"log"``."""
    from .gym_env import LogReward
    base = base or SimConfig(model=args.model)
    sim = base.replace(model=args.model, delta=args.delta, use_gate=args.use_gate, two_hop=args.two_hop)
    env = TrainingDistribution(sim, cost, store, q_pool,
                               traces=[t.strip() for t in args.bw_traces.split(",") if t.strip()],
                               bw_range_mbps=(args.bw_min_mbps, args.bw_max_mbps),
                               n_tasks_range=(args.tasks_min, args.tasks_max))
    return LogReward(env) if args.reward_transform == "log" else env


def train(args: Args, cost: CostConfig | None = None, store: ProfileStore | None = None,
          q_pool: np.ndarray | None = None, base: SimConfig | None = None,
          on_episode: Callable[[dict], None] | None = None) -> tuple[Agent, list[dict]]:
    """Train a DQN; returns the agent and one log row per episode (also written as CSV)."""
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)
    cost = cost or CostConfig()
    store = store or ProfileStore()
    env = make_train_env(args, cost, store, q_pool, base)
    dist = env.unwrapped
    dist.np_random = rng     # one generator for episodes, exploration and replay, as before
    obs_dim = int(env.observation_space.shape[0])
    n_actions = int(env.action_space.n)
    q_net = QNetwork(obs_dim, n_actions, args.hidden)
    target = QNetwork(obs_dim, n_actions, args.hidden)
    target.load_state_dict(q_net.state_dict())
    opt = torch.optim.Adam(q_net.parameters(), lr=args.learning_rate)
    rb = ReplayBuffer(args.buffer_size, obs_dim, n_actions, rng)
    meta = {"obs_dim": obs_dim, "n_actions": n_actions, "hidden": args.hidden, "model": args.model,
            "m": dist.m, "n_edge": len(dist.edge_names), "edge_names": list(dist.edge_names),
            "two_hop": args.two_hop, "args": asdict(args)}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"{args.exp_name}.csv"
    rows: list[dict] = []
    step = 0
    t_start = time.time()
    it = range(args.total_episodes)
    bar = None
    if args.progress:
        from tqdm import tqdm
        bar = tqdm(it, desc=args.exp_name, mininterval=2.0)
        it = bar
    loss_v = float("nan")
    with open(log_path, "w", newline="") as fh:
        writer = None
        for ep in it:
            if args.anneal_lr:
                opt.param_groups[0]["lr"] = args.learning_rate * (1.0 - 0.9 * ep / max(1, args.total_episodes - 1))
            eps = max(args.end_e, args.start_e - (args.start_e - args.end_e) * ep
                      / max(1.0, args.exploration_fraction * args.total_episodes))
            obs, info = env.reset()       # picks the episode's trace, then its seed, from rng
            mask = info["action_mask"]
            done = False
            ep_r, ep_lat, n = 0.0, 0.0, 0
            while not done:
                if rng.random() < eps:
                    a = int(rng.choice(np.flatnonzero(mask)))
                else:
                    with torch.no_grad():
                        a = int(masked_argmax(q_net(torch.as_tensor(obs).unsqueeze(0)),
                                              torch.as_tensor(mask).unsqueeze(0))[0])
                nobs, r_train, done, trunc, info = env.step(a)
                r = info.get("raw_reward", r_train)
                nmask = info["action_mask"]
                rb.add(obs, nobs, a, r_train, float(done), nmask)
                obs, mask = nobs, nmask
                ep_r += r
                ep_lat += info["latency_s"]
                n += 1
                step += 1
                if step > args.learning_starts and step % args.train_frequency == 0:
                    o, no, ac, rw, dn, nm = rb.sample(args.batch_size)
                    with torch.no_grad():
                        tq = target(no)
                        tmax = torch.where(nm, tq, torch.full_like(tq, -1e9)).max(dim=1).values
                        td_target = rw + args.gamma * tmax * (1 - dn)        # formula (3)
                    old = q_net(o).gather(1, ac.unsqueeze(1)).squeeze(1)
                    loss = ((td_target - old) ** 2).mean()                  # formula (4)
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(q_net.parameters(), 10.0)
                    opt.step()
                    loss_v = loss.item()
                if step % args.target_network_frequency == 0:
                    target.load_state_dict(q_net.state_dict())
            wall = time.time() - t_start
            row = {"episode": ep, "steps": step, "epsilon": round(eps, 4), "tasks": n,
                   "bw_mbps": round(dist.bw_mean_mbps, 3), "trace": dist.sim.bw_trace,
                   "mean_reward": ep_r / n, "mean_latency_s": ep_lat / n, "td_loss": loss_v,
                   "sps": step / max(wall, 1e-9), "wall_s": wall}
            rows.append(row)
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            if bar is not None and ep % 10 == 0:
                bar.set_postfix(r=f"{row['mean_reward']:.3f}", eps=f"{eps:.2f}", loss=f"{loss_v:.3f}")
            if on_episode is not None:
                on_episode(row)
    agent = Agent(q_net, meta)
    agent.save(out, args.exp_name)
    return agent, rows

#!/usr/bin/env python3
"""Train sb3-contrib's MaskablePPO on the SDN-CEP simulator, export it without pickle,
and compare it with the shipped SDN-CEP agent and the Oracle.

    nice -n 10 .venv/bin/python -m examples.sb3_maskable_ppo                      # smoke run, ~30 s
    nice -n 10 .venv/bin/python -m examples.sb3_maskable_ppo --timesteps 300000 \\
        --bws 1,2,5,10,20,50,100 --tasks 10,50,100,200                            # full size, ~9 min

Steps:

1. the env is ``gymnasium.make("sdncep/EdgeCloud-v0", config=--config)`` (the DQN's
   training distribution, :class:`agents.gym_env.TrainingDistribution`) in
   :class:`agents.gym_env.LogReward`, the DQN's reward; MaskablePPO reads the mask
   through ``action_masks()``;
2. ``--timesteps`` of MaskablePPO (default 4096, a smoke run; the shipped DQN saw
   about 62 k decisions; 300 k timesteps take about 8 minutes here, under nice on 2 shared cores);
3. export to ``<out>/<name>.npz`` (the policy's ``state_dict``, numpy arrays) and
   ``<out>/<name>.json`` (what they mean; :mod:`examples.sb3_policy`);
4. load the export as :class:`examples.sb3_policy.SB3Policy` (what the plug-in
   ``examples.sb3_policy:from_env`` builds with ``SDNCEP_SB3_POLICY=<out>/<name>``) and run it,
   the shipped agents (``checkpoints/sdncep-<model>.pt``: the DQN alone as
   ``sdn-cep-dqn``, and with the live shortlist of 5 as ``sdn-cep``) and the Oracle
   through the simulator on each cell (WAN rate x tasks, constant rate; the rest of
   the config as given) with common random numbers; print each method's latency and
   reward ratio to the Oracle (> 1 = worse) per cell and write ``<out>/<name>_eval.csv``.

``--config default`` is the built-in :class:`agents.config.SimConfig`.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # repo root, when run as a file

from examples.sb3_policy import FORMAT, SB3Policy, export_paths, sha256  # noqa: E402

DEFAULT_TIMESTEPS = 4096
FULL_TIMESTEPS = 300_000


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/testbed_sim.yaml",
                    help="YAML/JSON config (agents.config.load_config); 'default' = built-in SimConfig")
    ap.add_argument("--timesteps", type=int, default=DEFAULT_TIMESTEPS,
                    help=f"training decisions (smoke default; full size: {FULL_TIMESTEPS})")
    ap.add_argument("--seed", type=int, default=1, help="seed of the env and of MaskablePPO")
    ap.add_argument("--out", default="results/sb3", help="directory of the export and the evaluation CSV")
    ap.add_argument("--name", default="maskable_ppo", help="file stem of the export")
    ap.add_argument("--profiles", default=None, help="profiles root; 'synthetic' for the built-in ones")
    ap.add_argument("--n-steps", type=int, default=1024, help="MaskablePPO rollout length")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--n-epochs", type=int, default=10)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--gamma", type=float, default=0.09, help="discount (the DQN's 0.09: nearly myopic)")
    ap.add_argument("--ent-coef", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=128, help="width of the two hidden layers (pi and vf)")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--bws", default="1,10,100", help="WAN rates of the evaluation cells, Mbit/s")
    ap.add_argument("--tasks", default="10,100,200", help="tasks per episode of the evaluation cells")
    ap.add_argument("--eval-seeds", type=int, default=3, help="episodes per cell (seeds 1000, 1001, ...)")
    ap.add_argument("--agents", default="checkpoints/sdncep-*.pt", help="the shipped agents (glob)")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False)
    return ap.parse_args(argv)


def load_cfg(config: str):
    from agents.config import CoreConfig, load_config
    return CoreConfig() if config == "default" else load_config(config)


# --------------------------------------------------------------------------- export
def actor_layers(policy) -> list[dict]:
    """The actor of an SB3 ActorCriticPolicy as ``[{"weight", "bias", "activation"}]`` in order."""
    import torch.nn as nn
    from stable_baselines3.common.torch_layers import FlattenExtractor
    if not isinstance(policy.pi_features_extractor, FlattenExtractor):
        raise ValueError(f"only a flat Box observation can be exported, got {type(policy.pi_features_extractor)}")
    names = {nn.Tanh: "tanh", nn.ReLU: "relu"}
    layers, pending = [], None
    for i, mod in enumerate(policy.mlp_extractor.policy_net):
        key = f"mlp_extractor.policy_net.{i}"
        if isinstance(mod, nn.Linear):
            if pending is not None:
                layers.append(pending)
            pending = {"weight": f"{key}.weight", "bias": f"{key}.bias", "activation": None}
        elif type(mod) in names and pending is not None and pending["activation"] is None:
            pending["activation"] = names[type(mod)]
        else:
            raise ValueError(f"cannot export layer {key}: {mod}")
    if pending is not None:
        layers.append(pending)
    layers.append({"weight": "action_net.weight", "bias": "action_net.bias", "activation": None})
    return layers


def export(model, env, stem: str | Path, training: dict) -> Path:
    """Write ``<stem>.npz`` (the policy's state_dict, numpy) and ``<stem>.json`` (its meaning)."""
    import sb3_contrib
    npz, meta_path = export_paths(stem)
    npz.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}
    np.savez(npz, **arrays)
    dist = env.unwrapped
    meta = {"format": FORMAT, "algorithm": type(model).__name__, "sb3_contrib": sb3_contrib.__version__,
            "model": dist.model, "m": dist.m, "n_edge": len(dist.edge_names),
            "edge_names": list(dist.edge_names), "two_hop": dist.codec.two_hop,
            "obs_dim": int(env.observation_space.shape[0]), "n_actions": int(env.action_space.n),
            "obs": {"features": "agents.features.observe", "low": float(env.observation_space.low.min()),
                    "high": float(env.observation_space.high.max())},
            "actions": "agents.codec.ActionCodec(m, n_edge, two_hop)",
            "actor": actor_layers(model.policy), "npz_sha256": sha256(npz), "training": training}
    meta_path.write_text(json.dumps(meta, indent=1))
    return npz.with_suffix("")


def check_export(model, policy: SB3Policy, env, n: int = 64) -> float:
    """Largest difference between the export's logits and the SB3 policy's on ``n`` env observations."""
    import torch
    obs, _ = env.reset(seed=12345)
    batch = [obs]
    while len(batch) < n:
        mask = env.get_wrapper_attr("action_masks")()
        obs, _, done, _, _ = env.step(int(np.flatnonzero(mask)[len(batch) % int(mask.sum())]))
        batch.append(obs)
        if done:
            obs, _ = env.reset()
    x = np.stack(batch).astype(np.float32)
    with torch.no_grad():
        ref = model.policy.get_distribution(torch.as_tensor(x)).distribution.logits.numpy()
    ours = policy.logits(x)
    # SB3 normalises the logits (log-softmax); compare up to the per-row constant
    return float(np.abs((ours - ours.max(1, keepdims=True)) - (ref - ref.max(1, keepdims=True))).max())


# --------------------------------------------------------------------------- evaluation
def evaluate(policies: dict, cfg, store, bws, tasks, seeds) -> list[dict]:
    from agents.evaluation import run_cell
    rows = []
    for bw in bws:
        for k in tasks:
            sim = cfg.sim.replace(bw_trace="constant", bw_mbps=float(bw), bw_range_mbps=None,
                                  n_tasks=int(k), n_tasks_range=None)
            cell = {name: run_cell(p, sim, cfg.cost, store, seeds) for name, p in policies.items()}
            ref = cell["oracle"]["reward"]
            for name, r in cell.items():
                rows.append({"method": name, "bw_mbps": bw, "tasks": k, "latency_ms": 1e3 * r["latency_s"],
                             "p95_latency_ms": 1e3 * r["p95_latency_s"], "cost": r["cost"], "reward": r["reward"],
                             "ratio_to_oracle": r["reward"] / ref if ref else float("nan")})
    return rows


def table(rows: list[dict], methods: list[str]) -> str:
    cells = {(r["method"], r["bw_mbps"], r["tasks"]): r for r in rows}
    keys = sorted({(r["bw_mbps"], r["tasks"]) for r in rows})
    lines = ["mean latency [ms] / reward ratio to the Oracle (> 1 = worse) per cell",
             "| B Mbit/s | tasks | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for bw, k in keys:
        lines.append(f"| {bw:g} | {k} | " + " | ".join(
            f"{cells[(m, bw, k)]['latency_ms']:.0f} / {cells[(m, bw, k)]['ratio_to_oracle']:.2f}"
            for m in methods) + " |")
    worst = {m: max(cells[(m, bw, k)]["ratio_to_oracle"] for bw, k in keys) for m in methods}
    within = {m: sum(cells[(m, bw, k)]["ratio_to_oracle"] <= 1.05 for bw, k in keys) for m in methods}
    lines.append("| worst ratio | | " + " | ".join(f"{worst[m]:.2f}" for m in methods) + " |")
    lines.append("| cells within 5 % | | " + " | ".join(f"{within[m]}/{len(keys)}" for m in methods) + " |")
    return "\n".join(lines)


def shipped_agents(pattern: str, model: str):
    """The shipped SDN-CEP agents as the controller loads them, if one is for ``model``."""
    from agents.dqn import PerModelPolicy
    paths = sorted(glob.glob(pattern))
    if not paths:
        return None
    agents = PerModelPolicy.load(paths, use_gate=False, top_k=1)
    if not agents.supports(model):
        return None
    return agents


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ns = parse(argv)
    import gymnasium as gym
    import torch
    from sb3_contrib import MaskablePPO

    import agents.gym_env  # noqa: F401  (registers sdncep/EdgeCloud-v0)
    from agents.gym_env import ENV_ID, LogReward, profile_store
    from agents.registry import build_baselines

    torch.set_num_threads(ns.torch_threads)
    cfg = load_cfg(ns.config)
    store = profile_store(ns.profiles)
    env = LogReward(gym.make(ENV_ID, config=cfg, seed=ns.seed, profiles=store))
    n_steps = max(16, min(ns.n_steps, ns.timesteps))
    model = MaskablePPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(ns.batch_size, n_steps),
                        n_epochs=ns.n_epochs, learning_rate=ns.learning_rate, gamma=ns.gamma,
                        ent_coef=ns.ent_coef, seed=ns.seed, verbose=0, device="cpu",
                        policy_kwargs={"net_arch": {"pi": [ns.hidden] * 2, "vf": [ns.hidden] * 2}})
    t0 = time.time()
    model.learn(total_timesteps=ns.timesteps, progress_bar=ns.progress)
    wall = time.time() - t0
    print(f"MaskablePPO: {model.num_timesteps} timesteps in {wall:.0f} s on {ns.config} "
          f"(model {env.unwrapped.model}, edge slots {', '.join(env.unwrapped.edge_names)})")

    training = {"timesteps": int(model.num_timesteps), "wall_s": round(wall, 1), "config": ns.config,
                "seed": ns.seed, "n_steps": n_steps, "batch_size": min(ns.batch_size, n_steps),
                "n_epochs": ns.n_epochs, "learning_rate": ns.learning_rate, "gamma": ns.gamma,
                "ent_coef": ns.ent_coef, "reward": "agents.gym_env.LogReward"}
    stem = export(model, env, Path(ns.out) / ns.name, training)
    policy = SB3Policy(stem)
    gap = check_export(model, policy, LogReward(gym.make(ENV_ID, config=cfg, seed=0, profiles=store)))
    if gap > 1e-4:
        raise SystemExit(f"the export's logits differ from the SB3 policy's by {gap:g}")
    npz, meta = export_paths(stem)
    print(f"exported {npz} and {meta} (no pickle; logits equal SB3's to {gap:.1e})")

    policies = {"maskable-ppo": policy}
    shipped = shipped_agents(ns.agents, cfg.sim.model)
    if shipped is not None:
        policies["sdn-cep-dqn"] = shipped.renamed("sdn-cep-dqn", 1)
        policies["sdn-cep"] = shipped.renamed("sdn-cep", 5)
    else:
        print(f"no shipped agent for {cfg.sim.model} in {ns.agents}: comparing with the Oracle only")
    policies["oracle"] = build_baselines(store)["oracle"]
    bws = [float(b) for b in ns.bws.split(",") if b.strip()]
    tasks = [int(k) for k in ns.tasks.split(",") if k.strip()]
    seeds = list(range(1000, 1000 + ns.eval_seeds))
    t0 = time.time()
    rows = evaluate(policies, cfg, store, bws, tasks, seeds)
    print(f"evaluated {len(bws) * len(tasks)} cells x {len(seeds)} episodes in {time.time() - t0:.0f} s")
    print(table(rows, list(policies)))
    out_csv = Path(ns.out) / f"{ns.name}_eval.csv"
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out_csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

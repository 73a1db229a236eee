#!/usr/bin/env python3
"""Simulated experiments of SDN-CEP vs the baselines and the Oracle.

    sdncep experiments [--agent checkpoints/sim-agent.pt] [--quick]

Produces in ``--out`` (default ``results/``): ``grid.csv`` (method x bandwidth x tasks),
``fig_latency_vs_bw.png``, ``fig_latency_vs_tasks.png``, ``fig_cost_vs_tasks.png``,
``fig_wifi.png``, ``fig_models.png`` (cloud / edge / collaborative per model),
``fig_reward_vs_episode.png`` (delta in {0.2, 0.4, 0.6, 0.8}; ``--delta-episodes 0`` skips
its training runs), ``bench_decision.csv``, and a summary table plus the acceptance
checks on stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # repo root, relative to this file

import numpy as np  # noqa: E402

from agents.calibration import MODELS, ProfileStore  # noqa: E402
from agents.complexity import ComplexityPredictor, train_predictor  # noqa: E402
from agents.config import CostConfig, SimConfig  # noqa: E402
from agents.cost import Plan  # noqa: E402
from agents.dqn import Agent, Args, SdnCepPolicy, train  # noqa: E402
from agents.evaluation import run_cell  # noqa: E402
from agents.registry import BASELINES as PAPER_BASELINES, build_baselines  # noqa: E402

BWS = (1, 2, 5, 10, 20, 50, 100)
TASKS = (10, 50, 100, 200)
BASELINES = PAPER_BASELINES + ("random",)


def get_predictor(path: Path) -> ComplexityPredictor:
    if path.exists():
        return ComplexityPredictor.load(path)
    pred = train_predictor(seed=0)
    pred.save(path)
    return pred


def bench_decision(agent: Agent, pred: ComplexityPredictor, store: ProfileStore, cost: CostConfig,
                   n: int = 2000) -> dict[str, float]:
    """p50/p99 of one decision: predictor on a 224x224x3 image + masked forward + decode.

    Wall-clock (``perf_counter``) and this thread's CPU time (``thread_time``, which
    excludes time the scheduler gave to other processes on the shared machine).

    The observation and mask come from the network view, which the controller keeps
    up to date between decisions; they are timed separately (``view_*``).
    """
    import torch
    torch.set_num_threads(1)
    from agents.features import action_mask, observe
    from agents.sim_env import EdgeCloudEnv
    env = EdgeCloudEnv(SimConfig(two_hop=bool(agent.meta.get("two_hop", False))), cost, store)
    obs, info = env.reset(seed=0)
    mask = info["action_mask"]
    rng = np.random.default_rng(0)
    imgs = [(rng.random((224, 224, 3)) * 255).astype(np.uint8) for _ in range(8)]
    names = list(env.edge_names)
    t_dec, t_view, t_cpu = [], [], []
    for i in range(n + 100):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        q = pred.predict(imgs[i % 8])
        a = 0 if q >= pred.delta else agent.act(obs, mask)
        plan = agent.codec.plan(a if q < pred.delta else 0, "alexnet", names)
        t1 = time.perf_counter()
        c1 = time.thread_time()
        view = env.view()
        o2 = observe(view, "alexnet", store)
        m2 = action_mask(view, "alexnet", agent.codec, store, cost)
        t2 = time.perf_counter()
        if i >= 100:
            t_cpu.append(c1 - c0)
            t_dec.append(t1 - t0)
            t_view.append(t2 - t1)
        assert isinstance(plan, Plan) and o2.shape == obs.shape and m2.shape == mask.shape
    d, v, c = np.array(t_dec) * 1e3, np.array(t_view) * 1e3, np.array(t_cpu) * 1e3
    return {"decision_p50_ms": float(np.percentile(d, 50)), "decision_p99_ms": float(np.percentile(d, 99)),
            "decision_cpu_p50_ms": float(np.percentile(c, 50)), "decision_cpu_p99_ms": float(np.percentile(c, 99)),
            "loadavg_1min": float(__import__("os").getloadavg()[0]),
            "view_obs_mask_p50_ms": float(np.percentile(v, 50)), "view_obs_mask_p99_ms": float(np.percentile(v, 99))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sdncep experiments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default=str(Path(__file__).resolve().parents[1] / "checkpoints" / "sim-agent.pt"),
                    help="DQN checkpoint (.pt + .json); default: the shipped two-hop agent of the default world")
    ap.add_argument("--extra-agent", action="append", default=[], metavar="LABEL=PATH",
                    help="another checkpoint to evaluate (e.g. sdn-cep-2hop=results/agent/x.pt); repeatable")
    ap.add_argument("--out", default="results", help="output directory")
    ap.add_argument("--seeds", type=int, default=3, help="episodes per cell (common random numbers)")
    ap.add_argument("--delta", type=float, default=0.6, help="predictor threshold of SDN-CEP")
    ap.add_argument("--delta-episodes", type=int, default=300, help="episodes per delta run (0: skip)")
    ap.add_argument("--model-episodes", type=int, default=0,
                    help="train a DQN per model for the per-model figure (0: use the Oracle as 'collaborative')")
    ap.add_argument("--learning-rate", type=float, default=1e-3, help="lr of the extra training runs")
    ap.add_argument("--quick", action="store_true", help="small grid for a smoke run")
    ap.add_argument("--grid-only", action="store_true", help="only the bandwidth x tasks grid and the checks")
    ap.add_argument("--profiles", default=None,
                    help="profiles root; default the repo's profiles/; 'synthetic' for built-in ones")
    ns = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    from scripts.train_agent import make_store
    store = make_store(ns.profiles)
    print(f"profiles: {store.root} (measured: {len(store.measured)} model/host-class files)")
    cost = CostConfig()
    pred = get_predictor(out / "complexity.json")
    q_pool = np.array(pred.meta["q_holdout"])
    print(f"predictor: held-out AUC {pred.meta['auc_holdout']:.3f} (train {pred.meta['auc_train']:.3f}), "
          f"hard rate {pred.meta['hard_rate']:.2f}, share of held-out q >= {ns.delta}: "
          f"{(q_pool >= ns.delta).mean():.3f}")
    agent = Agent.load(ns.agent)
    pols = dict(build_baselines(store))
    pols["sdn-cep"] = SdnCepPolicy(agent, ns.delta, True, pred, "sdn-cep")
    pols["sdn-cep-nogate"] = SdnCepPolicy(agent, ns.delta, False, pred, "sdn-cep-nogate")
    mine = ["sdn-cep", "sdn-cep-nogate"]
    for spec in ns.extra_agent:
        label, _, path = spec.partition("=")
        a2 = Agent.load(path)
        pols[label] = SdnCepPolicy(a2, ns.delta, True, pred, label)
        pols[label + "-nogate"] = SdnCepPolicy(a2, ns.delta, False, pred, label + "-nogate")
        mine += [label, label + "-nogate"]
    order = tuple(mine) + BASELINES + ("oracle", "oracle-2hop")
    bws, tasks = ((1, 10, 100), (10, 200)) if ns.quick else (BWS, TASKS)
    seeds = list(range(1000, 1000 + ns.seeds))

    # ---------------------------------------------------------------- grid
    rows = []
    t0 = time.time()
    for bw in bws:
        for k in tasks:
            sim = SimConfig(bw_mbps=float(bw), bw_range_mbps=None, n_tasks=k)
            for name in order:
                r = run_cell(pols[name], sim, cost, store, seeds, q_pool)
                rows.append({"method": name, "bw_mbps": bw, "tasks": k, **r})
    print(f"grid: {len(rows)} cells x {len(seeds)} episodes in {time.time() - t0:.0f}s")
    with open(out / "grid.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cell = {(r["method"], r["bw_mbps"], r["tasks"]): r for r in rows}

    # ---------------------------------------------------------------- table + checks
    print("\nmean latency [ms] / reward ratio to Oracle (single-hop) per cell")
    hdr = f"{'bw':>4} {'k':>4} " + " ".join(f"{n[-11:]:>11}" for n in order)
    print(hdr)
    for bw in bws:
        for k in tasks:
            o = cell[("oracle", bw, k)]["reward"]
            print(f"{bw:>4} {k:>4} " + " ".join(
                f"{cell[(n, bw, k)]['latency_s'] * 1e3:6.0f}/{cell[(n, bw, k)]['reward'] / o:4.2f}" for n in order))
    checks = {}
    for me in mine:
        n_cells = len(bws) * len(tasks)
        lat_ok = sum(all(cell[(me, b, k)]["latency_s"] <= cell[(x, b, k)]["latency_s"] * (1 + 1e-6) for x in BASELINES)
                     for b in bws for k in tasks)
        gaps = {(b, k): cell[(me, b, k)]["reward"] / cell[("oracle", b, k)]["reward"] - 1 for b in bws for k in tasks}
        gaps2 = {(b, k): cell[(me, b, k)]["reward"] / cell[("oracle-2hop", b, k)]["reward"] - 1 for b in bws for k in tasks}
        checks[me] = {"latency_no_worse_cells": f"{lat_ok}/{n_cells}",
                      "latency_criterion_90pct": lat_ok >= 0.9 * n_cells,
                      "max_reward_gap_vs_oracle": max(gaps.values()),
                      "reward_within_5pct_every_cell": max(gaps.values()) <= 0.05,
                      "max_reward_gap_vs_oracle_2hop": max(gaps2.values()),
                      "worst_cell": str(max(gaps, key=gaps.get)),
                      "cells_within_5pct_of_oracle_2hop": f"{sum(g <= 0.05 for g in gaps2.values())}/{n_cells}",
                      "worst_cell_vs_oracle_2hop": str(max(gaps2, key=gaps2.get))}
    print("\nacceptance checks:")
    for me, c in checks.items():
        print(f"  {me}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in c.items()))

    (out / "checks.json").write_text(json.dumps(checks, indent=1, default=str))
    if ns.grid_only:
        return 0

    # ---------------------------------------------------------------- figures
    plot_order = ("sdn-cep", "only-cloud", "only-edge", "neurosurgeon", "dpto", "oracle", "oracle-2hop")
    kmid = 100 if 100 in tasks else tasks[-1]
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in plot_order:
        ax.plot(bws, [cell[(n, b, kmid)]["latency_s"] for b in bws], marker="o", label=n)
    ax.set(xscale="log", yscale="log", xlabel="WAN bandwidth [Mbit/s]", ylabel="mean latency [s]",
           title=f"AlexNet, {kmid} tasks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig_latency_vs_bw.png", dpi=120)
    bmid = 10 if 10 in bws else bws[len(bws) // 2]
    for key, fname, ylab in (("latency_s", "fig_latency_vs_tasks.png", "mean latency [s]"),
                             ("cost", "fig_cost_vs_tasks.png", "mean cost per task")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for n in plot_order:
            ax.plot(tasks, [cell[(n, bmid, k)][key] for k in tasks], marker="o", label=n)
        ax.set(yscale="log" if key == "latency_s" else "linear", xlabel="tasks per batch", ylabel=ylab,
               title=f"AlexNet, {bmid} Mbit/s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
    # WiFi-like bandwidth (paper Fig. 5c)
    wifi = []
    for k in tasks:
        sim = SimConfig(bw_trace="wifi", bw_mbps=20.0, bw_range_mbps=None, n_tasks=k)
        for n in ("sdn-cep", "neurosurgeon", "dpto", "oracle"):
            wifi.append({"method": n, "tasks": k, **run_cell(pols[n], sim, cost, store, seeds, q_pool)})
    fig, ax = plt.subplots(figsize=(6, 4))
    for n in ("sdn-cep", "neurosurgeon", "dpto", "oracle"):
        ax.plot(tasks, [r["latency_s"] for r in wifi if r["method"] == n], marker="o", label=n)
    ax.set(yscale="log", xlabel="tasks per batch", ylabel="mean latency [s]", title="WiFi-like WAN (mean 20 Mbit/s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig_wifi.png", dpi=120)
    with open(out / "wifi.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(wifi[0]))
        w.writeheader()
        w.writerows(wifi)

    # per-model: cloud / edge / collaborative
    per_model = []
    for model in MODELS:
        sim = SimConfig(model=model, bw_mbps=10.0, bw_range_mbps=None, n_tasks=50)
        collab = pols["oracle"]
        label = "collaborative (oracle)"
        if ns.model_episodes > 0:
            a, _ = train(Args(model=model, total_episodes=ns.model_episodes, learning_rate=ns.learning_rate,
                              two_hop=bool(agent.meta.get("two_hop", False)),
                              progress=False, out_dir=str(out / "agent"), exp_name=f"model_{model}"), cost, store)
            collab, label = SdnCepPolicy(a, ns.delta, False, pred, "dqn"), "collaborative (DQN)"
        for n, p in (("cloud", pols["only-cloud"]), ("edge", pols["only-edge"]), (label, collab)):
            per_model.append({"model": model, "env": n, **run_cell(p, sim, cost, store, seeds, q_pool)})
    fig, ax = plt.subplots(figsize=(7, 4))
    envs = list(dict.fromkeys(r["env"] for r in per_model))
    x = np.arange(len(MODELS))
    for i, e in enumerate(envs):
        ax.bar(x + (i - 1) * 0.27, [r["latency_s"] for r in per_model if r["env"] == e], 0.27, label=e)
    ax.set(xticks=x, xticklabels=MODELS, yscale="log", ylabel="mean latency [s]", title="10 Mbit/s, 50 tasks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig_models.png", dpi=120)
    with open(out / "models.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(per_model[0]))
        w.writeheader()
        w.writerows(per_model)
    print("\nper-model mean latency [ms] at 10 Mbit/s, 50 tasks:")
    for model in MODELS:
        print(f"  {model:>13}: " + ", ".join(f"{r['env']} {r['latency_s'] * 1e3:.0f}"
                                             for r in per_model if r["model"] == model))

    # reward vs episode for several deltas (gate active in training)
    if ns.delta_episodes > 0:
        fig, ax = plt.subplots(figsize=(6, 4))
        for d in (0.2, 0.4, 0.6, 0.8):
            t1 = time.time()
            _, log = train(Args(delta=d, use_gate=True, total_episodes=ns.delta_episodes,
                                two_hop=bool(agent.meta.get("two_hop", False)),
                                learning_rate=ns.learning_rate, progress=False, out_dir=str(out / "agent"),
                                exp_name=f"delta_{d}"), cost, store, q_pool)
            r = np.array([row["mean_reward"] for row in log])
            sm = np.convolve(r, np.ones(20) / 20, mode="valid")
            ax.plot(np.arange(len(sm)) + 20, sm, label=f"delta={d}")
            print(f"delta {d}: last-50 mean reward {r[-50:].mean():.4f} ({time.time() - t1:.0f}s)")
        ax.set(xlabel="episode", ylabel="mean reward per task (20-episode average)", yscale="symlog",
               title="reward vs episode (gate in training)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "fig_reward_vs_episode.png", dpi=120)

    # decision latency benchmark
    b = bench_decision(agent, pred, store, cost)
    print("\ndecision benchmark: " + ", ".join(f"{k}={v:.3f}" for k, v in b.items()))
    (out / "bench_decision.json").write_text(json.dumps(b, indent=1))
    (out / "checks.json").write_text(json.dumps(checks, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

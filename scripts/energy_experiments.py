#!/usr/bin/env python3
"""Energy-aware offloading (the second seed method, docs/energy.md): experiments, training, benchmark.

    sdncep energy [run] [--instances 60] [--out results/energy]   # tables, CSV/JSON, PNG (about 1 min)
    sdncep energy train [--episodes 6000]                          # retrain checkpoints/energy-dqn.pt
    sdncep energy bench [-n 3000]                                  # one decision for 10 devices, p50/p99
    flock /tmp/sdncep-live.lock sdncep energy live [--seed 3]      # live on the Mininet testbed (root, ~3 min)
    flock /tmp/sdncep-live.lock sdncep energy chaos                # live, faults injected (root, ~4 min)

``run`` writes into a fresh run folder under ``--out``: ``table.csv``/``table.json`` (DQN vs
DROO, greedy, random, all-local, all-offload and the exhaustive optimum on ``--instances``
instances with 2-10 devices), ``devices.csv`` + ``fig_devices.png`` (cost, latency, energy
against the number of devices), ``battery.csv`` + ``fig_battery.png`` (battery ratio 1.0 ->
0.1 on a fixed instance and averaged over ``--sweep-instances``), ``weight.csv`` +
``fig_weight.png`` (lambda_t), ``summary.json`` (the acceptance numbers) and ``manifest.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # repo root, relative to this file

import numpy as np  # noqa: E402

from agents.energy.baselines import (  # noqa: E402
    AllLocal,
    AllOffload,
    Exhaustive,
    GreedyCost,
    RandomPolicy,
)
from agents.energy.config import EnergyConfig, TrainArgs, load_energy_config  # noqa: E402
from agents.energy.droo import DrooPolicy  # noqa: E402
from agents.energy.evaluation import battery_sweep, run, versus_optimum  # noqa: E402
from agents.energy.instances import draw_instance  # noqa: E402
from agents.energy.model import build_tables  # noqa: E402
from agents.energy.policy import DEFAULT_CHECKPOINT, DqnPolicy  # noqa: E402

ORDER = ("dqn", "droo", "greedy", "random", "all-local", "all-offload", "optimum")


def _progress(total: int, desc: str):
    try:
        from rich.progress import Progress
    except ImportError:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=desc, unit="step")
        return bar, lambda: bar.update(1)
    prog = Progress()
    prog.start()
    task = prog.add_task(desc, total=total)

    class _Bar:
        def close(self):
            prog.stop()
    return _Bar(), lambda: prog.advance(task)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _print_table(summary: list[dict]) -> None:
    head = ("method", "mean cost", "vs opt (mean)", "vs opt (worst)", "latency s", "energy J", "offload", "feasible",
            "repaired")
    lines = [head]
    for s in sorted(summary, key=lambda s: ORDER.index(s["method"]) if s["method"] in ORDER else 99):
        lines.append((s["method"], f"{s['mean_cost']:.4f}", f"{s['mean_ratio']:.4f}", f"{s['worst_ratio']:.4f}",
                      f"{s['mean_latency_s']:.3f}", f"{s['mean_energy_j']:.3f}", f"{s['offload_share']:.2f}",
                      f"{s['feasible']:.2f}", str(s["repaired_decisions"])))
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    for n, r in enumerate(lines):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def make_droo(cfg: EnergyConfig, seed: int, warmup: int) -> DrooPolicy:
    rng = np.random.default_rng(seed + 10_000)
    droo = DrooPolicy(seed=seed, slots=12)
    return droo.fit(build_tables(draw_instance(rng, cfg.instances, cfg.system)) for _ in range(warmup))


def cmd_run(ns) -> int:
    import torch
    torch.set_num_threads(1)
    from sdncep.records import manifest, new_run_dir, write_manifest
    cfg = load_energy_config(ns.config) if ns.config else EnergyConfig()
    dqn = DqnPolicy.load(ns.checkpoint, n_exec=ns.n_exec)
    rng = np.random.default_rng(ns.seed)
    out = new_run_dir(ns.out)
    write_manifest(out, manifest("energy", vars(ns), checkpoints=[ns.checkpoint]))
    sizes = tuple(int(s) for s in ns.devices.split(","))
    ratios = np.round(np.linspace(1.0, 0.1, 10), 3)
    weights = (0.1, 0.3, 0.5, 0.7, 0.9)
    total = ns.instances + len(sizes) * ns.sweep_instances + ns.sweep_instances * len(ratios) + \
        len(weights) * ns.sweep_instances + 1
    t0 = time.perf_counter()
    droo = make_droo(cfg, ns.seed, ns.droo_warmup)
    bar, tick = _progress(total, "energy experiments")
    methods = [dqn, droo, GreedyCost(), RandomPolicy(ns.seed), AllLocal(), AllOffload(), Exhaustive()]
    # (1) the table: >= 50 instances with <= 10 devices
    tabs = [build_tables(draw_instance(rng, cfg.instances, cfg.system)) for _ in range(ns.instances)]
    rows = run(methods, tabs, tick)
    table = versus_optimum(rows)
    _write_csv(out / "instances.csv", rows)
    _write_csv(out / "table.csv", table)
    (out / "table.json").write_text(json.dumps(table, indent=1))
    # number of devices
    dev_rows = []
    for n in sizes:
        tabs = [build_tables(draw_instance(rng, cfg.instances, cfg.system, n=n)) for _ in range(ns.sweep_instances)]
        ms = [m for m in methods if not (m.name == "optimum" and n > 16)]
        dev_rows += run(ms, tabs, tick, {"cell": f"n={n}"})
    _write_csv(out / "devices.csv", dev_rows)
    # battery ratio: a fixed instance, and the mean over sweep instances
    fixed = draw_instance(np.random.default_rng(ns.seed + 1), cfg.instances, cfg.system, n=10)
    sweep_methods = [dqn, droo, GreedyCost(), AllLocal(), AllOffload(), Exhaustive()]
    bat_rows = [{"instance_set": "fixed", **r} for r in battery_sweep(sweep_methods, fixed, ratios)]
    tick()
    for k in range(ns.sweep_instances):
        inst = draw_instance(rng, cfg.instances, cfg.system, n=10)
        for r in battery_sweep(sweep_methods, inst, ratios):
            bat_rows.append({"instance_set": "mean", **r, "instance": k})
        for _ in ratios:
            tick()
    _write_csv(out / "battery.csv", bat_rows)
    # latency weight
    w_rows = []
    insts = [draw_instance(rng, cfg.instances, cfg.system, n=10) for _ in range(ns.sweep_instances)]
    for lt in weights:
        w_rows += run(sweep_methods, [build_tables(i.with_system(lambda_t=lt)) for i in insts], tick,
                      {"cell": f"lambda_t={lt}", "lambda_t": lt})
    _write_csv(out / "weight.csv", w_rows)
    bar.close()
    summary = _summary(table, dev_rows, bat_rows, w_rows, ratios, time.perf_counter() - t0)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not ns.no_plots:
        _plots(out, dev_rows, bat_rows, w_rows, sizes, ratios, weights)
    print(f"\n{ns.instances} instances, 2-10 devices, {cfg.system.n_aps} APs (cost = sum of per-device "
          "lambda_t' T + lambda_e' E):")
    _print_table(table)
    print("\n" + json.dumps({k: v for k, v in summary.items() if k != "table"}, indent=1))
    print(f"\nrun folder: {out}")
    return 0


def _mean(rows, **match):
    sel = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return {k: float(np.mean([r[k] for r in sel])) for k in ("cost", "latency_s", "energy_j", "offload_share")}


def _summary(table, dev_rows, bat_rows, w_rows, ratios, seconds) -> dict:
    by = {s["method"]: s for s in table}
    d = by["dqn"]
    hi, lo = float(ratios[0]), float(ratios[-1])
    bat = {}
    for m in ("dqn", "optimum"):
        for sset in ("fixed", "mean"):
            a = _mean(bat_rows, method=m, instance_set=sset, battery_ratio=hi)
            b = _mean(bat_rows, method=m, instance_set=sset, battery_ratio=lo)
            bat[f"{m}/{sset}"] = {"offload_share": [a["offload_share"], b["offload_share"]],
                                  "energy_j": [a["energy_j"], b["energy_j"]],
                                  "share_rises": b["offload_share"] > a["offload_share"],
                                  "energy_falls": b["energy_j"] < a["energy_j"]}
    return {
        "criterion1": {"instances": d["instances"], "dqn_mean_ratio_to_optimum": d["mean_ratio"],
                       "dqn_worst_ratio": d["worst_ratio"], "dqn_worst_instance": d["worst_instance"],
                       "within_5pct": d["mean_ratio"] <= 1.05,
                       "beats": {m: d["mean_cost"] < by[m]["mean_cost"] for m in ("all-local", "all-offload", "random")},
                       "droo_mean_ratio": by["droo"]["mean_ratio"], "greedy_mean_ratio": by["greedy"]["mean_ratio"],
                       "dqn_repaired_decisions": d["repaired_decisions"]},
        "criterion2_battery_1.0_to_0.1": bat,
        "seconds": round(seconds, 1),
    }


def _figure(path, xs, xlabel, panels, methods, value, invert=False) -> None:
    """One row of panels (key, label), a line per method; ``value(method, x, key)``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 4))
    for ax, (key, label) in zip(axes, panels):
        for m in methods:
            ax.plot(xs, [value(m, x, key) for x in xs], marker="o", label=m)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        if invert:
            ax.invert_xaxis()
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plots(out, dev_rows, bat_rows, w_rows, sizes, ratios, weights) -> None:
    cost, latency, energy = (("cost", "total cost"), ("latency_s", "mean latency (s)"),
                             ("energy_j", "device energy (J)"))
    share = ("offload_share", "offloaded share")
    methods = [m for m in ORDER if any(r["method"] == m for r in dev_rows)]
    _figure(out / "fig_devices.png", sizes, "devices", (cost, latency, energy), methods,
            lambda m, n, k: _mean(dev_rows, method=m, cell=f"n={n}")[k])
    bm = [m for m in ORDER if any(r["method"] == m for r in bat_rows)]
    _figure(out / "fig_battery.png", ratios, "battery ratio r^p (all devices)", (share, energy, latency), bm,
            lambda m, r, k: _mean(bat_rows, method=m, instance_set="mean", battery_ratio=float(r))[k], invert=True)
    _figure(out / "fig_weight.png", weights, "lambda_t (full battery)", (share, latency, energy), bm,
            lambda m, w, k: _mean(w_rows, method=m, lambda_t=w)[k])


def cmd_train(ns) -> int:
    import torch
    torch.set_num_threads(1)
    from agents.energy.dqn import train
    cfg = load_energy_config(ns.config) if ns.config else EnergyConfig()
    if ns.episodes:
        cfg = cfg.replace(train=TrainArgs(**{**cfg.train.__dict__, "episodes": ns.episodes}))
    bar, tick = _progress(cfg.train.episodes, "training")
    agent, rows = train(cfg, progress=lambda done, total: tick())
    bar.close()
    for r in rows:
        print(json.dumps(r))
    path = agent.save(ns.out, ns.stem)
    print(f"saved {path} (+ .json)")
    return 0


def _timed(fn, items, n):
    wall, cpu = [], []
    for k in range(n):
        item = items[k % len(items)]
        t0, c0 = time.perf_counter(), time.thread_time()
        fn(item)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    res = {}
    for name, xs in (("wall", wall), ("cpu", cpu)):
        xs = np.array(xs) * 1e3
        res.update({f"{name}_p50_ms": round(float(np.percentile(xs, 50)), 4),
                    f"{name}_p99_ms": round(float(np.percentile(xs, 99)), 4)})
    return res


def cmd_bench(ns) -> int:
    """Three timings: the cost tables (a row per device, which a controller keeps up to date
    as device states change, as SDN-CEP's view-derived observation), the decision given the
    tables (claim-2 rounds + repair) with N = 1 and with N = all tasks, and the two together."""
    import torch
    torch.set_num_threads(1)
    cfg = load_energy_config(ns.config) if ns.config else EnergyConfig()
    agent = DqnPolicy.load(ns.checkpoint).agent
    one, batch = DqnPolicy(agent, n_exec=1), DqnPolicy(agent, n_exec=ns.devices)
    rng = np.random.default_rng(ns.seed)
    insts = [draw_instance(rng, cfg.instances, cfg.system, n=ns.devices) for _ in range(200)]
    tabs = [build_tables(i) for i in insts]
    for tab in tabs[:50]:
        one.decide(tab)
        batch.decide(tab)
    res = {"devices": ns.devices, "decisions": ns.n,
           "tables": _timed(build_tables, insts, ns.n),
           "decide_n_exec_1": _timed(one.decide, tabs, ns.n),
           "decide_n_exec_all": _timed(batch.decide, tabs, ns.n),
           "tables_plus_decide_n_exec_1": _timed(lambda i: one.decide(build_tables(i)), insts, ns.n)}
    print(json.dumps(res, indent=1))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "live":              # the testbed run: scripts/energy_live.py (root)
        from scripts.energy_live import main as live
        return live(argv[1:])
    if argv and argv[0] == "chaos":             # faults injected live: scripts/energy_chaos.py (root)
        from scripts.energy_chaos import main as chaos
        return chaos(argv[1:])
    if not argv or argv[0] not in ("run", "train", "bench", "-h", "--help"):
        argv = ["run", *argv]
    ap = argparse.ArgumentParser(prog="sdncep energy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=None, help="energy YAML/JSON (sections system, instances, train)")
    common.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="DQN checkpoint (.pt + .json)")
    common.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", parents=[common], help="experiments (default)")
    r.add_argument("--instances", type=int, default=60, help="instances of the DQN-vs-optimum table (2-10 devices)")
    r.add_argument("--sweep-instances", type=int, default=20, help="instances per point of the sweeps")
    r.add_argument("--devices", default="2,4,6,8,10,12", help="device counts of the devices sweep")
    r.add_argument("--droo-warmup", type=int, default=3000, help="instances DROO learns online before the table")
    r.add_argument("--n-exec", type=int, default=1, help="tasks executed per round of the claim-2 order")
    r.add_argument("--out", default=str(REPO / "results" / "energy"), help="root of the run folders")
    r.add_argument("--no-plots", action="store_true")
    t = sub.add_parser("train", parents=[common], help="train the DQN")
    t.add_argument("--episodes", type=int, default=None, help="override train.episodes")
    t.add_argument("--out", default=str(REPO / "checkpoints"))
    t.add_argument("--stem", default="energy-dqn")
    b = sub.add_parser("bench", parents=[common], help="time one decision (p50/p99)")
    b.add_argument("-n", type=int, default=3000)
    b.add_argument("--devices", type=int, default=10)
    ns = ap.parse_args(argv)
    return {"run": cmd_run, "train": cmd_train, "bench": cmd_bench}[ns.cmd](ns)


if __name__ == "__main__":
    sys.exit(main())

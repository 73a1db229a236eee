#!/usr/bin/env python3
"""Online pricing, admission and placement of distributed ML training jobs (issue 15).

    sdncep pricing [--full] [--seeds N] [--config configs/pricing.yaml] [--out DIR]

Parts (``--parts``, default all): ``jobs`` welfare against the number of jobs (the
text's Fig. 4a; its largest point is the summary table), ``servers`` against the number of
edge servers (Fig. 4b, 50-300 with ``--full``), ``utility`` per utility shape (Fig. 3b),
``ratio`` the competitive ratio offline optimum (ILP) / online welfare on small instances
(Fig. 3a/4c), ``value`` resource use against job value (Fig. 3c), ``bench`` the time of
one admission decision at 300 servers and 150 slots.  Writes CSV, JSON, PNG and a manifest
into a run folder (default ``results/pricing/<stamp>``) and prints the tables.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # repo root, relative to this file

import numpy as np

from sdncep import records

REPO = Path(__file__).resolve().parents[1]
PARTS = ("jobs", "servers", "utility", "ratio", "value", "bench")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog=sys.argv[0] if sys.argv[0].startswith("sdncep") else None,
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true",
                    help="the text's scale (50-300 edge servers, 150 slots, up to 1800 jobs; about 1 h)")
    ap.add_argument("--seeds", type=int, default=1, help="workload seeds per point (default 1)")
    ap.add_argument("--config", help="YAML/JSON with sections workload and prices (default: built-in)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--methods", default="pricing,pricing-nomove,oasis,fixed-price,fcfs,greedy-density")
    ap.add_argument("--instances", type=int, default=20, help="small instances for the competitive ratio")
    ap.add_argument("--decisions", type=int, default=100, help="timed decisions per utilisation level (bench)")
    ap.add_argument("--out", help="run folder (default: a new one under results/pricing/)")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; known: {', '.join(PARTS)}")
    if args.seeds < 1 or args.instances < 1:
        ap.error("--seeds and --instances must be >= 1")
    args.parts = parts
    return ap, args


def scale(full: bool) -> dict:
    if full:
        return {"servers": 50, "jobs": (300, 600, 1200, 1800), "server_sweep": (50, 100, 200, 300),
                "server_jobs": 1500, "utility_jobs": 1200}
    return {"servers": 20, "jobs": (100, 200, 400), "server_sweep": (10, 20, 40), "server_jobs": 200,
            "utility_jobs": 200}


def run_point(cfg, seed, ms, progress, task, extra):
    from agents.pricing.online import run_online
    from agents.pricing.workload import make_world
    cluster, jobs = make_world(cfg, seed)
    rows, outs = [], {}
    for name, m in ms.items():
        out = run_online(jobs, cluster, m)
        outs[name] = out
        rows.append({**extra, "seed": seed, **out.summary()})
        progress.advance(task)
    return rows, outs, (cluster, jobs)


def mean_table(rows, keys):
    """Mean over seeds of welfare, revenue, admitted per (keys..., method)."""
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys) + (r["method"],), []).append(r)
    out = []
    for g, rs in groups.items():
        d = dict(zip(keys + ["method"], g))
        for f in ("admitted", "welfare", "revenue", "distributed"):
            d[f] = round(float(np.mean([r[f] for r in rs])), 2)
        d["jobs"] = rs[0]["jobs"]
        out.append(d)
    return out


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as h:
        w = csv.DictWriter(h, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def print_table(title, rows, cols):
    cells = [[f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, width))))
    for x in cells:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(x, width))))


def plot_lines(path, rows, x, title, xlabel):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in dict.fromkeys(r["method"] for r in rows):
        pts = sorted((r[x], r["welfare"]) for r in rows if r["method"] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("social welfare")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def competitive_ratio(ms, n, prices, progress, task):
    from agents.pricing.cluster import Usage
    from agents.pricing.offline import solve_offline
    from agents.pricing.online import run_online
    from agents.pricing.workload import SMALL, make_world
    rows = []
    for seed in range(n):
        cluster, jobs = make_world(SMALL.replace(jobs=16), 1000 + seed)
        off = solve_offline(jobs, cluster, time_limit=20)
        check = Usage(cluster)
        for job, s in off.schedules:               # the ILP's answer is itself feasible
            check.allocate(job, s)
        row = {"instance": seed, "offline": round(off.welfare, 3), "offline_bound": round(off.bound, 3),
               "optimal": off.optimal, "ilp_variables": off.variables, "ilp_s": round(off.seconds, 2)}
        for name, m in ms.items():
            w = run_online(jobs, cluster, m).welfare
            row[name] = round(off.bound / w, 4) if w > 0 else float("inf")
        rows.append(row)
        progress.advance(task)
    return rows


def bench(decisions, progress, task):
    """One admission decision at 300 edge servers (+ cloud) and 150 slots, with the cluster
    at a background utilisation of 0, 30 and 60 % (random, independent per node and slot)."""
    from agents.pricing.cluster import Usage
    from agents.pricing.prices import PriceBook, PriceConfig
    from agents.pricing.schedule import best_schedule
    from agents.pricing.workload import WorkloadConfig, make_world
    cluster, jobs = make_world(WorkloadConfig(servers=300, slots=150, jobs=max(decisions, 50)), 7)
    rng = np.random.default_rng(0)
    rows = []
    for util in (0.0, 0.3, 0.6):
        usage = Usage(cluster)
        usage.q[:] = rng.binomial(cluster.worker_cap[:, :, None], util, size=usage.q.shape)
        usage.h[:] = rng.binomial(cluster.ps_cap[:, :, None], util / 2, size=usage.h.shape)
        book = PriceBook(cluster, PriceConfig())
        for j in jobs:
            book.observe(j)
        book.levels(usage)
        wall, cpu, adm = [], [], 0
        for j in jobs[:decisions]:
            t0, c0 = time.perf_counter(), time.thread_time()
            s = best_schedule(j, cluster, usage, book)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            adm += s is not None
            progress.advance(task)
        rows.append({"utilisation": util, "decisions": decisions, "admissible": adm,
                     "wall_ms_p50": round(1e3 * np.percentile(wall, 50), 2),
                     "wall_ms_p99": round(1e3 * np.percentile(wall, 99), 2),
                     "cpu_ms_p50": round(1e3 * np.percentile(cpu, 50), 2),
                     "cpu_ms_p99": round(1e3 * np.percentile(cpu, 99), 2)})
    return rows


def value_plot(path, outs, cluster, jobs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by_id = {j.jid: j for j in jobs}
    rows = []
    for name in ("pricing", "fcfs"):
        if name not in outs:
            continue
        for d in outs[name].decisions:
            j = by_id[d.jid]
            used = d.schedule.n_workers * d.schedule.slots if d.admitted else 0
            rows.append({"method": name, "jid": d.jid, "value": round(j.utility.peak, 3),
                         "density": round(j.meta.get("density", 0.0), 3), "admitted": d.admitted,
                         "worker_slots": used, "utility": round(d.utility, 3), "payment": round(d.payment, 3)})
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, mk in (("pricing", "o"), ("fcfs", "x")):
        pts = [(r["value"], r["worker_slots"]) for r in rows if r["method"] == name and r["admitted"]]
        if pts:
            ax.scatter(*zip(*pts), s=10, marker=mk, alpha=0.6, label=f"{name} (admitted)")
    ax.set_xscale("log")
    ax.set_xlabel("job value f_j^max")
    ax.set_ylabel("worker-slots used")
    ax.set_title("resource use against job value")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return rows


class _Bar:
    """progress.advance(task) over a tqdm bar."""

    def __init__(self, bar):
        self.bar = bar

    def advance(self, _task, n=1):
        self.bar.update(n)


def main(argv=None):
    ap, args = parse_args(argv)
    from tqdm import tqdm

    from agents.config import ConfigError
    from agents.pricing.baselines import methods
    from agents.pricing.config import PricingConfig, load_pricing_config
    try:
        config = load_pricing_config(args.config) if args.config else PricingConfig()
    except (OSError, ValueError, ConfigError) as exc:
        ap.error(str(exc))
    all_methods = methods(config.prices)
    names = [m for m in args.methods.split(",") if m]
    if set(names) - set(all_methods):
        ap.error(f"unknown method(s); known: {', '.join(all_methods)}")
    ms = {n: all_methods[n] for n in names}
    sc = scale(args.full)
    out = Path(args.out) if args.out else records.new_run_dir(REPO / "results" / "pricing")
    out.mkdir(parents=True, exist_ok=True)
    from dataclasses import asdict
    records.write_manifest(out, records.manifest("pricing", vars(args), config={
        "workload": asdict(config.workload), "prices": asdict(config.prices), "scale": sc}))
    results = {}
    base = config.workload.replace(servers=sc["servers"])
    seeds = range(args.seeds)
    total = 0
    if "jobs" in args.parts:
        total += len(sc["jobs"]) * len(seeds) * len(ms)
    if "servers" in args.parts:
        total += len(sc["server_sweep"]) * len(seeds) * len(ms)
    if "utility" in args.parts:
        total += 3 * len(seeds) * len(ms)
    if "ratio" in args.parts:
        total += args.instances
    if "bench" in args.parts:
        total += 3 * args.decisions
    last_outs = None
    with tqdm(total=total, desc="pricing experiments", unit="run") as bar:
        progress, task = _Bar(bar), None
        if "jobs" in args.parts:
            rows = []
            for nj in sc["jobs"]:
                for seed in seeds:
                    r, outs, world = run_point(base.replace(jobs=nj), seed, ms, progress, task, {"n_jobs": nj})
                    rows += r
                    if nj == sc["jobs"][-1] and seed == 0:
                        last_outs, last_world = outs, world
            write_csv(out / "welfare_vs_jobs.csv", rows)
            results["welfare_vs_jobs"] = mean_table(rows, ["n_jobs"])
            plot_lines(out / "fig_welfare_vs_jobs.png", results["welfare_vs_jobs"], "n_jobs",
                       f"{sc['servers']} edge servers + cloud, {base.slots} slots", "jobs")
        if "servers" in args.parts:
            rows = []
            for ns in sc["server_sweep"]:
                for seed in seeds:
                    r, _, _ = run_point(base.replace(servers=ns, jobs=sc["server_jobs"]), seed, ms, progress, task,
                                        {"servers": ns})
                    rows += r
            write_csv(out / "welfare_vs_servers.csv", rows)
            results["welfare_vs_servers"] = mean_table(rows, ["servers"])
            plot_lines(out / "fig_welfare_vs_servers.png", results["welfare_vs_servers"], "servers",
                       f"{sc['server_jobs']} jobs, {base.slots} slots", "edge servers")
        if "utility" in args.parts:
            rows = []
            for kind in ("linear", "sigmoid", "step"):
                for seed in seeds:
                    r, _, _ = run_point(base.replace(jobs=sc["utility_jobs"], utility=kind), seed, ms, progress,
                                        task, {"utility": kind})
                    rows += r
            write_csv(out / "welfare_vs_utility.csv", rows)
            results["welfare_vs_utility"] = mean_table(rows, ["utility"])
        if "ratio" in args.parts:
            rows = competitive_ratio(ms, args.instances, config.prices, progress, task)
            write_csv(out / "competitive_ratio.csv", rows)
            summary = [{"method": n, "instances": len(rows),
                        "mean": round(float(np.mean([r[n] for r in rows])), 4),
                        "worst": round(float(np.max([r[n] for r in rows])), 4),
                        "ilp_optimal": sum(r["optimal"] for r in rows)} for n in ms]
            results["competitive_ratio"] = summary
            results["competitive_ratio_instances"] = rows
        if "value" in args.parts and last_outs is not None:
            results["value_vs_use"] = value_plot(out / "fig_use_vs_value.png", last_outs, *last_world)
            write_csv(out / "use_vs_value.csv", results["value_vs_use"])
        if "bench" in args.parts:
            results["bench"] = bench(args.decisions, progress, task)
            write_csv(out / "bench_decision.csv", results["bench"])
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    cols = ["method", "jobs", "admitted", "welfare", "revenue", "distributed"]
    if "welfare_vs_jobs" in results:
        for nj in sc["jobs"]:
            print_table(f"welfare, {nj} jobs, {sc['servers']} edge servers (mean of {args.seeds} seed(s))",
                        [r for r in results["welfare_vs_jobs"] if r["n_jobs"] == nj], cols)
    if "welfare_vs_servers" in results:
        print_table(f"welfare vs servers ({sc['server_jobs']} jobs)", results["welfare_vs_servers"],
                    ["servers"] + cols)
    if "welfare_vs_utility" in results:
        print_table("welfare vs utility shape", results["welfare_vs_utility"], ["utility"] + cols)
    if "competitive_ratio" in results:
        print_table("competitive ratio = offline optimum (ILP bound) / online welfare",
                    results["competitive_ratio"], ["method", "instances", "mean", "worst", "ilp_optimal"])
    if "bench" in results:
        print_table("one admission decision, 300 edge servers + cloud, 150 slots", results["bench"],
                    list(results["bench"][0]))
    print(f"\nresults, plots and manifest in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

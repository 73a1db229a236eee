#!/usr/bin/env python3
"""Online pricing, admission and placement of distributed ML training jobs (issue 15).

    sdncep pricing [--full] [--seeds N] [--config configs/pricing.yaml] [--out DIR]
    sdncep pricing live [--faults all]     # on the testbed (root): scripts/pricing_live.py

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
import os
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
    ap.add_argument("--seeds", type=int, default=1, help="workload seeds per point: 0..N-1 (default 1)")
    ap.add_argument("--seed-list", help="explicit workload seeds, e.g. 0,1,2,1000-1019 (overrides --seeds); "
                    "with two or more, a paired comparison of pricing against each method per point")
    ap.add_argument("--config", help="YAML/JSON with sections workload and prices (default: built-in)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--methods", default="pricing,pricing-nomove,oasis,fixed-price,fcfs,greedy-density")
    ap.add_argument("--instances", type=int, default=20, help="small instances for the competitive ratio")
    ap.add_argument("--decisions", type=int, default=500, help="timed decisions per utilisation level (bench)")
    ap.add_argument("--stream-jobs", type=int, default=1500, help="jobs of the timed online stream (bench)")
    ap.add_argument("--out", help="run folder (default: a new one under results/pricing/)")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; known: {', '.join(PARTS)}")
    if min(args.seeds, args.instances, args.decisions, args.stream_jobs) < 1:
        ap.error("--seeds, --instances, --decisions and --stream-jobs must be >= 1")
    args.parts = parts
    from agents.pricing.compare import parse_seeds
    try:
        args.seed_values = parse_seeds(args.seed_list) if args.seed_list else list(range(args.seeds))
    except ValueError as exc:
        ap.error(f"--seed-list: {exc}")
    return ap, args


def scale(full: bool) -> dict:
    if full:
        return {"servers": 50, "jobs": (300, 600, 1200, 1800), "server_sweep": (50, 100, 200, 300),
                "server_jobs": 1500, "utility_jobs": 1200}
    return {"servers": 20, "jobs": (100, 200, 400), "server_sweep": (10, 20, 40), "server_jobs": 200,
            "utility_jobs": 200}


def run_point(cfg, seed, ms, progress, task, extra):
    from agents.pricing.offline import alone_bound
    from agents.pricing.online import run_online
    from agents.pricing.workload import make_world
    cluster, jobs = make_world(cfg, seed)
    bound = alone_bound(jobs, cluster)
    rows, outs = [], {}
    for name, m in ms.items():
        out = run_online(jobs, cluster, m)
        outs[name] = out
        rows.append({**extra, "seed": seed, **out.summary(), "alone_bound": round(bound, 3),
                     "of_bound_pct": round(100 * out.welfare / bound, 2) if bound > 0 else None})
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
        for f in ("admitted", "welfare", "revenue", "distributed", "of_bound_pct"):
            d[f] = round(float(np.mean([r[f] for r in rs])), 2)
        d["jobs"] = rs[0]["jobs"]
        out.append(d)
    return out


def paired(results, out, part, rows, keys, ms):
    """With two or more seeds: pricing against every other method, seed by seed (compare.py)."""
    from agents.pricing.compare import paired_rows
    if "pricing" not in ms or len({r["seed"] for r in rows}) < 2:
        return
    results[f"paired_vs_{part}"] = paired_rows(rows, keys, "pricing", [m for m in ms if m != "pricing"])
    write_csv(out / f"paired_vs_{part}.csv", results[f"paired_vs_{part}"])


def welfare_tables(results, out, part, rows, key, ms):
    """A welfare sweep's rows to welfare_vs_<part>.csv, its paired comparison, and its
    mean per point (``results["welfare_vs_<part>"]``, returned)."""
    write_csv(out / f"welfare_vs_{part}.csv", rows)
    paired(results, out, part, rows, [key], ms)
    results[f"welfare_vs_{part}"] = mean_table(rows, [key])
    return results[f"welfare_vs_{part}"]


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


class MachineLoad:
    """The machine's load over a measurement: the 1-min load average at its end, the cores
    busy with anything (/proc/stat) and the cores this process used; the rest is other work."""

    def __enter__(self):
        self.t0, self.c0, self.j0 = time.perf_counter(), time.process_time(), _jiffies()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        j1, cores = _jiffies(), os.cpu_count() or 1
        self.row = {"load_1min": round(os.getloadavg()[0], 2),
                    "own_cores": round((time.process_time() - self.c0) / wall, 2)}
        if self.j0 and j1 and j1[1] > self.j0[1]:
            busy = cores * (j1[0] - self.j0[0]) / (j1[1] - self.j0[1])
            self.row.update(busy_cores=round(busy, 2), other_cores=round(max(0.0, busy - self.row["own_cores"]), 2))
        return False


def _jiffies():
    """(busy, total) CPU ticks of the machine since boot, or None without /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as h:
            ticks = [int(x) for x in h.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)        # idle and iowait are not busy


def _ms(x, q):
    return round(1e3 * float(np.percentile(x, q)), 2)


def bench(decisions, stream_jobs, progress, task):
    """One admission decision at 300 edge servers (+ cloud) and 150 slots.

    Rows ``search``: the placement search given the prices, the cluster at a background
    utilisation of 0, 30 and 60 % (random, independent per node and slot); each job is decided
    by the compiled search (timed) and then by the numpy search, its reference (timed as well,
    under the same load), and the two schedules are compared.  Rows ``stream``: whole steps of
    the online mechanism (observe the bid, reprice, search, allocate) over ``stream_jobs`` jobs
    on the idle cluster filling up.  Warm-up: one untimed decision loads (or compiles) the
    kernels.  The first stream runs with the garbage collector as it is; then the objects alive
    (some 300 000, mostly imported modules') are frozen out of it (``gc.freeze``), as a
    long-running service would, so that a full collection does not walk them, and the search
    rows and the second stream are timed."""
    import gc

    from agents.pricing.cluster import Usage
    from agents.pricing.prices import PriceBook, PriceConfig
    from agents.pricing.schedule import best_schedule, load_compiled_search
    from agents.pricing.workload import WorkloadConfig, make_world
    world = WorkloadConfig(servers=300, slots=150, jobs=max(decisions, 50))
    cluster, jobs = make_world(world, 7)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    load_compiled_search(jobs[0], cluster)
    warm = {"warmup_s": round(time.perf_counter() - t0, 2)}
    rows = [_bench_stream(world.replace(jobs=stream_jobs), "as is", warm, progress, task)]
    gc.freeze()
    for util in (0.0, 0.3, 0.6):
        usage = Usage(cluster)
        usage.q[:] = rng.binomial(cluster.worker_cap[:, :, None], util, size=usage.q.shape)
        usage.h[:] = rng.binomial(cluster.ps_cap[:, :, None], util / 2, size=usage.h.shape)
        book = PriceBook(cluster, PriceConfig())
        for j in jobs:
            book.observe(j)
        book.levels(usage)
        wall, cpu, ref_wall, adm, same = [], [], [], 0, 0
        with MachineLoad() as load:
            for j in jobs[:decisions]:
                t0, c0 = time.perf_counter(), time.thread_time()
                s = best_schedule(j, cluster, usage, book)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
                t0 = time.perf_counter()
                ref = best_schedule(j, cluster, usage, book, compiled=False)
                ref_wall.append(time.perf_counter() - t0)
                adm += s is not None
                same += _facts(s) == _facts(ref)
                progress.advance(task)
        rows.append({"part": "search", "utilisation": util, "gc": "frozen", "decisions": decisions,
                     "admissible": adm, "same_as_numpy": same, **_times(wall, cpu),
                     "numpy_wall_ms_p50": _ms(ref_wall, 50), "numpy_wall_ms_p99": _ms(ref_wall, 99),
                     **warm, **load.row})
    rows.append(_bench_stream(world.replace(jobs=stream_jobs), "frozen", warm, progress, task))
    gc.unfreeze()
    return rows


def _bench_stream(world, gc_state, warm, progress, task):
    """One row: every step of the online mechanism over a job stream (seed 8)."""
    from agents.pricing.baselines import methods
    from agents.pricing.online import run_online
    from agents.pricing.workload import make_world
    cluster, jobs = make_world(world, 8)
    cpu, last = [], [time.thread_time()]

    def tick(_decision):
        now = time.thread_time()                   # CPU between two decisions: one online step
        cpu.append(now - last[0])
        last[0] = now
        progress.advance(task)
    with MachineLoad() as load:
        out = run_online(jobs, cluster, methods()["pricing"], on_decision=tick)
    wall = [d.seconds for d in out.decisions]
    return {"part": "stream", "utilisation": "filling", "gc": gc_state, "decisions": len(wall),
            "admissible": len(out.admitted), "same_as_numpy": "", **_times(wall, cpu),
            "numpy_wall_ms_p50": "", "numpy_wall_ms_p99": "", **warm, **load.row}


def _times(wall, cpu):
    return {"wall_ms_p50": _ms(wall, 50), "wall_ms_p99": _ms(wall, 99), "wall_ms_max": _ms(wall, 100),
            "cpu_ms_p50": _ms(cpu, 50), "cpu_ms_p99": _ms(cpu, 99)}


def _facts(s):
    return None if s is None else (s.w, s.p, s.start, s.end, s.workers.tolist(), s.ps_server, s.ps_count, s.kind)


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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["live"]:                     # `sdncep pricing live`: the testbed run
        from scripts.pricing_live import main as live
        return live(argv[1:])
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
    seeds = args.seed_values
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
        total += 3 * args.decisions + 2 * args.stream_jobs
    last_outs = None
    with tqdm(total=total, desc="pricing experiments", unit="run") as bar:
        progress, task = _Bar(bar), None
        if "jobs" in args.parts:
            rows = []
            for nj in sc["jobs"]:
                for seed in seeds:
                    r, outs, world = run_point(base.replace(jobs=nj), seed, ms, progress, task, {"n_jobs": nj})
                    rows += r
                    if nj == sc["jobs"][-1] and seed == seeds[0]:
                        last_outs, last_world = outs, world
            welfare_tables(results, out, "jobs", rows, "n_jobs", ms)
            plot_lines(out / "fig_welfare_vs_jobs.png", results["welfare_vs_jobs"], "n_jobs",
                       f"{sc['servers']} edge servers + cloud, {base.slots} slots", "jobs")
        if "servers" in args.parts:
            rows = []
            for ns in sc["server_sweep"]:
                for seed in seeds:
                    r, _, _ = run_point(base.replace(servers=ns, jobs=sc["server_jobs"]), seed, ms, progress, task,
                                        {"servers": ns})
                    rows += r
            welfare_tables(results, out, "servers", rows, "servers", ms)
            plot_lines(out / "fig_welfare_vs_servers.png", results["welfare_vs_servers"], "servers",
                       f"{sc['server_jobs']} jobs, {base.slots} slots", "edge servers")
        if "utility" in args.parts:
            rows = []
            for kind in ("linear", "sigmoid", "step"):
                for seed in seeds:
                    r, _, _ = run_point(base.replace(jobs=sc["utility_jobs"], utility=kind), seed, ms, progress,
                                        task, {"utility": kind})
                    rows += r
            welfare_tables(results, out, "utility", rows, "utility", ms)
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
            results["bench"] = bench(args.decisions, args.stream_jobs, progress, task)
            write_csv(out / "bench_decision.csv", results["bench"])
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    cols = ["method", "jobs", "admitted", "welfare", "revenue", "distributed", "of_bound_pct"]
    if "welfare_vs_jobs" in results:
        for nj in sc["jobs"]:
            print_table(f"welfare, {nj} jobs, {sc['servers']} edge servers (mean of {len(seeds)} seed(s))",
                        [r for r in results["welfare_vs_jobs"] if r["n_jobs"] == nj], cols)
    if "welfare_vs_servers" in results:
        print_table(f"welfare vs servers ({sc['server_jobs']} jobs)", results["welfare_vs_servers"],
                    ["servers"] + cols)
    if "welfare_vs_utility" in results:
        print_table("welfare vs utility shape", results["welfare_vs_utility"], ["utility"] + cols)
    for part, key in (("jobs", "n_jobs"), ("servers", "servers"), ("utility", "utility")):
        if f"paired_vs_{part}" in results:
            print_table(f"pricing minus each method, paired over {len(seeds)} seeds (welfare; rel. in %; "
                        "two-sided sign test and Wilcoxon signed-rank)", results[f"paired_vs_{part}"],
                        [key, "versus", "seeds", "mean_diff", "mean_rel_pct", "min_rel_pct", "max_rel_pct",
                         "wins", "losses", "sign_p", "wilcoxon_p"])
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

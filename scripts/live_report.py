"""Tables, figures and calibration from live benchmark records (scripts.bench_live).

Pure: reads records (dicts written by runtime.device), writes files. Usable on its
own to redraw a finished run:  python -m scripts.live_report results/live
"""

import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BASELINES = ("only-cloud", "only-edge", "neurosurgeon", "dpto")


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    index = min(int(round(q / 100 * (len(values) - 1))), len(values) - 1)
    return values[index]


def _stats(rows):
    ok = [r for r in rows if r["status"] == "ok"]
    latency = [r["e2e_s"] for r in ok]  # task arrival (plan request) to result
    predicted = [(r["predicted_latency_s"], r["e2e_s"]) for r in ok if r.get("predicted_latency_s")]
    overhead = [r["controller_overhead_s"] for r in rows if r.get("controller_overhead_s") is not None]
    shares = [r["controller_overhead_s"] / r["e2e_s"] for r in ok
              if r.get("controller_overhead_s") is not None and r.get("e2e_s")]
    return {
        "n": len(rows), "ok": len(ok), "failed": len(rows) - len(ok),
        "median_s": statistics.median(latency) if latency else None,
        "p95_s": _percentile(latency, 95),
        "mean_s": statistics.fmean(latency) if latency else None,
        "mean_cost": statistics.fmean(r["predicted_cost"] for r in ok) if ok else None,
        "mape": statistics.fmean(abs(p - m) / m for p, m in predicted) if predicted else None,
        "overhead_p99_s": _percentile(overhead, 99),
        "overhead_share": statistics.fmean(shares) if shares else None,
    }


def summarize(records):
    measured = [r for r in records if r.get("phase") not in (None, "warmup")]
    cells = defaultdict(list)
    for r in measured:
        cells[(r["phase"], r["tag"], r["method"], r["model"])].append(r)
    table = [dict(phase=p, tag=t, method=m, model=model, **_stats(rows))
             for (p, t, m, model), rows in sorted(cells.items())]
    by_method = defaultdict(list)
    for r in measured:
        by_method[r["method"]].append(r)
    overall = {m: _stats(rows) for m, rows in sorted(by_method.items())}
    return {"cells": table, "methods": overall, "verdict": verdict(table, measured),
            "lost_tasks": sum(1 for r in records if r["status"] not in ("ok", "error", "timeout")),
            "failed_tasks": sum(1 for r in records if r["status"] != "ok")}


def verdict(cells, records=()):
    """Per bandwidth level: is SDN-CEP's median no worse than the best baseline, and within
    10% of the Oracle? With the records, also SDN-CEP against that baseline task by task."""
    levels = defaultdict(dict)
    for c in cells:
        if c["phase"] == "bandwidth" and c["median_s"] is not None:
            levels[c["tag"]][c["method"]] = c["median_s"]
    rows = []
    for tag, medians in sorted(levels.items(), key=lambda kv: float(kv[0].split(":")[1])):
        best = min((medians[m] for m in BASELINES if m in medians), default=None)
        best_method = next((m for m in BASELINES if m in medians and medians[m] == best), None)
        ours, oracle = medians.get("sdn-cep"), medians.get("oracle")
        rows.append({"level": tag, "sdn_cep_s": ours, "best_baseline_s": best, "best_baseline": best_method,
                     "oracle_s": oracle,
                     "no_worse_than_best": None if ours is None or best is None else ours <= best,
                     "within_10pct_of_oracle": None if ours is None or oracle is None else ours <= 1.1 * oracle,
                     "paired": paired(records, tag, "sdn-cep", best_method) if best_method else None})
    return rows


def paired(records, tag, ours, theirs):
    """Two methods task by task: the runner gives every method the same arrivals (round,
    device, seq, time), so each of our tasks has a twin. Counts twins given the same plan,
    the median latency difference (ours - theirs) and the two-sided sign test's p-value."""
    def by_task(method):
        return {(r.get("round"), r.get("device"), r.get("seq")): r for r in records
                if r.get("tag") == tag and r["method"] == method and r["status"] == "ok"}
    mine, other = by_task(ours), by_task(theirs)
    twins = [(mine[k], other[k]) for k in sorted(mine.keys() & other.keys())]
    if not twins:
        return None
    diffs = [a["e2e_s"] - b["e2e_s"] for a, b in twins]
    return {"pairs": len(twins), "same_plan": sum(a.get("plan") == b.get("plan") for a, b in twins),
            "median_diff_s": statistics.median(diffs), "sign_test_p": sign_test(diffs)}


def sign_test(diffs):
    """Two-sided exact sign test of 'the median difference is 0' (ties dropped)."""
    above, below = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    n = above + below
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(above, below) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def latency_table(summary):
    lines = [f"{'phase':<10} {'tag':<16} {'method':<13} {'model':<13} {'ok/n':>6} {'median ms':>10} "
             f"{'p95 ms':>8} {'cost':>8} {'MAPE':>6}"]
    for c in summary["cells"]:
        ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"  # noqa: E731
        lines.append(f"{c['phase']:<10} {c['tag']:<16} {c['method']:<13} {c['model']:<13} "
                     f"{c['ok']:>3}/{c['n']:<2} {ms(c['median_s']):>10} {ms(c['p95_s']):>8} "
                     f"{'-' if c['mean_cost'] is None else format(c['mean_cost'], '.3g'):>8} "
                     f"{'-' if c['mape'] is None else format(c['mape'] * 100, '.0f') + '%':>6}")
    lines.append("")
    lines.append("SDN-CEP vs baselines per bandwidth level (median latency):")
    for v in summary["verdict"]:
        lines.append(f"  {v['level']:<16} sdn-cep {_ms(v['sdn_cep_s'])}  best baseline {_ms(v['best_baseline_s'])}"
                     f"  oracle {_ms(v['oracle_s'])}  no worse: {v['no_worse_than_best']}  "
                     f"within 10% of oracle: {v['within_10pct_of_oracle']}")
        if pair := v.get("paired"):
            lines.append(f"    task by task against {v['best_baseline']}: same plan {pair['same_plan']}/{pair['pairs']},"
                         f" median difference {pair['median_diff_s'] * 1000:+.0f} ms,"
                         f" sign test p = {pair['sign_test_p']:.2f}")
    lines.append("Per method over the whole run: predicted-vs-measured MAPE, controller overhead p99:")
    for method, s in summary["methods"].items():
        lines.append(f"  {method:<13} MAPE {_pct(s['mape'])}  overhead p99 {_ms(s['overhead_p99_s'], 1)}"
                     f"  overhead share {_pct(s['overhead_share'], 1)}  failed {s['failed']}/{s['n']}")
    lines.append(f"tasks without a result or an explicit error: {summary['lost_tasks']}")
    return "\n".join(lines)


def _ms(value, digits=0):
    return "-" if value is None else f"{value * 1000:.{digits}f} ms"


def _pct(value, digits=0):
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def write_all(records, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "records.json").write_text(json.dumps(records, default=float))
    fields = sorted({k for r in records for k in r if k != "paths"})
    with open(out / "records.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    summary = summarize(records)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    draw_figures(summary, records, out)
    return summary


def draw_figures(summary, records, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    def series(phase, value="median_s"):
        lines = defaultdict(list)
        for c in summary["cells"]:
            if c["phase"] == phase and c[value] is not None:
                lines[c["method"]].append((float(c["tag"].split(":")[1]), c[value]))
        return {m: sorted(v) for m, v in lines.items()}

    for phase, value, xlabel, ylabel, name, logx in (
            ("bandwidth", "median_s", "WAN bandwidth (Mbit/s)", "median latency (s)", "latency_vs_bandwidth", True),
            ("tasks", "mean_s", "tasks in a batch", "mean latency (s)", "latency_vs_tasks", False),
            ("tasks", "mean_cost", "tasks in a batch", "mean cost per task", "cost_vs_tasks", False)):
        lines = series(phase, value)
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, points in lines.items():
            ax.plot(*zip(*points), marker="o", label=method)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=name.replace("_", " "))
        if logx:
            ax.set_xscale("log")
            ticks = [x for x, _ in next(iter(lines.values()))]
            ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yscale("log")  # Only-Cloud at low bandwidth is 10-30x the others
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=120)
        plt.close(fig)
    wifi = [r for r in records if r.get("phase") == "wifi" and r["status"] == "ok"]
    if wifi:
        fig, ax = plt.subplots(figsize=(7, 4))
        for method in sorted({r["method"] for r in wifi}):
            rows = sorted((r for r in wifi if r["method"] == method), key=lambda r: r["seq"])
            ax.plot([r["seq"] for r in rows], [r["e2e_s"] for r in rows], marker=".", label=method)
        ax.set(xlabel="task", ylabel="latency (s)", title="WiFi-like random bandwidth")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "wifi.png", dpi=120)
        plt.close(fig)
    per_model = [c for c in summary["cells"] if c["phase"] == "models" and c["median_s"] is not None]
    if per_model:
        models = sorted({c["model"] for c in per_model})
        methods = ("only-cloud", "only-edge", "sdn-cep")
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.25
        for i, method in enumerate(methods):
            values = [next((c["median_s"] for c in per_model if c["model"] == m and c["method"] == method), 0)
                      for m in models]
            ax.bar([j + i * width for j in range(len(models))], values, width, label=method)
        ax.set_xticks([j + width for j in range(len(models))], models)
        ax.set(ylabel="median latency (s)", title="cloud / edge / collaborative per model")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "models.png", dpi=120)
        plt.close(fig)


def main(argv=None):
    out = Path((argv or sys.argv[1:] or ["results/live"])[0])
    records = json.loads((out / "records.json").read_text())
    print(latency_table(write_all(records, out)))


if __name__ == "__main__":
    main()

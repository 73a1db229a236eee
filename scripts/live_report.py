"""Tables, verdicts and figures from a live benchmark run (scripts.bench_live).

Usable on its own to redraw a finished run:  python -m scripts.live_report results/live

A *cell* is one scenario point: phase, WAN rate, arrival rate per device, seed and
model. Per cell it reports each method's latency, SDN-CEP against each baseline task
by task (scripts.live_stats), the fidelity of the emulation (scripts.live_fidelity)
and what the simulator predicts for the same arrivals (scripts.live_sim).
"""

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from agents.registry import BASELINES, label
from scripts import live_fidelity, live_stats

CELL_KEYS = ("phase", "wan_mbit", "rate", "seed", "model")
ORACLE_SLACK = 1.10       # SDN-CEP's median within 10% of the Oracle's
SIM_TOLERANCE = 0.10      # the simulator's median within 10% of the measured one
MAPE_LIMIT = 0.15
JUDGED_PHASES = ("load", "bandwidth")


def cell_key(record):
    return tuple(record.get(k) for k in CELL_KEYS)


def cell_name(key):
    phase, wan, rate, seed, model = key
    parts = [phase]
    if wan is not None:
        parts.append(f"WAN {wan:g} Mbit/s")
    if rate is not None:
        parts.append(f"{rate:g}/s per device")
    if model != "alexnet":
        parts.append(model)
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(int(round(q / 100 * (len(values) - 1))), len(values) - 1)]


def method_stats(rows):
    ok = [r for r in rows if r["status"] == "ok"]
    latency = [r["e2e_s"] for r in ok]  # task arrival (plan request) to result
    predicted = [(r["predicted_latency_s"], r["e2e_s"]) for r in ok if r.get("predicted_latency_s")]
    overhead = [r["controller_overhead_s"] for r in rows if r.get("controller_overhead_s") is not None]
    return {
        "n": len(rows), "ok": len(ok), "failed": len(rows) - len(ok),
        "median_s": statistics.median(latency) if latency else None,
        "p95_s": _percentile(latency, 95),
        "mean_s": statistics.fmean(latency) if latency else None,
        "mean_cost": statistics.fmean(r["predicted_cost"] for r in ok) if ok else None,
        "mape": statistics.fmean(abs(p - m) / m for p, m in predicted) if predicted else None,
        "overhead_p99_s": _percentile(overhead, 99),
        "fallbacks": sum(1 for r in rows if r.get("fallback")),
    }


def cells_of(records):
    """{cell key: {method: [records]}} of the measured tasks (warm-up left out)."""
    cells = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("phase") not in (None, "warmup"):
            cells[cell_key(r)][r["method"]].append(r)
    return cells


def simulate_cells(records, run):
    """{cell key: {method: (simulated latencies, latencies with the live run's plans)}}:
    the simulator replaying each judged cell's arrivals (scripts.live_sim) with the
    topology, calibration and agents of ``run`` (bench_live's run.json)."""
    from scripts import live_sim
    spec = run.get("topology")
    out = {}
    for key, by_method in cells_of(records).items():
        phase, wan = key[0], key[1]
        if not spec or wan is None or phase not in JUDGED_PHASES:
            continue
        rows = [r for method_rows in by_method.values() for r in method_rows]
        sim = live_sim.replay_cell(rows, spec, wan, run.get("calibration"), run.get("agents", ""),
                                   run.get("agent_top_k", 5))
        out[key] = {m: (list(p["by_task"].values()), list(p["live_plans_by_task"].values())) for m, p in sim.items()}
    return out


def summarize(records, run=None, fidelity_runs=(), simulate=True, simulated=None):
    """Everything the report prints and draws. ``run`` is bench_live's run.json (topology,
    calibration, agents): without it there is no link check and no simulator replay.
    ``simulated``: :func:`simulate_cells`'s result, if already made (repeats pooled)."""
    run = run or {}
    measured = [r for r in records if r.get("phase") not in (None, "warmup")]
    cells = cells_of(measured)
    if simulated is None:
        simulated = simulate_cells(measured, run) if simulate and run.get("topology") else {}
    runs_of = defaultdict(list)
    for f in fidelity_runs:
        runs_of[cell_key(f)].append(f)
    spec = run.get("topology")
    out_cells = []
    for key in sorted(cells, key=_sort_key):
        by_method = cells[key]
        rows = [r for method_rows in by_method.values() for r in method_rows]
        wan = key[1]
        rates = live_fidelity.link_rates(_spec_links(spec), wan) if spec and wan is not None else None
        cell = {"key": dict(zip(CELL_KEYS, key)), "name": cell_name(key),
                "methods": {m: method_stats(v) for m, v in sorted(by_method.items())},
                "fidelity": live_fidelity.cell_fidelity(rows, runs_of[key], rates)}
        if "sdn-cep" in by_method:
            cell["compare"] = {b: live_stats.paired(by_method["sdn-cep"], by_method[b])
                               for b in BASELINES + ("oracle",) if b in by_method}
        for method, (sim, live_plans) in simulated.get(key, {}).items():
            cell["methods"][method]["sim_median_s"] = statistics.median(sim) if sim else None
            cell["methods"][method]["sim_live_plans_median_s"] = statistics.median(live_plans) if live_plans else None
        out_cells.append(cell)
    by_method = defaultdict(list)
    for r in measured:
        by_method[r["method"]].append(r)
    return {"cells": out_cells, "methods": {m: method_stats(v) for m, v in sorted(by_method.items())},
            "verdict": verdict(out_cells),
            "lost_tasks": sum(1 for r in records if r["status"] not in ("ok", "error", "timeout")),
            "failed_tasks": sum(1 for r in records if r["status"] != "ok")}


def _sort_key(key):
    return tuple((v is None, v if v is not None else 0) if not isinstance(v, str) else (False, v) for v in key)


def _spec_links(spec):
    from topologies.spec import TopologySpec
    return TopologySpec(**spec).links()


def verdict(cells):
    """Per seed, over the judged phases: where at least a quarter of the twins got another
    plan than a baseline's, did SDN-CEP win (paired p < 0.05) in at least 75% of those
    cells, for every baseline; is SDN-CEP within 10% of the Oracle in every cell; was no
    cell overloaded (and which had a stalled transfer); and is the simulator within 10%
    of every measured median."""
    seeds = defaultdict(list)
    for cell in cells:
        if cell["key"]["phase"] in JUDGED_PHASES and "compare" in cell:
            seeds[cell["key"]["seed"]].append(cell)
    out = []
    for seed, group in sorted(seeds.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        baselines = {}
        for b in BASELINES:
            judged = [live_stats.judged(c["compare"].get(b)) for c in group]
            counted = [j for j in judged if j is not None]
            baselines[b] = {"cells": len(counted), "won": sum(counted),
                            "ok": not counted or sum(counted) >= 0.75 * len(counted)}
        near_oracle = [_near_oracle(c) for c in group]
        sim = [_sim_error(c, m) for c in group for m in c["methods"]]
        sim = [e for e in sim if e is not None]
        out.append({"seed": seed, "cells": len(group), "baselines": baselines,
                    "near_oracle": sum(1 for v in near_oracle if v), "oracle_cells": sum(1 for v in near_oracle
                                                                                      if v is not None),
                    "overloaded": [c["name"] for c in group if c["fidelity"]["overloaded"]],
                    "stalled": [c["name"] for c in group if c["fidelity"].get("stalls")],
                    "sim_within": sum(1 for e in sim if e <= SIM_TOLERANCE), "sim_pairs": len(sim),
                    "sim_worst": max(sim, default=None)})
    return out


def _near_oracle(cell):
    ours, oracle = (cell["methods"].get(m, {}).get("median_s") for m in ("sdn-cep", "oracle"))
    return None if ours is None or oracle is None else ours <= ORACLE_SLACK * oracle


def _sim_error(cell, method):
    s = cell["methods"][method]
    if s.get("sim_median_s") is None or not s.get("median_s"):
        return None
    return abs(s["sim_median_s"] - s["median_s"]) / s["median_s"]


# -- text -----------------------------------------------------------------------------
def _ms(value, digits=0):
    return "-" if value is None else f"{value * 1000:.{digits}f}"


def _pct(value, digits=0):
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def latency_table(summary):
    lines = ["Latency per cell (ms; sim = the simulator on the same arrivals, planning itself;",
             "sim/live = the simulator executing the plans the live run chose):",
             f"  {'method':<20} {'ok/n':>7} {'median':>8} {'p95':>8} {'sim':>8} {'sim/live':>8} {'MAPE':>6}"]
    for cell in summary["cells"]:
        flag = "   ** EMULATION OVERLOADED **" if cell["fidelity"]["overloaded"] else ""
        lines.append(f"{cell['name']}{flag}")
        for method, s in cell["methods"].items():
            lines.append(f"  {label(method):<20} {s['ok']:>3}/{s['n']:<3} {_ms(s['median_s']):>8} {_ms(s['p95_s']):>8} "
                         f"{_ms(s.get('sim_median_s')):>8} {_ms(s.get('sim_live_plans_median_s')):>8} "
                         f"{_pct(s['mape']):>6}")
    lines += ["", "SDN-CEP against each method, task by task (twins: same arrival). diff = SDN-CEP - other,",
              "median [95% bootstrap CI] ms; p = one-sided Wilcoxon of 'SDN-CEP is faster'; counted where",
              f">= {live_stats.DIFFERENT_SHARE:.0%} of twins got another plan:"]
    for cell in summary["cells"]:
        if not cell.get("compare"):
            continue
        lines.append(f"{cell['name']}")
        for other, pair in cell["compare"].items():
            if pair is None:
                continue
            judged = live_stats.judged(pair)
            mark = "not counted" if judged is None else ("SDN-CEP faster" if judged else "not shown faster")
            differ = pair["pairs"] - pair["same_plan"]
            lines.append(f"  vs {label(other):<14} other plan {differ:>3}/{pair['pairs']:<3} "
                         f"diff {_ms(pair['median_diff_s']):>6} [{_ms(pair['ci_low_s'])}, {_ms(pair['ci_high_s'])}]"
                         f"  p = {pair['wilcoxon_p']:.2g}  {mark}")
    lines += ["", fidelity_table(summary), "", verdict_table(summary)]
    lines.append("Per method over the whole run: predicted-vs-measured MAPE, controller overhead p99, fallbacks:")
    for method, s in summary["methods"].items():
        lines.append(f"  {label(method):<20} MAPE {_pct(s['mape']):>5}  "
                     f"overhead p99 {_ms(s['overhead_p99_s'], 1):>5} ms"
                     f"  fallbacks {s['fallbacks']}  failed {s['failed']}/{s['n']}")
    lines.append(f"tasks without a result or an explicit error: {summary['lost_tasks']}")
    return "\n".join(lines)


def fidelity_table(summary):
    lines = ["Fidelity of the emulation per cell: worst node's overruns/hops (limit "
             f"{live_fidelity.OVERRUN_LIMIT:.0%}), worst link's achieved/shaped rate while busy (limit "
             f"{live_fidelity.RATE_LIMIT:.0%}), controller overhead p50/p99 ms; stalled: transfers that waited "
             f"over {live_fidelity.STALL_S:g} s for their first byte while their link carried nothing; "
             "TCP resent: segments each node's outgoing connections retransmitted:"]
    for cell in summary["cells"]:
        f = cell["fidelity"]
        node = max(f["nodes"].items(), key=lambda kv: kv[1]["share"], default=None)
        judged_links = {k: v for k, v in f["links"].items()
                        if v["ratio"] is not None and v["busy_s"] >= live_fidelity.MIN_BUSY_S}
        link = min(judged_links.items(), key=lambda kv: kv[1]["ratio"], default=None)
        node_text = "-" if node is None else f"{node[0]} {node[1]['overruns']}/{node[1]['hops']}"
        link_text = "-" if link is None else f"{link[0]} {link[1]['ratio']:.0%}"
        status = "  EMULATION OVERLOADED: " + "; ".join(f["reasons"]) if f["overloaded"] else ""
        notes = f.get("stall_notes") or []
        if notes:
            status += "  STALLED: " + "; ".join(notes[:3]) + (f" and {len(notes) - 3} more" if len(notes) > 3 else "")
        if f.get("resent"):
            status += "  TCP resent: " + ", ".join(f"{node} {n}" for node, n in f["resent"].items())
        lines.append(f"  {cell['name']:<48} {node_text:>14} {link_text:>12} "
                     f"{_ms(f['overhead_p50_s'], 1)}/{_ms(f['overhead_p99_s'], 1)}{status}")
    return "\n".join(lines)


def verdict_table(summary):
    lines = ["Verdict per seed (judged phases):"]
    for v in summary["verdict"]:
        lines.append(f"  seed {v['seed']}: {v['cells']} cells; SDN-CEP within 10% of the Oracle in "
                     f"{v['near_oracle']}/{v['oracle_cells']}; overloaded cells {len(v['overloaded'])}; "
                     f"cells with a stalled transfer {len(v.get('stalled', ()))}; "
                     f"simulator within 10% of the measured median {v['sim_within']}/{v['sim_pairs']} "
                     f"(worst {_pct(v['sim_worst'])})")
        if "repeats_apart" in v:
            lines.append(f"    repeats' medians more than {SIM_TOLERANCE:.0%} apart in {v['repeats_apart']}/"
                         f"{v['repeat_pairs']} method-cells (widest {_pct(v['repeat_spread_worst'])})")
        for b, r in v["baselines"].items():
            lines.append(f"    vs {label(b):<14} SDN-CEP faster (p < {live_stats.ALPHA}) in {r['won']}/{r['cells']} "
                         f"counted cells: {'met' if r['ok'] else 'NOT met'} (>= 75%)")
    return "\n".join(lines)


def repeats_table(summary):
    """Per judged cell and method: each repeat's median, the pooled one, the simulator's."""
    names = summary["repeats"]
    lines = [f"Repeats pooled: {', '.join(names)}. Median latency (ms) per repeat, over all their tasks, "
             "and the simulator's over the same arrivals:",
             f"  {'method':<20} {'repeats':>{6 * len(names) + 2}} {'spread':>7} {'pooled':>7} {'sim':>7} {'error':>6}"]
    for cell in summary["cells"]:
        if cell["key"]["phase"] not in JUDGED_PHASES:
            continue
        lines.append(cell["name"])
        for method, s in cell["methods"].items():
            each = " ".join(f"{_ms(m):>5}" for m in s.get("repeat_medians_s", ()))
            error = _sim_error(cell, method)
            lines.append(f"  {label(method):<20} {each:>{6 * len(names) + 2}} {_pct(s.get('repeat_spread')):>7} "
                         f"{_ms(s['median_s']):>7} {_ms(s.get('sim_median_s')):>7} {_pct(error):>6}")
    if summary.get("left_out"):
        lines.append(f"in one run only, left out: {'; '.join(summary['left_out'])}")
    lines.append("Per seed: method-cells whose repeats' medians are more than "
                 f"{SIM_TOLERANCE:.0%} apart:")
    for v in summary["verdict"]:
        lines.append(f"  seed {v['seed']}: {v['repeats_apart']}/{v['repeat_pairs']} "
                     f"(widest {_pct(v['repeat_spread_worst'])})")
    return "\n".join(lines)


def markdown_table(summary):
    """The judged cells as a Markdown table: medians, SDN-CEP against each baseline
    (twins with another plan, paired p; bold where counted and won), the simulator's
    worst error, fidelity."""
    head = ["cell"] + [label(m) for m in BASELINES + ("sdn-cep", "oracle")]
    head += [f"vs {label(b)}" for b in BASELINES] + ["sim worst", "emulation"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in summary["cells"]:
        if cell["key"]["phase"] not in JUDGED_PHASES or "compare" not in cell:
            continue
        methods = cell["methods"]
        row = [cell["name"]] + [_ms(methods.get(m, {}).get("median_s")) for m in BASELINES + ("sdn-cep", "oracle")]
        for b in BASELINES:
            pair = cell["compare"].get(b)
            if pair is None:
                row.append("-")
                continue
            text = f"{pair['pairs'] - pair['same_plan']}/{pair['pairs']}, p={pair['wilcoxon_p']:.2g}"
            row.append(f"**{text}**" if live_stats.judged(pair) else text)
        errors = [e for e in (_sim_error(cell, m) for m in methods) if e is not None]
        row.append(_pct(max(errors, default=None)))
        stalled = sum(len(v) for v in (cell["fidelity"].get("stalls") or {}).values())
        row.append(("overloaded" if cell["fidelity"]["overloaded"] else "ok")
                   + (f", {stalled} stalled" if stalled else ""))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# -- files ----------------------------------------------------------------------------
def write_all(records, out, run=None, fidelity_runs=(), simulate=True):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "records.json").write_text(json.dumps(records, default=float))
    fields = sorted({k for r in records for k in r if k not in ("paths", "overhead_parts_s", "seen")})
    with open(out / "records.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    summary = summarize(records, run, fidelity_runs, simulate)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    from scripts import live_figures
    live_figures.draw_all(summary, records, out)
    return summary


def side_by_side(summary_a, summary_b, name_a="A", name_b="B"):
    """Median latency per (cell, method) in two runs, and B's change against A."""
    def medians(summary):
        return {(cell["name"], method): stats["median_s"] for cell in summary["cells"]
                for method, stats in cell["methods"].items()}
    a, b = medians(summary_a), medians(summary_b)
    order = list(dict.fromkeys(list(a) + list(b)))
    width = max([len(label(m)) + 2 for _, m in order] + [10])
    lines = [f"Median latency (ms) per cell and method: {name_a} | {name_b} | change", ""]
    cell = None
    for key in order:
        if key[0] != cell:
            cell = key[0]
            lines.append(cell)
        ma, mb = a.get(key), b.get(key)
        change = f"{(mb - ma) / ma:+.0%}" if ma and mb else "-"
        lines.append(f"  {label(key[1]).ljust(width - 2)} {_ms(ma):>8} {_ms(mb):>8} {change:>7}")
    return "\n".join(lines)


def load_run(folder):
    """(folder, records, run.json or None, fidelity runs) of a run folder."""
    from sdncep.records import resolve_run
    out = resolve_run(folder)
    if not (out / "records.json").is_file() and any(out.glob("repeat-*/records.json")):
        raise FileNotFoundError(f"{folder} holds repeats (repeat-1, ...): give them with --repeats, "
                                f"e.g. sdncep report --repeats {out}/repeat-*")
    if not (out / "records.json").is_file():
        raise FileNotFoundError(f"{folder} has no records.json; give a run folder (results/live/..., "
                                f"results/sim/...) or its parent with a 'latest' link")
    records = json.loads((out / "records.json").read_text())
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else None
    fidelity = json.loads((out / "fidelity.json").read_text()) if (out / "fidelity.json").is_file() else ()
    return out, records, run, fidelity


def read_run(folder, simulate=True, redraw=True):
    """The summary of a run folder (live or sim records), redrawn into it if ``redraw``."""
    out, records, run, fidelity = load_run(folder)
    if redraw:
        return out, write_all(records, out, run, fidelity, simulate=simulate)
    return out, summarize(records, run, fidelity, simulate)


def report_repeats(folders, out=None, markdown=False, simulate=True):
    """The report over repeats of one scenario (scripts.live_repeats); with ``out``, the
    pooled summary and the printed report are written there."""
    from scripts import live_repeats
    loaded = [load_run(folder) for folder in folders]
    summary = live_repeats.pooled_summary([(str(path), records, run, fidelity)
                                           for path, records, run, fidelity in loaded], simulate)
    text = "\n\n".join([repeats_table(summary),
                         markdown_table(summary) if markdown else latency_table(summary)])
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
        (out / "report.txt").write_text(text + "\n")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description="Redraw a finished run (live or simulated): tables, verdicts, "
                                                 "figures; with two runs, their medians side by side; with "
                                                 "--repeats, the verdicts over repeats of one scenario.")
    parser.add_argument("runs", nargs="*", default=["results/live/latest"], metavar="RUN",
                        help="run folder(s) with records.json (default: results/live/latest); give two to compare")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulator replay")
    parser.add_argument("--markdown", action="store_true",
                        help="print the judged cells as a Markdown table (medians in ms, paired tests)")
    parser.add_argument("--repeats", action="store_true",
                        help="the runs are repeats of one scenario (same command): pool each cell's tasks "
                             "over them, judge the pooled cells and show each repeat's median")
    parser.add_argument("--out", metavar="DIR",
                        help="with --repeats: write the pooled summary.json and report.txt here")
    args = parser.parse_args(argv)
    if args.repeats:
        if len(args.runs) < 2:
            parser.error("--repeats needs two or more run folders")
        try:
            print(report_repeats(args.runs, args.out, args.markdown, simulate=not args.no_sim))
        except (FileNotFoundError, ValueError) as exc:
            parser.error(str(exc))
        return 0
    if args.out:
        parser.error("--out goes with --repeats (a single run is redrawn into its own folder)")
    if len(args.runs) > 2:
        parser.error("give one run folder, or two to compare (or --repeats)")
    try:
        read = [read_run(run, simulate=not args.no_sim, redraw=len(args.runs) == 1) for run in args.runs]
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    if len(read) == 2:
        (out_a, a), (out_b, b) = read
        print(side_by_side(a, b, out_a.name, out_b.name))
        return 0
    summary = read[0][1]
    print(markdown_table(summary) if args.markdown else latency_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

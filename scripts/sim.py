"""Evaluate any registered method in the simulator, cell by cell (``sdncep sim``).

    sdncep sim                                   # the shipped agents on their training world
    sdncep sim --config configs/testbed_sim.yaml --cells 10:50,20:100 --seeds 5
    sdncep sim --methods oracle,mypkg.policies:Greedy

A cell is ``WAN_MBIT:TASKS``: the WAN held at that rate (no per-episode draw) and that
many tasks arriving over the config's window; with ``--trace FILE`` the WAN follows the
trace (agents.traces format, the same files the testbed replays) and a cell is a task
count, labelled with the trace's mean rate. Every method sees the same episodes
(common random numbers: seed s is the same world for all). Writes to a run folder
(``results/sim/<time>``, ``latest`` links to it): ``manifest.json``, ``tasks.csv``
and ``records.json`` (one row per task, in the live benchmark's schema, so
``sdncep report`` reads both) and ``cells.csv`` (mean latency and ratio to the
Oracle per cell), and prints that table.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from agents.registry import AGENT, BASELINES, METHODS, PluginError, build_policies, label
from controller.config import ControllerConfig
from sdncep import records as run_records

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "configs" / "testbed_sim.yaml"
DEFAULT_CELLS = "5:20,10:50,20:100"
DEFAULT_METHODS = BASELINES + ("sdn-cep", "sdn-cep-dqn", "oracle")


def parse_cells(text, trace_mbit=None):
    """``WAN:TASKS,...``; with a trace (its mean WAN rate given) a cell is just ``TASKS``."""
    cells = []
    for part in filter(None, text.split(",")):
        try:
            wan, tasks = (trace_mbit, part.rpartition(":")[2]) if trace_mbit else part.split(":")
            cell = (float(wan), int(tasks))
        except ValueError:
            raise ValueError(f"a cell is WAN_MBIT:TASKS (e.g. 10:50), or TASKS with --trace, got {part!r}") from None
        if cell[0] <= 0 or cell[1] < 1:
            raise ValueError(f"cell {part!r}: the rate must be > 0 and the tasks >= 1")
        cells.append((int(cell[0]) if cell[0].is_integer() else cell[0], cell[1]))
    if not cells:
        raise ValueError("no cells given")
    return cells


def shipped_agents(model):
    return [str(p) for p in sorted((REPO / "checkpoints").glob(f"sdncep-{model}.pt"))]


def build_methods(names, store, agent_paths, top_k):
    """Policies by name: baselines and plug-ins from the registry, agents from checkpoints."""
    policies = build_policies(names, store)
    wanted = [n for n in names if METHODS.get(n) and METHODS[n].kind == AGENT]
    if wanted:
        if not agent_paths:
            raise FileNotFoundError("sdn-cep needs agent checkpoints (--agent); none shipped for this model")
        from agents.dqn import PerModelPolicy
        agent = PerModelPolicy.load(agent_paths, top_k=top_k, use_gate=False)
        if "sdn-cep" in wanted:
            policies["sdn-cep"] = agent
        if "sdn-cep-dqn" in wanted:
            policies["sdn-cep-dqn"] = agent.renamed("sdn-cep-dqn", top_k=1)
    return {n: policies[n] for n in names if n in policies}


def evaluate(policies, sim, cost, store, cells, seeds, progress=None):
    """Rows of every task of every (cell, method, seed), in the live records' schema."""
    from agents.evaluation import episode_tasks
    rows = []
    for wan, tasks in cells:
        world = dataclasses.replace(sim, bw_mbps=float(wan), bw_range_mbps=None, n_tasks=tasks, n_tasks_range=None,
                                    edge_down_prob=0.0)
        for name, policy in policies.items():
            for seed in seeds:
                for row in episode_tasks(policy, world, cost, store, seed):
                    rows.append({"source": "sim", "phase": "sim", "wan_mbit": wan, "rate": tasks / world.window_s / world.devices,
                                 "tasks": tasks, "seed": None, "episode": seed, "model": world.model, "method": name,
                                 "task_id": f"{wan}-{tasks}-{seed}-{row['task']}", "status": "ok",
                                 "e2e_s": row["latency_s"], "predicted_latency_s": row["latency_s"],
                                 "predicted_cost": row["cost"], "fallback": "infeasible" if row["infeasible"] else None,
                                 "device": row["device"], "round": seed, "seq": row["task"], "arrival_s": row["arrival_s"],
                                 "plan": row["hops"]})
                if progress is not None:
                    progress.update()
    return rows


def cell_table(rows, reference="oracle"):
    """Mean latency per (cell, method) and its ratio to ``reference`` in the same cell."""
    sums = defaultdict(lambda: [0.0, 0, 0])
    for r in rows:
        entry = sums[(r["wan_mbit"], r["tasks"], r["method"])]
        entry[0] += r["e2e_s"]
        entry[1] += 1
        entry[2] += bool(r["fallback"])
    table = []
    for (wan, tasks, method), (total, n, infeasible) in sums.items():
        ref = sums.get((wan, tasks, reference))
        mean = total / n
        table.append({"wan_mbit": wan, "tasks": tasks, "method": method, "mean_latency_s": mean, "n": n,
                      "infeasible": infeasible, f"ratio_to_{reference}": mean / (ref[0] / ref[1]) if ref else None})
    return sorted(table, key=lambda t: (t["wan_mbit"], t["tasks"], t["method"]))


def print_table(table, methods, reference="oracle", markdown=False):
    cells = sorted({(t["wan_mbit"], t["tasks"]) for t in table})
    by = {(t["wan_mbit"], t["tasks"], t["method"]): t for t in table}
    head = (["WAN Mbit/s", "tasks"] if markdown else ["cell (WAN Mbit/s : tasks)"]) + [label(m) for m in methods]
    lines = [" | ".join(head)]
    if markdown:
        lines.append(" | ".join("---" for _ in head))
    for wan, tasks in cells:
        row = [f"{wan:g}", str(tasks)] if markdown else [f"{wan:g} : {tasks}"]
        for m in methods:
            t = by.get((wan, tasks, m))
            ratio = t and t.get(f"ratio_to_{reference}")
            row.append("-" if t is None else f"{t['mean_latency_s'] * 1e3:.0f} ms"
                       + (f" ({ratio:.2f}x)" if ratio is not None and m != reference else ""))
        lines.append(" | ".join(row))
    if markdown:
        lines = [f"| {line} |" for line in lines]
    return "\n".join(lines) + f"\n\n(mean latency per task; in brackets: ratio to {label(reference)} in the cell)"


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="sdncep sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(DEFAULT_CONFIG),
                    help="simulator/cost config YAML or JSON (default: the testbed's, which the shipped agents "
                         "were trained on; 'default': the built-in defaults of agents/config.py)")
    ap.add_argument("--cells", default=DEFAULT_CELLS, help="WAN_MBIT:TASKS cells, comma-separated")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help="built-in names, 'package.module:attr' plug-ins or entry point names, comma-separated")
    ap.add_argument("--trace", help="a bandwidth trace CSV (time_s,link,mbit; the WAN follows its --trace-link "
                                    "rows as recorded); cells are then TASKS counts")
    ap.add_argument("--trace-link", default="c1-g1", help="the trace's link the WAN follows")
    ap.add_argument("--model", help="DNN model (default: the config's)")
    ap.add_argument("--agent", help="sdn-cep checkpoints, comma-separated (default: checkpoints/sdncep-<model>.pt)")
    ap.add_argument("--top-k", type=int, default=ControllerConfig().agent_top_k,
                    help="sdn-cep's shortlist (default: the controller's agent_top_k)")
    ap.add_argument("--seeds", type=int, default=3, help="episodes per cell and method (seeds 0..N-1)")
    ap.add_argument("--profiles", help="profiles folder (default: the repository's profiles/)")
    ap.add_argument("--reference", default="oracle", help="the method the ratios are to")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the docs)")
    ap.add_argument("--out", help="run folder (default: a new one under results/sim/)")
    return ap, ap.parse_args(argv)


def main(argv=None):
    ap, args = parse_args(argv)
    from agents.calibration import ProfileStore
    from agents.config import ConfigError, CoreConfig, load_config
    from agents.traces import LinkRate, TraceError, load_trace
    try:
        config = CoreConfig() if args.config == "default" else load_config(args.config)
        sim = config.sim if not args.model else dataclasses.replace(config.sim, model=args.model)
        trace_mbit = None
        if args.trace:
            trace_mbit = round(LinkRate(load_trace(args.trace), args.trace_link).mean_bps / 1e6, 3)
            sim = dataclasses.replace(sim, bw_trace=args.trace, trace_link=args.trace_link)
        cells = parse_cells(args.cells if not args.trace or args.cells != DEFAULT_CELLS else "20,50,100", trace_mbit)
    except (OSError, ValueError, ConfigError, TraceError) as exc:
        ap.error(str(exc))
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    methods = tuple(dict.fromkeys(filter(None, args.methods.split(","))))
    store = ProfileStore(args.profiles) if args.profiles else ProfileStore()
    agent_paths = args.agent.split(",") if args.agent else shipped_agents(sim.model)
    try:
        policies = build_methods(methods, store, agent_paths, args.top_k)
    except (PluginError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = [m for m in methods if m not in policies]
    if missing:
        print(f"error: {', '.join(missing)} cannot run in the simulator", file=sys.stderr)
        return 2
    if args.reference not in policies:
        print(f"error: --reference {args.reference} is not among --methods", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else run_records.new_run_dir(REPO / "results" / "sim")
    out.mkdir(parents=True, exist_ok=True)
    run_records.write_manifest(out, run_records.manifest(
        "sim", vars(args), config={"sim": dataclasses.asdict(sim), "cost": dataclasses.asdict(config.cost)},
        checkpoints=agent_paths if {"sdn-cep", "sdn-cep-dqn"} & set(methods) else (),
        profiles=args.profiles))
    seeds = range(args.seeds)
    with tqdm(total=len(cells) * len(policies) * len(seeds), desc="simulator", unit="episode") as progress:
        rows = evaluate(policies, sim, config.cost, store, cells, seeds, progress)
    with open(out / "tasks.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "records.json").write_text(json.dumps(rows))
    table = cell_table(rows, args.reference)
    with open(out / "cells.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(print_table(table, list(policies), args.reference, args.markdown))
    print(f"\ntasks, cells and manifest in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run methods over instances and summarise (what ``sdncep energy`` tabulates and plots)."""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np

from .model import Tables, build_tables, evaluate


def run(methods: Sequence, tables: Iterable[Tables], progress=None, tag: dict | None = None) -> list[dict]:
    """One row per (instance, method): total cost, mean latency, total energy, offload share,
    feasibility, devices repaired, decision time; plus ``tag``."""
    rows = []
    for idx, tab in enumerate(tables):
        for m in methods:
            t0 = time.perf_counter()
            d = m.decide(tab)
            dt = time.perf_counter() - t0
            out = evaluate(tab, d.x)
            rows.append({**(tag or {}), "instance": idx, "devices": tab.inst.n, "method": m.name,
                         "cost": float(out.total[0]), "latency_s": float(out.latency.mean()),
                         "energy_j": float(out.energy.sum()), "offload_share": float(d.x.mean()),
                         "feasible": bool(out.all_feasible[0]), "repaired": int(d.repaired),
                         "decide_ms": dt * 1e3})
        if progress:
            progress()
    return rows


def versus_optimum(rows: list[dict], reference: str = "optimum") -> list[dict]:
    """Per method: mean cost, mean and worst ratio to ``reference`` on the same instances."""
    ref = {(r.get("cell"), r["instance"]): r["cost"] for r in rows if r["method"] == reference}
    out = []
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        ratio = np.array([r["cost"] / ref[(r.get("cell"), r["instance"])] for r in mine])
        worst = int(np.argmax(ratio))
        out.append({"method": name, "instances": len(mine), "mean_cost": float(np.mean([r["cost"] for r in mine])),
                    "mean_ratio": float(ratio.mean()), "worst_ratio": float(ratio.max()),
                    "worst_instance": int(mine[worst]["instance"]),
                    "within_1pct": float(np.mean(ratio <= 1.01)),
                    "mean_latency_s": float(np.mean([r["latency_s"] for r in mine])),
                    "mean_energy_j": float(np.mean([r["energy_j"] for r in mine])),
                    "offload_share": float(np.mean([r["offload_share"] for r in mine])),
                    "feasible": float(np.mean([r["feasible"] for r in mine])),
                    "repaired_decisions": int(sum(r["repaired"] > 0 for r in mine)),
                    "decide_ms": float(np.mean([r["decide_ms"] for r in mine]))})
    return out


def battery_sweep(methods: Sequence, inst, ratios) -> list[dict]:
    """The same instance with every device's battery ratio set to each of ``ratios``."""
    rows = []
    for r in ratios:
        for row in run(methods, [build_tables(inst.with_battery_ratio(float(r)))]):
            rows.append({"battery_ratio": float(r), **row})
    return rows

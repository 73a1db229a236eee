"""Repeats of one live scenario, judged together.

One live run is one draw of each cell. The seed fixes the arrivals, not the adaptive
methods' trajectories: a heartbeat a little earlier, a frame read late by a busy
receiver, and the next plans differ, and with them the queues. Two full runs of the
same load cells (same arrivals, same code; docs/live.md) gave medians more than 10 %
apart in 3 of 168 method-cells (up to 19 %), about as often as the simulator missed
either run. A tolerance tighter than the testbed's own spread judges the draw, not
the simulator. So the tasks of every repeat of a cell are pooled here, live and
simulated (each repeat replayed with its own calibration), the report's verdicts are
taken on the pooled cells, and each method-cell's spread between the repeats is given
beside them.
"""

import statistics
from collections import defaultdict

from agents.registry import label
from scripts import live_report


class NotRepeats(ValueError):
    """The runs given are not repeats of one scenario."""


def _arrivals(rows):
    return sorted((str(r.get("round")), r["device"], r["seq"], round(float(r["arrival_s"]), 6)) for r in rows)


def common_cells(runs, cells):
    """{cell key: (indices of the runs that measured it, methods they all ran)} for the
    cells measured in two or more of ``runs`` (``cells``: each run's
    live_report.cells_of); raises :class:`NotRepeats` where such a cell's arrivals
    differ between them."""
    out = {}
    for key in set().union(*cells):
        having = [i for i, c in enumerate(cells) if key in c]
        if len(having) < 2:
            continue
        methods = sorted(set.intersection(*(set(cells[i][key]) for i in having)))
        for method in methods:
            first = _arrivals(cells[having[0]][key][method])
            for i in having[1:]:
                if _arrivals(cells[i][key][method]) != first:
                    raise NotRepeats(f"{runs[i][0]} is not a repeat of {runs[having[0]][0]}: in "
                                     f"{live_report.cell_name(key)} {label(method)} got other arrivals")
        out[key] = (having, methods)
    return out


def pooled_summary(runs, simulate=True):
    """The report's summary over repeats: ``runs`` are (name, records, run.json, fidelity)
    of two or more runs of one scenario. Each cell measured in two or more of them is
    pooled over those; each method gets ``repeat_medians_s`` (one per run, None where a
    run lacks the cell) and ``repeat_spread`` (largest over smallest, minus 1), and each
    seed's verdict how many method-cells' repeats were more than the simulator's
    tolerance apart. Cells only one run measured are left out (``left_out``)."""
    if len(runs) < 2:
        raise NotRepeats("give two or more runs to pool")
    for name, _, meta, _ in runs:
        if not meta or not meta.get("topology"):
            raise NotRepeats(f"{name} has no run.json with its topology")
        differ = _topology_differences(runs[0][2]["topology"], meta["topology"])
        if differ:
            raise NotRepeats(f"{name} is not a repeat of {runs[0][0]}: its topology differs in {', '.join(differ)}")
    cells = [live_report.cells_of(records) for _, records, _, _ in runs]
    shared = common_cells(runs, cells)
    records, fidelity, simulated = [], [], defaultdict(dict)
    for index, (_, run_records, meta, run_fidelity) in enumerate(runs):
        kept = [r for r in run_records if _pooled(shared.get(live_report.cell_key(r)), index, r["method"])]
        # twins pair within one repeat: the round names the repeat too
        records += [dict(r, round=f"{index}/{r.get('round')}", repeat=index) for r in kept]
        fidelity += [f for f in run_fidelity if index in shared.get(live_report.cell_key(f), ((), ()))[0]]
        for key, by_method in (live_report.simulate_cells(kept, meta) if simulate else {}).items():
            for method, (sim, live_plans) in by_method.items():
                pooled_sim, pooled_plans = simulated[key].get(method, ([], []))
                simulated[key][method] = (pooled_sim + sim, pooled_plans + live_plans)
    summary = live_report.summarize(records, runs[0][2], fidelity, simulated=dict(simulated))
    _add_spread(summary, records, len(runs))
    summary["repeats"] = [name for name, *_ in runs]
    summary["left_out"] = sorted(live_report.cell_name(k) for k in set().union(*cells) - set(shared))
    return summary


def _topology_differences(a, b):
    """Keys whose values differ, but for the models the workers load (a run that skipped
    the models phase loads fewer; the emulated network is the same)."""
    return sorted(k for k in set(a) | set(b) if k != "worker_models" and a.get(k) != b.get(k))


def _pooled(shared_cell, index, method):
    return shared_cell is not None and index in shared_cell[0] and method in shared_cell[1]


def _add_spread(summary, records, repeats):
    latencies = defaultdict(lambda: [[] for _ in range(repeats)])
    for r in records:
        if r["status"] == "ok":
            latencies[(live_report.cell_key(r), r["method"])][r["repeat"]].append(r["e2e_s"])
    for cell in summary["cells"]:
        key = tuple(cell["key"][k] for k in live_report.CELL_KEYS)
        for method, stats in cell["methods"].items():
            medians = [statistics.median(v) if v else None for v in latencies[(key, method)]]
            stats["repeat_medians_s"] = medians
            known = [m for m in medians if m]
            stats["repeat_spread"] = max(known) / min(known) - 1 if len(known) > 1 else None
    for verdict in summary["verdict"]:
        spreads = [s["repeat_spread"] for c in summary["cells"] if c["key"]["seed"] == verdict["seed"]
                   and c["key"]["phase"] in live_report.JUDGED_PHASES and "compare" in c
                   for s in c["methods"].values() if s.get("repeat_spread") is not None]
        verdict["repeats_apart"] = sum(1 for s in spreads if s > live_report.SIM_TOLERANCE)
        verdict["repeat_pairs"] = len(spreads)
        verdict["repeat_spread_worst"] = max(spreads, default=None)

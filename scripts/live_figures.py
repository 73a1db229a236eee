"""Figures of a live run (scripts.live_report's summary): PNG files in the run folder.

* latency_vs_load.png: median latency against the arrival rate, one panel per WAN
  rate (the paper's Fig. 5(b)); a cell whose emulation was overloaded is crossed out;
* latency_vs_bandwidth.png: against the WAN rate at a load where the edge nodes are busy;
* paired_diffs.png: SDN-CEP minus each baseline per cell, median and 95% interval;
* sim_vs_live.png: the simulator's median against the measured one, per cell and method;
* fidelity.png: per cell, the worst node's overrun share and the worst link's rate;
* models.png, wifi.png: per model, and under a WiFi-like WAN trace.
"""

from collections import defaultdict

from agents.registry import BASELINES, label
from scripts import live_fidelity

COLOURS = {"sdn-cep": "C3", "sdn-cep-dqn": "C1", "oracle": "k", "only-cloud": "C0", "only-edge": "C2",
           "neurosurgeon": "C4", "dpto": "C5"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _by_method(cells, x_key):
    """{method: [(x, median over seeds of the cell medians, overloaded)]}."""
    points = defaultdict(lambda: defaultdict(list))
    overloaded = defaultdict(bool)
    for c in cells:
        x = c["key"][x_key]
        overloaded[x] |= c["fidelity"]["overloaded"]
        for method, s in c["methods"].items():
            if s["median_s"] is not None:
                points[method][x].append(s["median_s"])
    return {m: [(x, sorted(v)[len(v) // 2], overloaded[x]) for x, v in sorted(xs.items())]
            for m, xs in points.items()}


def _latency_panel(ax, cells, x_key, xlabel, title):
    for method, points in sorted(_by_method(cells, x_key).items()):
        xs, ys, bad = zip(*points)
        ax.plot(xs, ys, marker="o", color=COLOURS.get(method), label=label(method),
                lw=2.5 if method == "sdn-cep" else 1.2)
        for x, y, b in points:
            if b:
                ax.plot([x], [y], marker="x", color="red", ms=12, mew=2)
    if any(c["fidelity"]["overloaded"] for c in cells):
        ax.plot([], [], "x", color="red", ms=10, mew=2, label="emulation overloaded")
    ax.set(xlabel=xlabel, ylabel="median latency (s)", title=title)
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def draw_all(summary, records, out):
    plt = _plt()
    cells = summary["cells"]
    load = [c for c in cells if c["key"]["phase"] == "load"]
    wans = sorted({c["key"]["wan_mbit"] for c in load})
    if load:
        fig, axes = plt.subplots(1, len(wans), figsize=(5.5 * len(wans), 4.2), squeeze=False)
        for ax, wan in zip(axes[0], wans):
            _latency_panel(ax, [c for c in load if c["key"]["wan_mbit"] == wan], "rate",
                           "tasks/s per device (two devices)", f"latency against load, WAN {wan:g} Mbit/s")
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "latency_vs_load.png", dpi=120)
        plt.close(fig)
    sweep = [c for c in cells if c["key"]["phase"] == "bandwidth"]
    if sweep:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        rate = sweep[0]["key"]["rate"]
        _latency_panel(ax, sweep, "wan_mbit", "WAN bandwidth (Mbit/s)",
                       f"latency against bandwidth at {rate:g}/s per device")
        ax.set_xscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "latency_vs_bandwidth.png", dpi=120)
        plt.close(fig)
    judged = [c for c in cells if c.get("compare")]
    if judged:
        _paired(plt, judged, out)
        _sim_vs_live(plt, judged, out)
    if cells:
        _fidelity(plt, cells, out)
    _wifi(plt, records, out)
    _models(plt, cells, out)


def _paired(plt, cells, out):
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(cells) * len(BASELINES) + 1.5))
    y, ticks, names = 0, [], []
    for c in cells:
        for i, b in enumerate(BASELINES):
            pair = c["compare"].get(b)
            if pair is None:
                continue
            counted = pair["different_share"] >= 0.25
            ax.errorbar([pair["median_diff_s"] * 1000], [y],
                        xerr=[[max(pair["median_diff_s"] - pair["ci_low_s"], 0) * 1000],
                              [max(pair["ci_high_s"] - pair["median_diff_s"], 0) * 1000]],
                        fmt="o" if counted else "o", mfc=COLOURS[b] if counted else "white", color=COLOURS[b],
                        label=label(b) if c is cells[0] else None)
            y += 1
        ticks.append(y - 2)
        names.append(c["name"])
        y += 1
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="SDN-CEP minus baseline, ms (median, 95% CI; hollow: < 25% of twins differ)",
           title="task-by-task differences")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "paired_diffs.png", dpi=120)
    plt.close(fig)


def _sim_vs_live(plt, cells, out):
    points = [(s["median_s"], s["sim_median_s"], m) for c in cells for m, s in c["methods"].items()
              if s.get("sim_median_s") and s.get("median_s")]
    if not points:
        return
    fig, ax = plt.subplots(figsize=(5, 5))
    for method in sorted({m for *_, m in points}):
        xs, ys = zip(*[(x, y) for x, y, m in points if m == method])
        ax.scatter(xs, ys, color=COLOURS.get(method), label=label(method), s=18)
    low = min(min(x, y) for x, y, _ in points) * 0.8
    high = max(max(x, y) for x, y, _ in points) * 1.25
    ax.plot([low, high], [low, high], color="k", lw=0.8)
    ax.fill_between([low, high], [0.9 * low, 0.9 * high], [1.1 * low, 1.1 * high], color="grey", alpha=0.2,
                    label="within 10%")
    ax.set(xscale="log", yscale="log", xlabel="measured median (s)", ylabel="simulated median (s)",
           title="simulator against the testbed", xlim=(low, high), ylim=(low, high))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "sim_vs_live.png", dpi=120)
    plt.close(fig)


def _fidelity(plt, cells, out):
    names = [c["name"] for c in cells]
    node = [max((n["share"] for n in c["fidelity"]["nodes"].values()), default=0.0) * 100 for c in cells]
    links = [min((l["ratio"] for l in c["fidelity"]["links"].values()
                  if l["ratio"] is not None and l["busy_s"] >= live_fidelity.MIN_BUSY_S), default=None)
             for c in cells]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.3 * len(cells) + 2), sharey=True)
    a.barh(range(len(cells)), node, color=["red" if v > live_fidelity.OVERRUN_LIMIT * 100 else "C0" for v in node])
    a.axvline(live_fidelity.OVERRUN_LIMIT * 100, color="red", lw=1)
    a.set(xlabel="worst node: hops overrun (%)", title="compute (paced)")
    b.barh([i for i, v in enumerate(links) if v is not None], [v * 100 for v in links if v is not None],
           color=["red" if v < live_fidelity.RATE_LIMIT else "C2" for v in links if v is not None])
    b.axvline(live_fidelity.RATE_LIMIT * 100, color="red", lw=1)
    b.set(xlabel="worst link: achieved / shaped rate while busy (%)", title="links", xlim=(0, 110))
    a.set_yticks(range(len(cells)), names, fontsize=7)
    a.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "fidelity.png", dpi=120)
    plt.close(fig)


def _wifi(plt, records, out):
    wifi = [r for r in records if r.get("phase") == "wifi" and r["status"] == "ok"]
    if not wifi:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for method in sorted({r["method"] for r in wifi}):
        rows = sorted((r for r in wifi if r["method"] == method), key=lambda r: r["seq"])
        ax.plot([r["seq"] for r in rows], [r["e2e_s"] for r in rows], marker=".", label=label(method),
                color=COLOURS.get(method))
    ax.set(xlabel="task", ylabel="latency (s)", title="WiFi-like random bandwidth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "wifi.png", dpi=120)
    plt.close(fig)


def _models(plt, cells, out):
    per_model = [c for c in cells if c["key"]["phase"] == "models"]
    if not per_model:
        return
    models = [c["key"]["model"] for c in per_model]
    methods = ("only-cloud", "only-edge", "sdn-cep")
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.25
    for i, method in enumerate(methods):
        values = [(c["methods"].get(method) or {}).get("median_s") or 0 for c in per_model]
        ax.bar([j + i * width for j in range(len(models))], values, width, label=label(method),
               color=COLOURS.get(method))
    ax.set_xticks([j + width for j in range(len(models))], models)
    ax.set(ylabel="median latency (s)", title="cloud / edge / collaborative per model")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "models.png", dpi=120)
    plt.close(fig)

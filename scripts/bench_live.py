"""Live benchmark: SDN-CEP against the baselines on the emulated testbed.

    python -m scripts.bench_live              # quick: about 6 minutes
    python -m scripts.bench_live --full       # 4 loads x 2 WAN rates x 3 seeds, a bandwidth sweep, 5 models

Starts OVS, ryu-manager (controller.app with the trained agents) and the edge-cloud
topology with a paced worker on every edge and cloud host (topologies.spec). The
main phase is a load sweep: for each WAN rate (set live with tc, then measured by
the controller) and each arrival rate, both end devices send real images, each a
Poisson process, under every method in turn (the same arrivals for each): for every
task a device asks the controller for a plan (a packet-in), the controller pins the
transfers, and the device records predicted and measured latency with the per-stage
breakdown. Around every run the workers' pacing counters are read, for the fidelity
monitor. Writes records (JSON, CSV), run.json (what made the run), fidelity.json,
a summary (JSON) and figures (PNG) to --out, and prints the report.
"""

import argparse
import contextlib
import functools
import json
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from agents.registry import BENCHMARKED, METHODS, valid_method_name
from controller.config import ControllerConfig
from sdncep import records as run_records
from runtime.device import save_prepared
from scripts import live_report
from topologies.schedule import ScheduleRunner, TraceError, load_trace, wifi_trace, write_trace
from topologies.spec import SpecError, TopologySpec
from topologies.testbed import Testbed, TestbedError

REPO = Path(__file__).resolve().parent.parent
WAN = ("c1", "g1")
WORKER_PORT = 9000
AGENT_TOP_K = ControllerConfig().agent_top_k   #: sdn-cep's shortlist; in run.json, so the simulator replays it
PHASES = ("load", "bandwidth", "wifi", "models")


# Tasks arrive as Poisson processes (as in the simulator the agent was trained in),
# one per end device, all devices at once: `per_cell` tasks at `rate`/s from each
# device. Devices have their own uplinks and share the edge nodes and the WAN. The
# loads are where the methods' plans part: at 2 tasks/s per device the edge nodes
# are mostly idle; at 6-8 the nearest one alone (Only-Edge, Neurosurgeon) or the
# biggest one alone (DPTO) cannot keep up, and the WAN cannot carry every input.
# The bandwidth sweep runs at 8/s, where the edge nodes are busy at every WAN rate;
# at 6/s seed 0's arrivals leave them light enough that DPTO's plans, though they
# differ, cost the same as the Oracle's at 10 and 50 Mbit/s (docs/live.md).
DEVICES = ("d1", "d2")


def settings(full):
    if full:
        return {"loads": (2, 4, 6, 8), "wans": (10, 20), "per_cell": 30, "seeds": (0, 1, 2), "rounds": 1,
                "arrivals": "poisson", "sweep_rate": 8, "sweep_wans": (5, 10, 20, 50), "sweep_per_cell": 20,
                "models": ("alexnet", "resnet18", "googlenet", "vgg16", "mobilenet_v2"), "wifi_s": 60}
    return {"loads": (2, 6, 8), "wans": (10, 20), "per_cell": 12, "seeds": (0,), "rounds": 1, "arrivals": "poisson",
            "sweep_rate": 8, "sweep_wans": (), "sweep_per_cell": 0,
            "models": ("alexnet", "resnet18", "googlenet"), "wifi_s": 20}


def rounds_of(methods, per_cell, rounds):
    """The bandwidth cell's runs, in order: (round, method, tasks per device).

    A cell's tasks are split into rounds, and the methods run in one order, then in
    reverse (A B C, C B A, ...): the machine's speed drifts over minutes, and a drift
    that is linear in time then costs every method the same. Every method meets the
    same arrivals in a round (its seed is the round's).
    """
    runs = []
    for index in range(rounds):
        count = per_cell // rounds + (1 if index < per_cell % rounds else 0)
        order = methods if index % 2 == 0 else tuple(reversed(methods))
        runs += [(index, method, count) for method in order if count]
    return runs


class LiveBench:
    """Runs tasks on the testbed from long-lived devices (runtime.device --serve, one
    process per device for the whole benchmark): their result listeners and their
    connections to the workers stay up between runs, as a device's would."""

    def __init__(self, bed, out, model):
        self.bed, self.out, self.model = bed, out, model
        self.records = []
        self.fidelity = []   # per run and node: the paced workers' counters over that run
        self._pacing = {}
        self._devices = {}
        # every device sends the same images: resize them and compute their features once
        self.prepared = out / "prepared-images.npz"
        save_prepared(self.prepared)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """End the device processes (end of their commands)."""
        for process in self._devices.values():
            try:
                process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
        self._devices.clear()

    def _device(self, name):
        process = self._devices.get(name)
        if process is None or process.poll() is not None:
            host = self.bed.net[name]
            workers = ",".join(f"{self.bed.net[n].IP()}:{WORKER_PORT}" for n, role, _ in self.bed.spec.hosts()
                               if role != "device")
            process = host.popen([sys.executable, "-m", "runtime.device", "--serve", "--ip", host.IP(),
                                  "--prepared", str(self.prepared), "--connect", workers], cwd=str(REPO),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self._devices[name] = process
        return process

    def run_tasks(self, method, count, cell, model=None, arrivals="poisson", rate=3.0, hops=None, timeout=180,
                  seed=0, devices=("d1",), round_no=0):
        """Run ``count`` tasks from each of ``devices`` at once; returns their records
        (also kept in self.records, with the ``cell`` fields and ``round_no``). Device i
        draws its arrivals with seed + i, and all devices start them at the same
        instant, so every method meets the same arrival pattern."""
        model = model or self.model
        tag = ":".join(str(v) for v in cell.values())
        runs = []
        for index, name in enumerate(devices):
            path = self.out / "raw" / f"{tag}-{method}-{model}-{count}-{name}-{len(self.records)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            command = {"method": method, "model": model, "count": count, "arrivals": arrivals, "rate": rate,
                       "seed": seed + index, "tag": tag, "hops": hops or "", "timeout": 60, "out": str(path)}
            process = self._device(name)
            try:
                process.stdin.write((json.dumps(command) + "\n").encode())
                process.stdin.flush()
            except OSError as exc:
                raise TestbedError(f"device {name} is gone: {exc}") from None
            runs.append((name, path, process))
        deadline = time.monotonic() + timeout
        start_together([process for _, _, process in runs], timeout=60)
        rows = []
        for name, path, process in runs:
            line = _line_starting(process, ("done", "error"), deadline)
            if not line.startswith("done") or not path.exists():
                raise TestbedError(f"device {name} run failed: {line or 'no answer'}")
            rows.extend(dict(row, **cell, model=model, device=name, round=round_no)
                        for row in json.loads(path.read_text()))
        self.records.extend(rows)
        self.drain()
        self._count_pacing(dict(cell, model=model, method=method, round=round_no))
        return rows

    def pacing(self):
        """{node: its worker's pacing counters} from the heartbeats in the controller's view."""
        return {n["name"]: n["load"]["pacing"] for n in self.bed.rest("/sdncep/v1/nodes")
                if (n.get("load") or {}).get("pacing")}

    def _count_pacing(self, run):
        """What the paced workers counted since the last run, charged to ``run``."""
        now = self.pacing()
        for node, counters in sorted(now.items()):
            before = self._pacing.get(node, {})
            delta = {k: v - before.get(k, 0) for k, v in counters.items() if k != "worst_overrun_s"}
            if delta["paced_hops"] > 0:
                self.fidelity.append(dict(run, node=node, **delta))
        self._pacing = now

    def set_wan(self, mbit):
        """Change the WAN rate and wait until the controller has measured it."""
        self.bed.set_link_rate(*WAN, mbit, remeasure=True)

        def measured():
            both = [self.bed.link_view(*WAN), self.bed.link_view(*reversed(WAN))]
            return all(l["capacity_mbps"] and abs(l["capacity_mbps"] - mbit) <= 0.15 * mbit for l in both)

        self.bed.wait_until(measured, timeout=20, interval=0.2, what=f"WAN measured at {mbit} Mbit/s")

    def warm_up_and_calibrate(self, models):
        """Warm every worker up, then feed measured compute and transfer times back.

        Three spaced tasks per worker and model with a fixed single-hop plan; the
        last two give the corrections (:func:`calibration_of`). The controller's
        planner then costs plans with them (PUT /sdncep/v1/calibration).
        """
        samples = []
        nodes = [name for name, role, _ in self.bed.spec.hosts() if role != "device"]
        for model in models:
            for node in nodes:
                rows = self.run_tasks("fixed", 3, {"phase": "warmup"}, model=model, arrivals="fixed", rate=2.0,
                                      hops=f"{node}:0-{num_segments(model)}")
                samples += [(node, row) for row in rows[1:]]
        applied = self.bed.rest_put("/sdncep/v1/calibration", calibration_of(samples))
        (self.out / "calibration.json").write_text(json.dumps(applied, indent=1))
        return applied

    def run_cell(self, cell, methods, per_cell, rate, rounds, arrivals, progress):
        """Every method on the same arrivals, in rounds (rounds_of)."""
        for round_no, method, count in rounds_of(methods, per_cell, rounds):
            self.run_tasks(method, count, cell, arrivals=arrivals, rate=rate, devices=DEVICES, round_no=round_no,
                           seed=1000 * cell.get("seed", 0) + 10 * round_no)
            progress.update()

    def drain(self, timeout=6.0):
        """Pause between runs until the view is quiet: every task has ended, but port
        counters show a transfer for up to two polling periods after it (and the
        planner would then see the next run's paths as busy), and the nodes'
        heartbeats (every 0.5 s) may still report the last run's work."""
        time.sleep(1.0)

        def quiet():
            return all((l["rate_mbps"] or 0) < max(0.02 * (l["capacity_mbps"] or 0), 0.2)
                       for l in self.bed.rest("/sdncep/v1/links?kind=switch"))

        try:
            self.bed.wait_until(quiet, timeout=timeout - 1.0, interval=0.25, what="quiet links")
        except TestbedError:
            pass  # someone else's traffic: the run goes on, and its records say what it met


def calibration_of(samples):
    """Corrections from warm-up tasks, given as (node, record) with single-hop plans.

    Per node, measured / predicted compute time (not counting the wait for the node:
    on a slow node the warm-up tasks queue behind each other); on the cloud leg, the
    time the input's bytes took to arrive (first to last) over the predicted transfer
    time; and what a task took beyond that, its wait for the node and its compute
    (plan round trip, setting up the send, the result's way back). Setting up is kept
    out of the network factor: it is paid once per task, while the factor stretches
    every byte, and back-to-back inputs over a busy WAN overlap it (a factor that
    included it made the simulator's Only-Cloud queues 10-13% too long).
    """
    compute, network, overhead = {}, [], []
    for node, row in samples:
        if row["status"] != "ok":
            continue
        predicted = row["predicted_compute_s"]
        compute.setdefault(node, []).append(row["h0_compute_s"] / predicted)
        if node == "cloud" and row["predicted_trans_s"] > 0:
            network.append(row["h0_recv_s"] / row["predicted_trans_s"])
        overhead.append(row["e2e_s"] - row["h0_recv_s"] - row["h0_queue_s"] - row["h0_compute_s"])
    clamp = lambda v, low=0.2, high=5.0: min(max(v, low), high)  # noqa: E731
    return {"compute": {n: clamp(statistics.median(v)) for n, v in compute.items()},
            "network": clamp(statistics.median(network)) if network else 1.0,
            "overhead_s": clamp(statistics.median(overhead), 0.0, 1.0) if overhead else 0.0}


def start_together(processes, timeout, lead_s=0.05):
    """Wait until every device (runtime.device --sync-start) says 'ready', then give
    them all one start time. A device that exits or stays silent gets none; the
    caller reports its output."""
    deadline = time.monotonic() + timeout
    ready = [process for process in processes if _says_ready(process, deadline)]
    start = f"{time.time() + lead_s:.6f}\n".encode()
    for process in ready:
        try:
            process.stdin.write(start)
            process.stdin.flush()
        except OSError:  # it exited after all
            pass


def _says_ready(process, deadline):
    return _line_starting(process, ("ready", "error"), deadline) == "ready"


def _line_starting(process, starts, deadline):
    """The first line of ``process``'s output that starts with one of ``starts`` ('' if
    none comes by ``deadline`` or it exits); other lines are passed over."""
    while (left := deadline - time.monotonic()) > 0 and select.select([process.stdout], [], [], left)[0]:
        line = process.stdout.readline()
        if not line:
            return ""
        text = line.decode(errors="replace").strip()
        if text.startswith(starts):
            return text
    return ""


@functools.lru_cache(maxsize=None)
def num_segments(model):
    from agents.calibration import ProfileStore
    return ProfileStore().reference(model).m  # reads the profiles once per model


def controller_config(run_dir, agent, predictor, methods=()):
    """The controller's settings for this run; plug-in methods are served by name."""
    settings = {"worker_port": WORKER_PORT, "agent_checkpoint": agent or "", "predictor_path": predictor or "",
                "agent_top_k": AGENT_TOP_K, "policies": ",".join(m for m in methods if m not in METHODS)}
    conf = Path(run_dir) / "bench-controller.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("[sdncep]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items() if v != ""))
    return conf, settings


def shipped_agents():
    """Every shipped SDN-CEP agent checkpoint, comma-separated (one per model)."""
    return ",".join(str(p) for p in sorted((REPO / "checkpoints").glob("sdncep-*.pt")))


def agent_run(kind, args, **topology):
    """(run folder, controller config file, topology) of a live run of ``kind`` (chaos,
    soak) with the shipped agents on AlexNet; its manifest is written."""
    out = Path(args.out) if args.out else run_records.new_run_dir(REPO / "results" / kind)
    out.mkdir(parents=True, exist_ok=True)
    agents = shipped_agents()
    conf, controller = controller_config(out, agents, None)
    spec = TopologySpec(worker_port=WORKER_PORT, worker_models="alexnet", **topology)
    run_records.write_manifest(out, run_records.manifest(kind, vars(args), topology=spec.__dict__,
                                                         controller=controller, checkpoints=agents.split(",")))
    return out, conf, spec


def _numbers(text, kind=float):
    """'5,10' -> (5, 10): whole numbers stay ints, so cells print as 5 and not 5.0."""
    values = tuple(kind(v) for v in text.split(","))
    return tuple(int(v) if float(v).is_integer() else v for v in values)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="4 loads x 2 WAN rates x 3 seeds, a bandwidth sweep at load, 5 models (about an hour)")
    parser.add_argument("--model", default="alexnet", help="model of the load and bandwidth phases")
    parser.add_argument("--methods", default=",".join(BENCHMARKED),
                        help="built-in methods, 'package.module:attr' plug-ins (on the Python path of the "
                             "controller) or entry point names, comma-separated")
    parser.add_argument("--loads", help="tasks/s per device of the load phase, comma-separated")
    parser.add_argument("--bandwidths", help="WAN Mbit/s of the load phase, comma-separated")
    parser.add_argument("--seeds", help="arrival seeds, comma-separated (each seed repeats the load phase)")
    parser.add_argument("--per-cell", type=int, help="tasks from each device per cell and method")
    parser.add_argument("--rounds", type=int, help="split each cell's tasks into rounds, methods in turn")
    parser.add_argument("--arrivals", choices=("poisson", "batch"),
                        help="Poisson at the cell's rate, or each device's tasks all at once")
    parser.add_argument("--topology", help="YAML file of topology keys (topologies/spec.py) to change")
    parser.add_argument("--agent", default=shipped_agents(), help="SDN-CEP agent checkpoints, comma-separated, one per "
                                                       "model (default: checkpoints/sdncep-*.pt)")
    parser.add_argument("--predictor", default=str(REPO / "checkpoints" / "complexity.json"))
    parser.add_argument("--trace", help="bandwidth trace CSV (time_s,link,mbit) replayed in the wifi phase instead "
                                        "of the generated WiFi-like one; the same files `sdncep sim --trace` reads")
    parser.add_argument("--skip", default="", help=f"phases to skip, of {','.join(PHASES)}")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the whole benchmark this many times (same arrivals; folders repeat-1, ...) and "
                             "judge the repeats pooled (scripts/live_repeats.py)")
    parser.add_argument("--out", help="run folder (default: a new one under results/live/, which 'latest' "
                                      "links to)")
    args = parser.parse_args(argv)
    plan = settings(args.full)
    try:
        for flag, key, kind in (("loads", "loads", float), ("bandwidths", "wans", float), ("seeds", "seeds", int)):
            if getattr(args, flag):
                plan[key] = _numbers(getattr(args, flag), kind)
    except ValueError as exc:
        parser.error(f"--loads, --bandwidths and --seeds take comma-separated numbers: {exc}")
    for key in ("per_cell", "rounds", "arrivals"):
        if getattr(args, key):
            plan[key] = getattr(args, key)
    if min(plan["loads"] + plan["wans"], default=1) <= 0 or plan["per_cell"] < 1 or plan["rounds"] < 1:
        parser.error("loads, bandwidths, --per-cell and --rounds must be positive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.skip = set(filter(None, args.skip.split(",")))
    if args.skip - set(PHASES):
        parser.error(f"--skip takes phases of {', '.join(PHASES)}")
    args.methods = tuple(dict.fromkeys(filter(None, args.methods.split(","))))
    bad = [m for m in args.methods if not valid_method_name(m)]
    if bad or not args.methods:
        parser.error(f"--methods: not a method name: {', '.join(bad) or '(none)'}")
    return args, plan


def main(argv=None):
    args, plan = parse_args(argv)
    if not {"sdn-cep", "sdn-cep-dqn"} & set(args.methods):
        args.agent = args.predictor = None
    for path in filter(None, (args.agent or "").split(",") + [args.predictor]):
        if not Path(path).exists():
            print(f"error: {path} not found; train it with scripts/train_agent.py (see README)", file=sys.stderr)
            return 2
    out = Path(args.out) if args.out else run_records.new_run_dir(REPO / "results" / "live")
    out.mkdir(parents=True, exist_ok=True)
    if args.repeats == 1:
        return run_once(args, plan, out, argv)
    folders = [out / f"repeat-{k}" for k in range(1, args.repeats + 1)]
    codes = []
    for k, folder in enumerate(folders, 1):
        print(f"repeat {k} of {args.repeats}: {folder}", flush=True)
        codes.append(run_once(args, plan, folder, argv))
        if codes[-1] == 2:          # a bad setting: the other repeats would fail alike
            return 2
    run_records.write_manifest(out, run_records.manifest("live-repeats", vars(args), settings=plan,
                                                         repeats=[str(f) for f in folders]))
    finished = [f for f in folders if (f / "records.json").is_file()]
    if len(finished) < 2:
        print(f"error: only {len(finished)} of {args.repeats} repeats finished; nothing to pool", file=sys.stderr)
        return max(codes)
    print(live_report.report_repeats(finished, out))
    print(f"\npooled summary and report in {out}; each repeat's run in {', '.join(f.name for f in folders)}")
    return max(codes)


def run_once(args, plan, out, argv=None):
    """One whole benchmark into ``out``: 0 if no task was lost, 1 if one was or the
    testbed failed, 2 on a bad setting."""
    methods, skip = args.methods, args.skip
    out.mkdir(parents=True, exist_ok=True)
    models = tuple(dict.fromkeys((args.model,) + (plan["models"] if "models" not in skip else ())))
    try:
        custom = TopologySpec.from_yaml(args.topology).__dict__ if args.topology else {}
        spec = TopologySpec(**dict(custom, worker_port=WORKER_PORT, worker_models=",".join(models)))
        spec.check_budget()
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    trace = None
    if "wifi" not in skip:
        try:
            trace = load_trace(args.trace) if args.trace else wifi_trace("c1-g1", plan["wifi_s"], seed=0,
                                                                         mean_mbit=20, high_mbit=50)
            spec.check_trace(trace, args.trace or "the WiFi trace")
        except (TraceError, SpecError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        plan["wifi_s"] = max(c.time_s for c in trace) + 1.0
    started = time.monotonic()
    cell_runs = len(rounds_of(methods, plan["per_cell"], plan["rounds"]))
    sweep_runs = len(rounds_of(methods, plan["sweep_per_cell"], 1)) if plan["sweep_per_cell"] else 0
    steps = ((0 if "load" in skip else len(plan["seeds"]) * len(plan["wans"]) * len(plan["loads"]) * cell_runs)
             + (0 if "bandwidth" in skip else len(plan["sweep_wans"]) * sweep_runs)
             + (0 if "wifi" in skip else 1) + (0 if "models" in skip else len(plan["models"]) * 3))
    run = {"argv": sys.argv[1:] if argv is None else list(argv), "settings": plan, "methods": methods,
           "topology": {k: v for k, v in spec.__dict__.items()}, "agents": args.agent or "",
           "agent_top_k": AGENT_TOP_K}
    conf, controller_settings = controller_config(out, args.agent, args.predictor, methods)
    run_records.write_manifest(out, run_records.manifest(
        "live", vars(args), topology=run["topology"], controller=controller_settings,
        checkpoints=(args.agent or "").split(",") + [args.predictor], settings=plan))
    try:
        with Testbed(spec, controller_args=["--config-file", str(conf)]) as bed, contextlib.ExitStack() as stack:
            print(f"testbed up; controller log {bed.controller_log}", flush=True)
            bed.wait_until(bed.view_complete, timeout=180, interval=0.5, what="a complete view")
            bench = stack.enter_context(LiveBench(bed, out, args.model))
            run["calibration"] = bench.warm_up_and_calibrate(models)
            print(f"calibration (measured/predicted): {run['calibration']}", flush=True)
            progress = tqdm(total=steps, desc="live benchmark", unit="run")
            if "load" not in skip:
                for seed in plan["seeds"]:
                    for wan in plan["wans"]:
                        bench.set_wan(wan)
                        for rate in plan["loads"]:
                            bench.run_cell({"phase": "load", "wan_mbit": wan, "rate": rate, "seed": seed}, methods,
                                           plan["per_cell"], rate, plan["rounds"], plan["arrivals"], progress)
            if "bandwidth" not in skip and plan["sweep_per_cell"]:
                for wan in plan["sweep_wans"]:
                    bench.set_wan(wan)
                    cell = {"phase": "bandwidth", "wan_mbit": wan, "rate": plan["sweep_rate"], "seed": 0}
                    bench.run_cell(cell, methods, plan["sweep_per_cell"], plan["sweep_rate"], 1, plan["arrivals"],
                                   progress)
            wifi_methods = [m for m in ("neurosurgeon", "dpto", "sdn-cep") if m in methods] or list(methods)
            if "wifi" not in skip:
                runner = ScheduleRunner(trace, lambda ends, mbit: bed.set_link_rate(*ends, mbit))
                runner.start()
                count = max(int(plan["wifi_s"] / len(wifi_methods)), 1)
                for method in wifi_methods:
                    bench.run_tasks(method, count, {"phase": "wifi", "rate": 1}, arrivals="fixed", rate=1.0)
                runner.stop()
                (out / "wifi_trace.json").write_text(json.dumps(
                    [{"t": t, "mbit": c.mbit} for t, c in runner.applied]))
                with open(out / "wifi_trace.csv", "w", newline="", encoding="utf-8") as handle:
                    write_trace(trace, handle)            # replay it: --trace, or sdncep sim --trace
                progress.update()
            if "models" not in skip:
                bench.set_wan(20)
                for model in plan["models"]:
                    for method in ("only-cloud", "only-edge", "sdn-cep"):
                        bench.run_tasks(method, 4, {"phase": "models", "wan_mbit": 20, "rate": 3}, model=model,
                                        rate=3.0)
                        progress.update()
            progress.close()
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    run["took_s"] = time.monotonic() - started
    (out / "run.json").write_text(json.dumps(run, indent=1, default=str))
    (out / "fidelity.json").write_text(json.dumps(bench.fidelity, indent=1))
    summary = live_report.write_all(bench.records, out, run, bench.fidelity)
    print(live_report.latency_table(summary))
    print(f"\nrecords, summary and figures in {out}; took {run['took_s']:.0f} s")
    return 0 if summary["lost_tasks"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

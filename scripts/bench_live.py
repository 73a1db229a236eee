"""Live benchmark: SDN-CEP against the baselines on the emulated testbed.

    python -m scripts.bench_live              # quick: a few minutes
    python -m scripts.bench_live --full       # more bandwidths, task counts, models

Starts OVS, ryu-manager (controller.app with the trained agent) and the edge-cloud
topology with a worker on every edge and cloud host. For each WAN bandwidth level
(set live with tc, then measured by the controller) and method, both end devices send
real images, each arriving as a Poisson process: for every task a device asks the
controller for a plan (a packet-in), the controller pins the transfers, and the device
records predicted and measured latency with the per-stage breakdown. Writes records (JSON, CSV), a
summary (JSON), figures (PNG) to --out and prints the latency table.
"""

import argparse
import functools
import json
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from runtime.device import save_prepared
from scripts import live_report
from topologies.schedule import ScheduleRunner, wifi_trace
from topologies.spec import SpecError, TopologySpec
from topologies.testbed import Testbed, TestbedError

REPO = Path(__file__).resolve().parent.parent
BASELINES = ("only-cloud", "only-edge", "neurosurgeon", "dpto")
# sdn-cep: the DQN's shortlist re-ranked by the cost model; sdn-cep-dqn: the DQN alone
METHODS = BASELINES + ("sdn-cep", "sdn-cep-dqn", "oracle")
WAN = ("c1", "g1")
WORKER_PORT = 9000


# Tasks arrive as Poisson processes (as in the simulator the agent was trained in),
# one per end device, all devices at once: `per_cell` tasks at `rate`/s from each
# device per bandwidth cell; k tasks in all over `window_s` in the tasks sweep, so
# more tasks means more load. Devices have their own uplinks and share the edge
# nodes and the WAN.
DEVICES = ("d1", "d2")


def settings(full):
    if full:
        return {"bandwidths": (1, 2, 5, 10, 20, 50, 100), "tasks": (4, 8, 16, 32), "per_cell": 36, "rate": 3.0,
                "arrivals": "poisson", "window_s": 4.0, "rounds": 6,
                "models": ("alexnet", "resnet18", "googlenet", "vgg16", "mobilenet_v2"), "wifi_s": 60}
    return {"bandwidths": (5, 10, 20, 50), "tasks": (4, 12), "per_cell": 8, "rate": 3.0, "arrivals": "poisson",
            "window_s": 4.0, "rounds": 1, "models": ("alexnet", "resnet18", "googlenet"), "wifi_s": 20}


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
    def __init__(self, bed, out, model, seed=0):
        self.bed, self.out, self.model, self.seed = bed, out, model, seed
        self.records = []
        # every device run sends the same images: resize them and compute their
        # features once, not in each of the ~100 device processes of a run
        self.prepared = out / "prepared-images.npz"
        save_prepared(self.prepared)

    def run_tasks(self, method, count, tag, model=None, arrivals="poisson", rate=3.0, hops=None, timeout=180,
                  seed=None, devices=("d1",), round_no=0):
        """Run ``count`` tasks from each of ``devices`` at once; returns their records
        (also kept in self.records, marked with ``round_no``). Device i draws its
        arrivals with seed + i, and all devices start them at the same instant, so
        every method meets the same arrival pattern."""
        model = model or self.model
        seed = self.seed if seed is None else seed
        runs = []
        for index, name in enumerate(devices):
            host = self.bed.net[name]
            path = self.out / "raw" / f"{tag}-{method}-{model}-{count}-{name}-{len(self.records)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            args = ["--ip", host.IP(), "--method", method, "--model", model, "--count", str(count),
                    "--arrivals", arrivals, "--rate", str(rate), "--seed", str(seed + index), "--tag", tag,
                    "--out", str(path), "--timeout", "60", "--sync-start", "--prepared", str(self.prepared)]
            if hops:
                args += ["--hops", hops]
            process = host.popen([sys.executable, "-m", "runtime.device", *args], cwd=str(REPO),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            runs.append((name, path, process))
        start_together([process for _, _, process in runs], timeout=60)
        rows = []
        for name, path, process in runs:
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            if process.returncode != 0 or not path.exists():
                text = output.decode(errors="replace")[-2000:]
                raise TestbedError(f"device {name} run failed ({process.returncode}): {text}")
            rows.extend(dict(row, phase=tag.split(":")[0], device=name, round=round_no)
                        for row in json.loads(path.read_text()))
        self.records.extend(rows)
        return rows

    def set_wan(self, mbit):
        """Change the WAN rate and wait until the controller has measured it."""
        self.bed.set_link_rate(*WAN, mbit)

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
        for model in models:
            for node in ("e1", "e2", "e3", "cloud"):
                rows = self.run_tasks("fixed", 3, "warmup", model=model, arrivals="fixed", rate=2.0,
                                      hops=f"{node}:0-{num_segments(model)}")
                samples += [(node, row) for row in rows[1:]]
        applied = self.bed.rest_put("/sdncep/v1/calibration", calibration_of(samples))
        (self.out / "calibration.json").write_text(json.dumps(applied, indent=1))
        return applied

    def drain(self):
        """Pause between cells: every task has ended, but the nodes' heartbeats (every
        0.5 s) may still report the last cell's work."""
        time.sleep(1.0)


def calibration_of(samples):
    """Corrections from warm-up tasks, given as (node, record) with single-hop plans.

    Per node, measured / predicted compute time; on the cloud leg, measured /
    predicted transfer time; and what a task took beyond its transfers, its wait for
    the node and its compute (plan round trip, connections, framing). The wait is
    left out: the planner predicts it from its ledger, and on a slow node the
    warm-up tasks queue behind each other.
    """
    compute, network, overhead = {}, [], []
    for node, row in samples:
        if row["status"] != "ok":
            continue
        predicted = row["predicted_cloud_s"] if node == "cloud" else row["predicted_edge_s"]
        compute.setdefault(node, []).append(row["h0_compute_s"] / predicted)
        if node == "cloud" and row["predicted_trans_s"] > 0:
            network.append(row["h0_net_s"] / row["predicted_trans_s"])
        overhead.append(row["e2e_s"] - row["h0_net_s"] - row["h0_queue_s"] - row["h0_compute_s"]
                        - row["result_net_s"])
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
    while (left := deadline - time.monotonic()) > 0 and select.select([process.stdout], [], [], left)[0]:
        line = process.stdout.readline()
        if not line:
            return False
        if line.strip() == b"ready":
            return True
    return False


@functools.lru_cache(maxsize=None)
def num_segments(model):
    from agents.calibration import ProfileStore
    return ProfileStore().reference(model).m  # reads the profiles once per model


def controller_config(run_dir, agent, predictor):
    conf = Path(run_dir) / "bench-controller.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[sdncep]", f"worker_port = {WORKER_PORT}"]
    if agent:
        lines.append(f"agent_checkpoint = {agent}")
    if predictor:
        lines.append(f"predictor_path = {predictor}")
    conf.write_text("\n".join(lines) + "\n")
    return conf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full sweep (tens of minutes)")
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--bandwidths", help="WAN Mbit/s levels, comma-separated")
    parser.add_argument("--tasks", help="task counts for the tasks sweep (arriving over 4 s), comma-separated")
    parser.add_argument("--rate", type=float, help="tasks/s from each device in the bandwidth sweep")
    parser.add_argument("--arrivals", choices=("poisson", "batch"),
                        help="bandwidth sweep arrivals: Poisson at --rate, or each device's tasks all at once")
    parser.add_argument("--per-cell", type=int, help="tasks from each device per bandwidth cell")
    parser.add_argument("--topology", help="YAML file of topology keys (topologies/spec.py) to change")
    agents = ",".join(str(p) for p in sorted((REPO / "checkpoints").glob("sdncep-*.pt")))
    parser.add_argument("--agent", default=agents, help="SDN-CEP agent checkpoints, comma-separated, one per "
                                                       "model (default: checkpoints/sdncep-*.pt)")
    parser.add_argument("--predictor", default=str(REPO / "checkpoints" / "complexity.json"))
    parser.add_argument("--skip", default="", help="phases to skip: bandwidth,tasks,wifi,models")
    parser.add_argument("--out", default=str(REPO / "results" / "live"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plan = settings(args.full)
    try:
        if args.bandwidths:
            # 5 stays 5 (level 'bandwidth:5', as in the default sweep); 2.5 stays 2.5
            plan["bandwidths"] = tuple(int(b) if b.is_integer() else b
                                       for b in map(float, args.bandwidths.split(",")))
        if args.tasks:
            plan["tasks"] = tuple(int(t) for t in args.tasks.split(","))
    except ValueError as exc:
        parser.error(f"--bandwidths and --tasks take comma-separated numbers: {exc}")
    if args.rate:
        plan["rate"] = args.rate
    if args.arrivals:
        plan["arrivals"] = args.arrivals
    if args.per_cell:
        plan["per_cell"] = args.per_cell
    methods = tuple(args.methods.split(","))
    skip = set(filter(None, args.skip.split(",")))
    if not {"sdn-cep", "sdn-cep-dqn"} & set(methods):
        args.agent = args.predictor = None
    for path in filter(None, (args.agent or "").split(",") + [args.predictor]):
        if not Path(path).exists():
            print(f"error: {path} not found; train it with scripts/train_agent.py (see README)", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = tuple(dict.fromkeys((args.model,) + (plan["models"] if "models" not in skip else ())))
    try:
        custom = TopologySpec.from_yaml(args.topology).__dict__ if args.topology else {}
        spec = TopologySpec(**dict(custom, worker_port=WORKER_PORT, worker_models=",".join(models)))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    cell_runs = rounds_of(methods, plan["per_cell"], plan["rounds"])
    steps = (len(plan["bandwidths"]) * len(cell_runs) * (0 if "bandwidth" in skip else 1)
             + len(plan["tasks"]) * len(methods) * (0 if "tasks" in skip else 1)
             + (0 if "wifi" in skip else 1) + (0 if "models" in skip else len(plan["models"]) * 3))
    try:
        conf = controller_config(out, args.agent, args.predictor)
        with Testbed(spec, controller_args=["--config-file", str(conf)]) as bed:
            print(f"testbed up; controller log {bed.controller_log}", flush=True)
            bed.wait_until(bed.view_complete, timeout=180, interval=0.5, what="a complete view")
            bench = LiveBench(bed, out, args.model, args.seed)
            calibration = bench.warm_up_and_calibrate(models)
            print(f"calibration (measured/predicted): {calibration}", flush=True)
            progress = tqdm(total=steps, desc="live benchmark", unit="cell")
            if "bandwidth" not in skip:
                for mbit in plan["bandwidths"]:
                    bench.set_wan(mbit)
                    for round_no, method, count in cell_runs:
                        bench.run_tasks(method, count, f"bandwidth:{mbit}", arrivals=plan["arrivals"],
                                        rate=plan["rate"], seed=args.seed + 10 * round_no, devices=DEVICES,
                                        round_no=round_no)
                        bench.drain()
                        progress.update()
            if "tasks" not in skip:
                bench.set_wan(20)
                for count in plan["tasks"]:
                    for method in methods:
                        share = max(count // len(DEVICES), 1)
                        bench.run_tasks(method, share, f"tasks:{count}", arrivals="poisson",
                                        rate=share / plan["window_s"], devices=DEVICES)
                        bench.drain()
                        progress.update()
            if "wifi" not in skip:
                trace = wifi_trace("c1-g1", plan["wifi_s"], seed=args.seed, mean_mbit=20, high_mbit=50)
                runner = ScheduleRunner(trace, lambda ends, mbit: bed.set_link_rate(*ends, mbit))
                runner.start()
                wifi_methods = [m for m in ("neurosurgeon", "dpto", "sdn-cep") if m in methods]
                count = max(int(plan["wifi_s"] / len(wifi_methods)), 1)
                for method in wifi_methods:
                    bench.run_tasks(method, count, "wifi", arrivals="fixed", rate=1.0)
                runner.stop()
                (out / "wifi_trace.json").write_text(json.dumps(
                    [{"t": t, "mbit": c.mbit} for t, c in runner.applied]))
                progress.update()
            if "models" not in skip:
                bench.set_wan(20)
                for model in plan["models"]:
                    for method in ("only-cloud", "only-edge", "sdn-cep"):
                        bench.run_tasks(method, 4, f"models:{model}", model=model)
                        bench.drain()
                        progress.update()
            progress.close()
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = live_report.write_all(bench.records, out)
    print(live_report.latency_table(summary))
    print(f"\nrecords, summary and figures in {out}; took {time.monotonic() - started:.0f} s")
    return 0 if summary["lost_tasks"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

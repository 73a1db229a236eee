#!/usr/bin/env python3
"""Energy-aware offloading live on the Mininet testbed (issue 14, criterion 5). Needs root;
only one testbed may run on the machine, so run it under the live lock:

    flock /tmp/sdncep-live.lock .venv/bin/python scripts/energy_live.py [--seed 3] [--repeats 2]

Topology: 8 devices d1..d8 behind two access switches a1, a2 (the APs; odd devices on a1),
one edge host e1 (the edge server) behind l1; AP->edge links at c = 1 Gbit/s.
The energy decision is asked of the controller (``POST /sdncep/v1/energy/decide``,
controller/energy_rest.py, which reads each device's AP from its global view); then:

* each offloading device's link to its AP is re-rated (tc, live) to the Shannon rate of its
  chosen power on its share W / k of the band (+ the TCP/IP header overhead, so that the
  payload gets the model's rate);
* local tasks run a CPU-bound kernel paced to c_n / f* (real SHA-256 work for a fraction of
  the time, then held until the emulated time is up, as runtime.pacing does for DNN layers);
* offloaded tasks really send their i_n input bytes to the edge worker on e1
  (runtime.energy_worker, run as e1's service in place of its split-inference worker, and
  sending e1's heartbeats), which holds each task for its share of the edge CPU,
  c_n K / f_EC (same pacing), and answers;
* the devices' side (runtime.energy_device): the decision request is retried while the
  controller is away, an offloaded task whose edge fails runs locally (docs/energy.md,
  "Faults"; ``sdncep energy chaos``, scripts/energy_chaos.py, injects the faults);
* latency is measured on the device (wall clock, all devices start at the same instant);
  energy comes from the model (no power meter).

Three runs on the same instance: the optimum's schedule and the DQN's (live cost of each),
then k = 1..4 devices offloading through a1 alone (offload latency against k). Results:
``live.json`` and ``live.csv`` in a run folder under ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # repo root, relative to this file

from runtime.energy_device import DecisionRefused, DecisionUnavailable, ask_decision, http_post, run_task
from runtime.energy_worker import DEFAULT_PORT as WORKER_PORT
from runtime.energy_worker import EnergyEdgeWorker, paced_kernel  # noqa: F401 - the local task kernel, used by tests

EDGE = "e1"
START_LEAD_S = 2.0                  # tasks start together this long after they are launched
HEADER_OVERHEAD = 1514.0 / 1448.0   # Ethernet + IP + TCP (timestamps) bytes per payload byte of a full segment


def serve(port: int) -> None:
    """The edge worker (runtime.energy_worker) on ``port``, in this process."""
    EnergyEdgeWorker(port).serve_forever()


# ----------------------------------------------------------------------------- orchestration (root)
def device_payload(inst, names):
    fields = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")
    return [{"name": n, **{f: float(getattr(inst, f)[i]) for f in fields}} for i, n in enumerate(names)]


def energy_spec():
    """8 devices on two APs (a1, a2), one edge host e1; every link able to carry 1 Gbit/s."""
    from topologies.spec import TopologySpec
    return TopologySpec(edges=1, access_switches=2, devices=8, edge_cores=(1.0,), lan_mbit=1000.0,
                        access_mbit=1000.0, fabric_mbit=1000.0, wan_mbit=10.0)


def edge_worker_command(bed, port=WORKER_PORT, max_tasks=None):
    """The energy edge worker as e1's service: it sends e1's heartbeats, so the
    controller's view holds the edge server alive exactly while it runs."""
    host = bed.net[EDGE]
    command = [sys.executable, "-m", "runtime.energy_worker", "--port", str(port), "--name", EDGE,
               "--heartbeat-ip", host.IP(), "--heartbeat-prefixlen", str(host.defaultIntf().prefixLen or 8),
               "--cgroup-root", f"/proc/{os.getpid()}/root/sys/fs/cgroup"]
    return command + (["--max-tasks", str(max_tasks)] if max_tasks else [])


def start_edge_worker(bed, max_tasks=None, timeout=30):
    """(Re)start the energy edge worker on e1 in place of its split-inference worker and
    wait until the controller's view holds e1 alive again."""
    bed.kill_worker(EDGE)
    bed.net[EDGE].start_service(edge_worker_command(bed, max_tasks=max_tasks))
    bed.wait_until(lambda: edge_alive(bed), timeout=timeout, interval=0.2, what=f"{EDGE} alive in the view")


def edge_alive(bed):
    try:
        node = bed.rest(f"/sdncep/v1/nodes/{EDGE}", timeout=2)
    except OSError:
        return False
    return bool(node.get("alive"))


def decision(bed, payload, budget_s=None):
    """The controller's decisions for ``payload`` (retried while it restarts or refuses
    for a while; runtime.energy_device.ask_decision) and the attempts it took."""
    post = http_post(f"http://127.0.0.1:{bed.rest_port}/sdncep/v1/energy/decide", timeout=10)
    return ask_decision(post, payload, **({} if budget_s is None else {"budget_s": budget_s}))


def jobs_of(bed, inst, reply, start_at, copies=1):
    """{device: job} for runtime.energy_device.run_task; re-rates each offloader's link."""
    from topologies.edge_cloud import link_setter
    set_rate = link_setter(bed.net)
    edge = (reply.get("edge") or {}).get("ip") or bed.net[EDGE].IP()
    big_k = sum(d["offload"] for d in reply["devices"])
    jobs = {}
    for i, dev in enumerate(reply["devices"]):
        job = {"name": dev["name"], "start_at": start_at, "local_s": dev.get("local_s"),
               "model_s": dev["latency_s"], "copies": copies}
        if dev["offload"]:
            mbit = dev["rate_bps"] * HEADER_OVERHEAD / 1e6
            set_rate((dev["name"], dev["ap"]), round(min(1000.0, max(0.1, mbit)), 3))
            job.update(mode="offload", edge=f"{edge}:{WORKER_PORT}", bytes=int(inst.input_bytes[i]),
                       edge_s=float(inst.cycles[i] * big_k / inst.system.edge_hz))
        else:
            job.update(mode="local", local_s=float(inst.cycles[i] / dev["freq_hz"]))
        jobs[dev["name"]] = job
    return jobs


def launch(bed, jobs):
    """Start every device's job in its host; {device: process}."""
    return {name: bed.net[name].popen([sys.executable, str(Path(__file__).resolve()), "task", "--job", json.dumps(job)],
                                      cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=dict(os.environ, PYTHONPATH=str(REPO)))
            for name, job in jobs.items()}


def collect(procs, timeout=120):
    """The task records the devices printed (one JSON line each); a device that printed
    none loses its tasks (the chaos table counts them as lost), its stderr is logged."""
    records = []
    for name, p in procs.items():
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        if p.returncode or not lines:
            print(f"warning: task process on {name} ended {p.returncode}: {err.decode()[-400:]}", file=sys.stderr)
        records += lines
    return records


def run_schedule(bed, inst, reply, tag):
    """Apply ``reply`` (the controller's decisions) live and run every device's task once."""
    records = collect(launch(bed, jobs_of(bed, inst, reply, time.time() + START_LEAD_S)))
    by_name = {d["name"]: d for d in reply["devices"]}
    rows = []
    for r in records:
        if r["status"] != "ok":
            raise RuntimeError(f"task on {r['name']} failed: {r.get('error_code')}: {r.get('error')}")
        d = by_name[r["name"]]
        rows.append({"run": tag, "device": r["name"], "ap": d["ap"], "mode": r["ran"],
                     "model_latency_s": d["latency_s"], "measured_latency_s": r["latency_s"],
                     "ape": abs(r["latency_s"] - d["latency_s"]) / d["latency_s"],
                     "energy_j_model": d["energy_j"], "lambda_t": d["lambda_t"], "lambda_e": d["lambda_e"],
                     "model_cost": d["cost"],
                     "live_cost": d["lambda_t"] * r["latency_s"] + d["lambda_e"] * d["energy_j"],
                     "rate_mbps": d["rate_bps"] / 1e6, "upload_s": r.get("upload_s")})
    return rows


def orchestrate(ns) -> int:
    import numpy as np

    from agents.energy.instances import draw_instance
    from agents.energy.model import build_tables, evaluate
    from sdncep.records import manifest, new_run_dir, write_manifest
    from topologies.testbed import Testbed
    spec = energy_spec()
    out = new_run_dir(ns.out)
    write_manifest(out, manifest("energy-live", vars(ns), topology=dict(vars(spec))))
    names = [f"d{i + 1}" for i in range(8)]
    from agents.energy.config import SystemParams
    system = SystemParams(ap_bandwidth_mhz=ns.bandwidth_mhz)
    inst = draw_instance(np.random.default_rng(ns.seed), system=system, n=8)
    rows, summary = [], {}
    with Testbed(spec, run_dir=out, controller_args=["controller.energy_rest"]) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=90, what="the controller's view")
        start_edge_worker(bed)
        try:
            payload = {"devices": device_payload(inst, names), "system": {"ap_bandwidth_mhz": ns.bandwidth_mhz}}
            replies = {m: decision(bed, {**payload, "method": m})[0] for m in ("optimum", "dqn")}
            for m, reply in replies.items():
                for rep in range(ns.repeats):
                    rows += run_schedule(bed, inst, reply, f"{m}#{rep}")
            # offloading through one AP as it fills up: k of a1's devices offload, alone
            a1 = [n for n in names if replies["dqn"]["devices"][names.index(n)]["ap"] == "a1"][:4]
            for k in range(1, len(a1) + 1):
                sub = inst.subset([names.index(n) for n in a1[:k]])
                tab = build_tables(sub)
                o = evaluate(tab, np.ones(k, bool))
                reply = {"devices": [], "edge": None}
                for i, n in enumerate(a1[:k]):
                    w = sub.system.bandwidth_hz / k
                    rate = w * np.log2(1 + sub.gain[i] * o.power[0, i] / (sub.system.noise_w_hz * w))
                    lt, le = sub.weights()
                    reply["devices"].append({"name": n, "ap": "a1", "offload": True, "rate_bps": float(rate),
                                             "freq_hz": 0.0, "latency_s": float(o.latency[0, i]),
                                             "local_s": float(tab.t_loc[i]),
                                             "energy_j": float(o.energy[0, i]), "cost": float(o.cost[0, i]),
                                             "lambda_t": float(lt[i]), "lambda_e": float(le[i])})
                for rep in range(ns.repeats):
                    rows += run_schedule(bed, sub, reply, f"share-k{k}")
        except (DecisionUnavailable, DecisionRefused) as exc:
            print(f"error: the controller gave no decision: {exc}", file=sys.stderr)
            return 1
    with open(out / "live.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    def cost(tag):
        sel = [r for r in rows if r["run"].startswith(tag + "#")]
        return sum(r["live_cost"] for r in sel) / ns.repeats
    sched = [r for r in rows if "#" in r["run"]]
    summary = {
        "seed": ns.seed, "repeats": ns.repeats, "bandwidth_mhz": ns.bandwidth_mhz, "tasks": len(rows),
        "mape_all": float(np.mean([r["ape"] for r in rows])),
        "mape_schedules": float(np.mean([r["ape"] for r in sched])),
        "mape_offloaded": float(np.mean([r["ape"] for r in sched if r["mode"] == "offload"])),
        "mape_offloaded_all_runs": float(np.mean([r["ape"] for r in rows if r["mode"] == "offload"])),
        "max_ape": float(np.max([r["ape"] for r in rows])),
        "mape_local": float(np.mean([r["ape"] for r in sched if r["mode"] == "local"] or [float("nan")])),
        "model_cost": {m: replies[m]["total_cost"] for m in replies},
        "live_cost": {m: cost(m) for m in replies},
        "dqn_live_over_optimum_model": cost("dqn") / replies["optimum"]["total_cost"],
        "dqn_live_over_optimum_live": cost("dqn") / cost("optimum"),
        "decisions": {m: [d["offload"] for d in replies[m]["devices"]] for m in replies},
        "share": [{"k": k, "model_mean_s": float(np.mean([r["model_latency_s"] for r in rows if r["run"] == f"share-k{k}"])),
                   "measured_mean_s": float(np.mean([r["measured_latency_s"] for r in rows if r["run"] == f"share-k{k}"]))}
                  for k in range(1, 5) if any(r["run"] == f"share-k{k}" for r in rows)],
    }
    (out / "live.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"run folder: {out}")
    return 0


def run_copies(job):
    """Run a device's job (``copies`` tasks at once, each its own connection) and print
    each task's record as one JSON line."""
    from concurrent.futures import ThreadPoolExecutor
    copies = max(int(job.get("copies", 1)), 1)
    with ThreadPoolExecutor(copies) as pool:
        for copy, record in enumerate(pool.map(run_task, [job] * copies)):
            print(json.dumps({**record, "copy": copy}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="energy_live", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    w = sub.add_parser("worker", help="(inside e1) the edge worker")
    w.add_argument("--port", type=int, default=WORKER_PORT)
    t = sub.add_parser("task", help="(inside a device) run its task(s), print one JSON record each")
    t.add_argument("--job", required=True)
    r = sub.add_parser("run", help="the live experiment (default; root)")
    for p in (ap, r):
        p.add_argument("--seed", type=int, default=3)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--bandwidth-mhz", type=float, default=5.0,
                       help="W per AP (the emulated OVS datapath keeps up with about 100 Mbit/s in all)")
        p.add_argument("--out", default=str(REPO / "results" / "energy-live"))
    ns = ap.parse_args(argv)
    if ns.cmd == "worker":
        serve(ns.port)
        return 0
    if ns.cmd == "task":
        run_copies(json.loads(ns.job))
        return 0
    if os.geteuid() != 0:
        print("error: the live run needs root (Mininet, OVS)", file=sys.stderr)
        return 2
    return orchestrate(ns)


if __name__ == "__main__":
    sys.exit(main())

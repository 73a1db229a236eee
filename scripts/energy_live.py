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
* offloaded tasks really send their i_n input bytes to an edge worker on e1, which holds
  each task for its share of the edge CPU, c_n K / f_EC (same pacing), and answers;
* latency is measured on the device (wall clock, all devices start at the same instant);
  energy comes from the model (no power meter).

Three runs on the same instance: the optimum's schedule and the DQN's (live cost of each),
then k = 1..4 devices offloading through a1 alone (offload latency against k). Results:
``live.json`` and ``live.csv`` in a run folder under ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # repo root, relative to this file

WORKER_PORT = 7711
HEADER_OVERHEAD = 1514.0 / 1448.0   # Ethernet + IP + TCP (timestamps) bytes per payload byte of a full segment


# ----------------------------------------------------------------------------- the compute kernel
def paced_kernel(seconds: float, real_fraction: float = 0.05) -> int:
    """Real CPU-bound work (SHA-256) for ``real_fraction`` of ``seconds``, then hold until
    ``seconds`` have passed since the call. Returns the number of hash rounds done."""
    start = time.perf_counter()
    buf, rounds = b"\0" * 65536, 0
    while time.perf_counter() - start < seconds * real_fraction:
        buf = hashlib.sha256(buf).digest() * 2048
        rounds += 1
    rest = seconds - (time.perf_counter() - start)
    if rest > 0:
        time.sleep(rest)
    return rounds


def _recv_exact(conn, n: int) -> bytes:
    view = bytearray(n)
    mv, got = memoryview(view), 0
    while got < n:
        k = conn.recv_into(mv[got:], min(n - got, 1 << 20))
        if not k:
            raise ConnectionError("peer closed early")
        got += k
    return bytes(view)


# ----------------------------------------------------------------------------- edge worker (on e1)
def serve(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port), backlog=64, reuse_port=True)

    def handle(conn):
        with conn:
            (hlen,) = struct.unpack("!I", _recv_exact(conn, 4))
            head = json.loads(_recv_exact(conn, hlen))
            _recv_exact(conn, int(head["bytes"]))
            received = time.time()
            paced_kernel(float(head["edge_s"]))
            conn.sendall(json.dumps({"received": received, "done": time.time()}).encode() + b"\n")

    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# ----------------------------------------------------------------------------- one task (on a device)
def run_task(job: dict) -> dict:
    payload = os.urandom(int(job.get("bytes", 0))) if job["mode"] == "offload" else b""
    while time.time() < job["start_at"]:
        time.sleep(min(0.01, max(0.0, job["start_at"] - time.time())))
    t0 = time.time()
    if job["mode"] == "local":
        paced_kernel(job["local_s"])
        return {"name": job["name"], "mode": "local", "latency_s": time.time() - t0}
    host, port = job["edge"].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        head = json.dumps({"bytes": len(payload), "edge_s": job["edge_s"]}).encode()
        s.sendall(struct.pack("!I", len(head)) + head)
        s.sendall(payload)
        reply = json.loads(s.makefile().readline())
    t1 = time.time()
    return {"name": job["name"], "mode": "offload", "latency_s": t1 - t0, "upload_s": reply["received"] - t0,
            "edge_s_measured": reply["done"] - reply["received"]}


# ----------------------------------------------------------------------------- orchestration (root)
def device_payload(inst, names):
    fields = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")
    return [{"name": n, **{f: float(getattr(inst, f)[i]) for f in fields}} for i, n in enumerate(names)]


def run_schedule(bed, inst, reply, tag):
    """Apply ``reply`` (the controller's decisions) live and run every device's task once."""
    from topologies.edge_cloud import link_setter
    set_rate = link_setter(bed.net)
    edge = f"{bed.net['e1'].IP()}:{WORKER_PORT}"
    start_at = time.time() + 2.0
    procs = {}
    for i, dev in enumerate(reply["devices"]):
        job = {"name": dev["name"], "start_at": start_at}
        if dev["offload"]:
            mbit = dev["rate_bps"] * HEADER_OVERHEAD / 1e6
            set_rate((dev["name"], dev["ap"]), round(min(1000.0, max(0.1, mbit)), 3))
            big_k = sum(d["offload"] for d in reply["devices"])
            job.update(mode="offload", edge=edge, bytes=int(inst.input_bytes[i]),
                       edge_s=float(inst.cycles[i] * big_k / inst.system.edge_hz))
        else:
            job.update(mode="local", local_s=float(inst.cycles[i] / dev["freq_hz"]))
        procs[dev["name"]] = bed.net[dev["name"]].popen(
            [sys.executable, str(Path(__file__).resolve()), "task", "--job", json.dumps(job)],
            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)))
    results = []
    for name, p in procs.items():
        out, err = p.communicate(timeout=120)
        if p.returncode:
            raise RuntimeError(f"task on {name} failed: {err.decode()[-400:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    by_name = {d["name"]: d for d in reply["devices"]}
    rows = []
    for r in results:
        d = by_name[r["name"]]
        rows.append({"run": tag, "device": r["name"], "ap": d["ap"], "mode": r["mode"],
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
    from topologies.spec import TopologySpec
    from topologies.testbed import Testbed
    spec = TopologySpec(edges=1, access_switches=2, devices=8, edge_cores=(1.0,), lan_mbit=1000.0,
                        access_mbit=1000.0, fabric_mbit=1000.0, wan_mbit=10.0)
    out = new_run_dir(ns.out)
    write_manifest(out, manifest("energy-live", vars(ns), topology=dict(vars(spec))))
    names = [f"d{i + 1}" for i in range(8)]
    from agents.energy.config import SystemParams
    system = SystemParams(ap_bandwidth_mhz=ns.bandwidth_mhz)
    inst = draw_instance(np.random.default_rng(ns.seed), system=system, n=8)
    rows, summary = [], {}
    with Testbed(spec, run_dir=out, controller_args=["controller.energy_rest"]) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=90, what="the controller's view")
        for name in names:
            bed.net[name].cmd("sysctl -qw net.ipv4.tcp_slow_start_after_idle=0")
        worker = bed.net["e1"].popen([sys.executable, str(Path(__file__).resolve()), "worker", "--port",
                                      str(WORKER_PORT)], cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)))
        time.sleep(1.0)
        try:
            payload = {"devices": device_payload(inst, names), "system": {"ap_bandwidth_mhz": ns.bandwidth_mhz}}
            replies = {m: bed.rest_put("/sdncep/v1/energy/decide", {**payload, "method": m}, timeout=30,
                                       method="POST") for m in ("optimum", "dqn")}
            for m, reply in replies.items():
                for rep in range(ns.repeats):
                    rows += run_schedule(bed, inst, reply, f"{m}#{rep}")
            # offloading through one AP as it fills up: k of a1's devices offload, alone
            a1 = [n for n in names if replies["dqn"]["devices"][names.index(n)]["ap"] == "a1"][:4]
            for k in range(1, len(a1) + 1):
                sub = inst.subset([names.index(n) for n in a1[:k]])
                tab = build_tables(sub)
                o = evaluate(tab, np.ones(k, bool))
                reply = {"devices": []}
                for i, n in enumerate(a1[:k]):
                    w = sub.system.bandwidth_hz / k
                    rate = w * np.log2(1 + sub.gain[i] * o.power[0, i] / (sub.system.noise_w_hz * w))
                    lt, le = sub.weights()
                    reply["devices"].append({"name": n, "ap": "a1", "offload": True, "rate_bps": float(rate),
                                             "freq_hz": 0.0, "latency_s": float(o.latency[0, i]),
                                             "energy_j": float(o.energy[0, i]), "cost": float(o.cost[0, i]),
                                             "lambda_t": float(lt[i]), "lambda_e": float(le[i])})
                for rep in range(ns.repeats):
                    rows += run_schedule(bed, sub, reply, f"share-k{k}")
        finally:
            worker.kill()
            worker.wait(timeout=10)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="energy_live", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    w = sub.add_parser("worker", help="(inside e1) the edge worker")
    w.add_argument("--port", type=int, default=WORKER_PORT)
    t = sub.add_parser("task", help="(inside a device) run one task and print its latency")
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
        print(json.dumps(run_task(json.loads(ns.job))), flush=True)
        return 0
    if os.geteuid() != 0:
        print("error: the live run needs root (Mininet, OVS)", file=sys.stderr)
        return 2
    return orchestrate(ns)


if __name__ == "__main__":
    sys.exit(main())

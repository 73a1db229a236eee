#!/usr/bin/env python3
"""Live run of the pricing mechanism on the emulated testbed (issue 15, criterion 5; partial).

    flock /tmp/sdncep-live.lock .venv/bin/python scripts/pricing_live.py [--slot-s 4] [--out DIR]

The testbed's edge hosts e1..e3 and the cloud are the provider's servers (one worker type,
one PS type).  Jobs arrive slot by slot (a slot is ``--slot-s`` seconds); the mechanism of
agents.pricing admits and places each; at its start slot a PS process and its workers start
on the chosen hosts (agents.pricing.live_node) and really train (sklearn digits) by pushing
gradients and pulling parameters over TCP in wire frames, on the paths the controller
installed.  When a job's processes end its nodes are released for later jobs.  Reported:
per job its placement, loss, measured iteration time against the model's tau, and the
packets the switches' flow counters saw towards each PS host.  Not done: OpenFlow meters
for the bandwidth constraint (1k) and its check against the controller's view.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from agents.pricing.cluster import Cluster, Usage
from agents.pricing.jobs import Job, Utility
from agents.pricing.prices import PriceBook, PriceConfig
from agents.pricing.schedule import Placement, best_schedule

REPO = Path(__file__).resolve().parents[1]
HOSTS = ("e1", "e2", "e3", "cloud")
GRAD_BYTES = 650 * 4
COMPUTE_S = 0.05


def make_cluster(slot_s, slots):
    return Cluster(np.array([[2], [2], [2], [3]]), np.array([[1], [1], [1], [1]]), np.array([100e6]),
                   np.array([200e6]), slots, slot_s, HOSTS)


def tau_model(worker_bw, rtt_s=0.0):
    """Seconds per mini-batch: paced compute + gradient out and parameters back at b_w + one RTT."""
    return COMPUTE_S + 2 * GRAD_BYTES * 8 / worker_bw + rtt_s


def make_jobs(cluster, n_jobs, seed, rtt_s):
    rng = np.random.default_rng(seed)
    tau = np.full((1, 1), tau_model(cluster.worker_bw[0], rtt_s))
    jobs = []
    for j in range(n_jobs):
        chunks = int(rng.integers(2, 5))
        epochs = int(rng.integers(3, 7))
        arrival = int(j // 2)                                  # two jobs per slot
        jobs.append(Job(j, arrival, Utility("linear", float(rng.uniform(20, 100)), 6), chunks, 20, epochs, tau,
                        GRAD_BYTES, np.zeros(cluster.n_servers, dtype=np.int64)))
    return jobs


def flow_packets(switches):
    """n_packets per (switch, dl_dst) of the controller's forwarding flows."""
    out = {}
    for sw in switches:
        text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", sw], capture_output=True, text=True,
                              timeout=10, check=False).stdout
        for line in text.splitlines():
            m = re.search(r"n_packets=(\d+).*dl_dst=([0-9a-f:]+)", line)
            if m:
                out[(sw, m.group(2))] = int(m.group(1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slot-s", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "results" / "pricing" / "live"))
    args = ap.parse_args(argv)
    from topologies.spec import TopologySpec
    from topologies.testbed import Testbed
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slots = 24
    from agents.pricing.training import digits
    data = out / "digits.npz"
    np.savez(data, **dict(zip(("X", "y"), digits())))
    cluster = make_cluster(args.slot_s, slots)
    usage, book = Usage(cluster), PriceBook(cluster, PriceConfig())
    spec = TopologySpec()
    records = {}
    with Testbed(spec, run_dir=out / "bed") as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=60, what="the controller's view")
        ips = {h: bed.net[h].IP() for h in HOSTS}
        macs = {h: bed.net[h].MAC() for h in HOSTS}
        for h in HOSTS:                                         # let the controller learn every host
            bed.net[h].cmd(f"ping -c1 -W1 {ips['cloud' if h != 'cloud' else 'e1']} > /dev/null")
        switches = list(spec.switches())
        rtts = []
        for a in HOSTS:                                         # calibrate the model's RTT term
            for b in HOSTS:
                if a < b:
                    text = bed.net[a].cmd(f"ping -c 5 -i 0.2 -q {ips[b]}")
                    m = re.search(r"= [\d.]+/([\d.]+)/", text)
                    if m:
                        rtts.append(float(m.group(1)) / 1e3)
        rtt = float(np.median(rtts)) if rtts else 0.0
        jobs = make_jobs(cluster, args.jobs, args.seed, rtt)
        peak = {}
        t0 = time.time()
        pending = sorted(jobs, key=lambda j: j.arrival)
        admitted, running = {}, {}
        finished = {}                                           # jid -> (finish time, hosts)
        for slot in range(slots):
            while time.time() < t0 + slot * args.slot_s:
                for jid, (procs, sched) in list(running.items()):
                    if all(p.poll() is not None for p in procs):
                        now = time.time() - t0
                        usage.release(jid, slot)                # frees the rest of its reservation
                        rec = records[jid]
                        rec["finished_at_s"] = round(now, 2)
                        rec["within_reservation"] = now <= (sched.end + 1) * args.slot_s
                        rec["outputs"] = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in procs]
                        finished[jid] = (now, set(sched.servers()))
                        del running[jid]
                time.sleep(0.1)
            for key, v in flow_packets(switches).items():
                peak[key] = max(peak.get(key, 0), v)
            for job in [j for j in pending if j.arrival == slot]:
                pending.remove(job)
                book.observe(job)
                s = best_schedule(job, cluster, usage, book, Placement(max_wait=8))
                records[job.jid] = {"jid": job.jid, "arrival": job.arrival, "chunks": job.chunks,
                                    "minibatches": job.minibatches_total, "admitted": s is not None}
                if s is None:
                    continue
                usage.allocate(job, s)
                admitted[job.jid] = (job, s)
                records[job.jid].update({"start": s.start, "end": s.end, "workers": {
                    HOSTS[i]: int(c) for i, c in enumerate(s.workers) if c}, "ps": HOSTS[s.ps_server],
                    "ps_count": s.ps_count, "kind": s.kind, "payment": round(s.cost, 3),
                    "utility": round(s.utility, 3)})
            for jid, (job, s) in list(admitted.items()):
                if s.start != slot:
                    continue
                del admitted[jid]
                port = 7100 + jid
                ps_host = bed.net[HOSTS[s.ps_server]]
                py = [sys.executable, "-m", "agents.pricing.live_node"]
                ps = ps_host.popen(py + ["ps", "--port", str(port), "--workers", str(s.n_workers), "--data",
                                         str(data)], cwd=str(REPO), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                n = s.n_workers
                iters = math.ceil(job.minibatches_total / n)
                procs, k = [], 0
                for i, c in enumerate(s.workers):
                    for _ in range(int(c)):
                        procs.append(bed.net[HOSTS[i]].popen(
                            py + ["worker", "--ps", f"{ips[HOSTS[s.ps_server]]}:{port}", "--iterations", str(iters),
                                  "--compute-s", str(COMPUTE_S), "--chunk", f"{k}/{n}", "--seed", str(k),
                                  "--data", str(data)],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                        k += 1
                running[jid] = ([ps] + procs, s)
                records[jid]["started_at_s"] = round(time.time() - t0, 2)
                records[jid]["reuses_nodes_of"] = sorted(
                    j for j, (t_end, hosts) in finished.items() if hosts & set(s.servers()))
                records[jid]["iterations_per_worker"] = iters
            if not pending and not admitted and not running:
                break
        for key, v in flow_packets(switches).items():
            peak[key] = max(peak.get(key, 0), v)
    tau = tau_model(cluster.worker_bw[0], rtt)
    rows = []
    for jid, rec in sorted(records.items()):
        if not rec.get("outputs"):
            rows.append(rec)
            continue
        ps_out = next(o for o in rec["outputs"] if o["role"] == "ps")
        ws = [o for o in rec["outputs"] if o["role"] == "worker"]
        it = float(np.median([w["iteration_s_median"] for w in ws]))
        rec.update({"loss_first": round(float(np.mean([w["loss_first"] for w in ws])), 3),
                    "loss_last": round(float(np.mean([w["loss_last"] for w in ws])), 3),
                    "heldout_acc": round(ps_out["heldout_acc"], 3), "pushes": ps_out["pushes"],
                    "iteration_ms": round(1e3 * it, 1), "tau_ms": round(1e3 * tau, 1),
                    "iteration_error": round(abs(it - tau) / tau, 3)})
        rows.append(rec)
    hosts_pk = {h: sum(v for (sw, mac), v in peak.items() if mac == macs[h]) for h in HOSTS}
    pushes_to = {h: sum(r.get("pushes", 0) for r in rows if r.get("ps") == h and r.get("kind") == "distributed")
                 for h in HOSTS}
    (out / "live.json").write_text(json.dumps({"rtt_s": rtt, "tau_s": tau, "slot_s": args.slot_s, "jobs": rows,
                                               "flow_packets_to_host": hosts_pk,
                                               "gradient_frames_to_ps_host": pushes_to}, indent=1, default=str))
    cols = ["jid", "arrival", "admitted", "start", "end", "started_at_s", "finished_at_s", "within_reservation",
            "kind", "workers", "ps", "reuses_nodes_of", "loss_first", "loss_last", "heldout_acc", "pushes",
            "iteration_ms", "tau_ms", "iteration_error"]
    print(f"slot {args.slot_s} s, RTT {1e3 * rtt:.2f} ms, tau {1e3 * tau:.2f} ms")
    print("  ".join(cols))
    for r in rows:
        print("  ".join(str(r.get(c, "-")).replace(" ", "") for c in cols))
    print("packets counted by the switches' forwarding flows towards each host:", hosts_pk)
    print("gradient frames pushed to each host's PS by distributed jobs:", pushes_to)
    print(f"\nrecords in {out / 'live.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

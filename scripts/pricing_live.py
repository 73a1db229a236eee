#!/usr/bin/env python3
"""The pricing mechanism live on the emulated testbed (issue 15, criterion 5; faults: issue 16).

    sdncep pricing live                         # 8 jobs, about 2 min (root)
    sdncep pricing live --faults all            # the same while killing workers and PSs,
                                                # taking a host link down, restarting the controller

The testbed's edge hosts e1..e3 and the cloud are the provider's servers (one worker type,
one PS type, b_w = ``WORKER_MBPS``, b_p = ``PS_MBPS`` per PS node).  Jobs arrive slot by slot
(a slot is ``--slot-s`` seconds); the mechanism of agents.pricing admits and places each.  At
its start slot the job's network is asked of the controller (``PUT /sdncep/v1/pricing/jobs/J``,
controller.pricing_rest): its paths are checked against the controller's live view (measured
capacities less the other jobs' reservations, and constraint 1k) and pinned with flow rules
metered at b_w per worker and b_p x z into and out of the PS; a job the network refuses is
released.  Then a PS process and its workers start on the chosen hosts
(agents.pricing.live_node) and really train (sklearn digits), gradients pushed and parameters
pulled over TCP in wire frames.  The PS counts the job's mini-batches; when it has them all the
job ends, its flows and meters are removed and its nodes released for later jobs.

Faults (``--faults``, comma list or ``all``), each injected on a running job: a worker
SIGKILLed (``worker-kill``), its PS SIGKILLed (``ps-kill``), the host link of a remote worker
taken down for ``OUTAGE_S`` (``host-link``), ryu-manager SIGKILLed and restarted
(``controller-restart``).  The driver replaces a dead worker on its host if the controller's
view says the host is alive, else on another server with a free node (``Usage.move``); a dead
PS restarts from its checkpoint (written every second), on another server if its host is
down, and its workers reconnect; at most ``MAX_RECOVERIES`` per job, then the job fails with an
explicit error.  Every second the running jobs' networks are put again (idempotent): after a
controller restart that reinstalls their rules and meters; after a link failure the
controller has already moved them.

Reported per job: placement, loss, measured iteration time against the model's tau, its
packets on the switches (its flows' counters, by cookie), its meters' packets; per fault:
jobs hit, recovered, failed, lost (must be 0) and the time to recovery.  ``live.json`` and
``jobs.csv`` in a run folder under ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np

from agents.pricing.cluster import Cluster, Usage
from agents.pricing.jobs import Job, Utility
from agents.pricing.online import admit
from agents.pricing.prices import PriceBook, PriceConfig
from agents.pricing.schedule import Placement, load_compiled_search

HOSTS = ("e1", "e2", "e3", "cloud")
LEAF = {"e1": "l1", "e2": "l2", "e3": "l3", "cloud": "g1"}
GRAD_BYTES = 650 * 4
COMPUTE_S = 0.05
WORKER_MBPS, PS_MBPS = 20.0, 40.0
FAULTS = ("worker-kill", "ps-kill", "host-link", "controller-restart")
OUTAGE_S = 6.0
FAULT_AFTER_S = 2.0     # a fault hits a job whose nodes have run this long (its pushes flow)
PLACEMENT = Placement(max_wait=8)    #: the live run searches at most 8 slots of waiting
SETUP_S = 1.5          # seconds of a slot a job's processes take to start (not in the mechanism's model)
DRAIN_S = 120.0
MAX_RECOVERIES = 6
RECONCILE_S = 1.0
NETWORK_WAIT_S = 30.0
PY = [sys.executable, "-m", "agents.pricing.live_node"]


def make_cluster(slot_s, slots):
    return Cluster(np.array([[2], [2], [2], [3]]), np.array([[1], [1], [1], [1]]), np.array([WORKER_MBPS * 1e6]),
                   np.array([PS_MBPS * 1e6]), slots, slot_s, HOSTS)


def tau_model(worker_bw, rtt_s=0.0):
    """Seconds per mini-batch: paced compute + gradient out and parameters back at b_w + one RTT."""
    return COMPUTE_S + 2 * GRAD_BYTES * 8 / worker_bw + rtt_s


def measure_rtts(bed, ips):
    """{(a, b): median ping RTT in s} between the servers (both orders; 0 for a host to itself),
    after a warm-up ping so that no packet-in is counted."""
    rtts = {(h, h): 0.0 for h in HOSTS}
    for a in HOSTS:
        for b in HOSTS:
            if a < b:
                bed.net[a].cmd(f"ping -c 2 -i 0.2 -q {ips[b]}")
                m = re.search(r"= [\d.]+/([\d.]+)/", bed.net[a].cmd(f"ping -c 10 -i 0.1 -q {ips[b]}"))
                rtts[(a, b)] = rtts[(b, a)] = float(m.group(1)) / 1e3 if m else float("nan")
    return rtts


def job_tau(rec, rtts, worker_bw):
    """The model's seconds per mini-batch of a job: the median over its workers (each
    iterates on its own: asynchronous SGD) of tau with that worker's RTT to the PS."""
    placement = rec["final_placement"]
    per_worker = [tau_model(worker_bw, rtts[(host, placement["ps"])])
                  for host, count in placement["workers"].items() for _ in range(count)]
    return float(np.median(per_worker))


def make_jobs(cluster, n_jobs, seed, rtt_s):
    """The jobs; their mini-batch time for the mechanism (one for any placement: the
    model's tau with the median RTT between servers)."""
    rng = np.random.default_rng(seed)
    tau = np.full((1, 1), tau_model(cluster.worker_bw[0], rtt_s))
    jobs = []
    for j in range(n_jobs):
        chunks = int(rng.integers(2, 5))
        epochs = int(rng.integers(3, 7))
        jobs.append(Job(j, j // 2, Utility("linear", float(rng.uniform(20, 100)), 6), chunks, 20, epochs, tau,
                        GRAD_BYTES, np.zeros(cluster.n_servers, dtype=np.int64)))
    return jobs


def last_json(proc):
    """The last JSON line a finished (or killed) node process printed, or {}."""
    try:
        text = proc.stdout.read() if proc.stdout else ""
    except (OSError, ValueError):
        return {}
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {}


@dataclass
class Node:
    role: str            # "ps" | "worker"
    host: str
    proc: subprocess.Popen
    chunk: int = 0
    output: dict = field(default_factory=dict)


@dataclass
class LiveJob:
    job: Job
    sched: object
    port: int
    checkpoint: Path
    ps: Node | None = None
    workers: list = field(default_factory=list)
    recoveries: list = field(default_factory=list)
    finished_workers: list = field(default_factory=list)

    @property
    def iterations(self):
        return math.ceil(self.job.minibatches_total / self.sched.n_workers)

    def worker_hosts(self):
        return [HOSTS[i] for i, c in enumerate(self.sched.workers) for _ in range(int(c))]


class Driver:
    """Runs admitted jobs on the testbed, and keeps them running through faults."""

    def __init__(self, bed, cluster, usage, data, slot_s, t0, log):
        self.bed, self.cluster, self.usage, self.data = bed, cluster, usage, data
        self.slot_s, self.t0, self.log = slot_s, t0, log
        self.ips = {h: bed.net[h].IP() for h in HOSTS}
        self.running: dict[int, LiveJob] = {}
        self.waiting: dict[int, LiveJob] = {}       # started, waiting for the controller
        self.records: dict[int, dict] = {}
        self.reconciled_at = 0.0
        self.accepted_at: dict[int, list] = {}    # jid -> times the controller accepted a put or delete of its network
        self.deletes_due: set[int] = set()         # ended jobs whose network is still to be removed

    def now(self):
        return time.time() - self.t0

    # -- the controller ------------------------------------------------------------
    def alive(self):
        """{host: alive} from the controller's view; every host alive while it cannot be asked."""
        try:
            nodes = self.bed.rest("/sdncep/v1/nodes", timeout=2)
        except Exception:  # noqa: BLE001 -- the controller may be restarting
            return {h: True for h in HOSTS}
        seen = {n["name"]: bool(n["alive"]) for n in nodes}
        return {h: seen.get(h, True) for h in HOSTS}

    def network_body(self, lj):
        return {"ps": self.ips[HOSTS[lj.sched.ps_server]], "port": lj.port,
                "workers": [self.ips[h] for h in lj.worker_hosts()],
                "worker_mbps": WORKER_MBPS, "ps_mbps": PS_MBPS * lj.sched.ps_count}

    def put_network(self, lj):
        """(status, reply) of PUT /pricing/jobs/J; status 0 if the controller did not answer."""
        import urllib.error
        try:
            reply = self.bed.rest_put(f"/sdncep/v1/pricing/jobs/{lj.job.jid}", self.network_body(lj), timeout=5)
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except json.JSONDecodeError:
                return exc.code, {"error": f"HTTP {exc.code}"}
        except OSError as exc:
            return 0, {"error": str(exc)}
        self.accepted_at.setdefault(lj.job.jid, []).append(self.now())
        return 200, reply

    def delete_network(self, jid):
        """Remove the job's flows and meters; while the controller does not answer, the
        delete is retried with the next reconcile (rules without timeout must not stay)."""
        try:
            self.bed.rest_put(f"/sdncep/v1/pricing/jobs/{jid}", {}, timeout=5, method="DELETE")
            self.deletes_due.discard(jid)
            self.accepted_at.setdefault(jid, []).append(self.now())
        except OSError as exc:
            if jid not in self.deletes_due:
                self.log(f"job {jid}: its flows could not be removed now ({exc}); retried every second")
            self.deletes_due.add(jid)

    def _job_flows(self, cookie, mask):
        """("switch", flow line) of every flow whose cookie matches, on every switch."""
        for sw in self.bed.spec.switches():
            text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", sw, f"cookie={cookie:#x}/{mask:#x}"],
                                  capture_output=True, text=True, timeout=10, check=False).stdout
            yield from ((sw, line.strip()) for line in text.splitlines() if "cookie=" in line)

    def job_packets(self, jid):
        """Packets counted by job ``jid``'s flows on every switch (their cookie)."""
        from controller.job_flows import JOB_COOKIE
        return sum(int(m) for _sw, line in self._job_flows(JOB_COOKIE | jid, 0xFFFFFFFFFFFFFFFF)
                   for m in re.findall(r"n_packets=(\d+)", line))

    def job_flows_left(self):
        """Flows of any job still on the switches, as "switch: flow" lines (none once every
        job's network is removed)."""
        from controller.job_flows import JOB_COOKIE, JOB_COOKIE_MASK
        return [f"{sw}: {line}" for sw, line in self._job_flows(JOB_COOKIE, JOB_COOKIE_MASK)]

    # -- processes ---------------------------------------------------------------------
    def spawn_ps(self, lj, resume):
        host = HOSTS[lj.sched.ps_server]
        args = ["ps", "--port", str(lj.port), "--pushes", str(lj.job.minibatches_total), "--data", str(self.data),
                "--checkpoint", str(lj.checkpoint)]
        if resume and lj.checkpoint.exists():
            args.append("--resume")
        lj.ps = Node("ps", host, self.bed.net[host].popen(PY + args, cwd=str(REPO), stdout=subprocess.PIPE,
                                                          stderr=subprocess.STDOUT, text=True))
        return lj.ps

    def spawn_worker(self, lj, host, chunk):
        n = lj.sched.n_workers
        ps = f"{self.ips[HOSTS[lj.sched.ps_server]]}:{lj.port}"
        args = ["worker", "--ps", ps, "--iterations", str(lj.iterations), "--compute-s", str(COMPUTE_S),
                "--chunk", f"{chunk}/{n}", "--seed", str(chunk + 100 * len(lj.recoveries)), "--data", str(self.data)]
        lj.workers.append(Node("worker", host, self.bed.net[host].popen(
            PY + args, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), chunk))
        return lj.workers[-1]

    def occupied(self):
        """{(host, role): nodes} that running jobs hold now (a job past its reservation too)."""
        busy = {}
        for lj in self.running.values():
            for node in [lj.ps, *lj.workers]:
                busy[(node.host, node.role)] = busy.get((node.host, node.role), 0) + 1
        return busy

    def hosts_free(self, sched):
        """Whether the nodes ``sched`` needs are free on the hosts now, not only in the books:
        a job that overran its reservation still holds them."""
        busy = self.occupied()
        for s, count in enumerate(sched.workers):
            if count and busy.get((HOSTS[s], "worker"), 0) + count > self.cluster.worker_cap[s, sched.w]:
                return False
        return busy.get((HOSTS[sched.ps_server], "ps"), 0) + 1 <= self.cluster.ps_cap[sched.ps_server, sched.p]

    def kill_all(self):
        """Every node process still running (the driver is stopping, however it stops)."""
        for lj in self.running.values():
            for node in [lj.ps, *lj.workers]:
                if node.proc.poll() is None:
                    node.proc.kill()
                    node.proc.wait(timeout=10)

    # -- the job lifecycle ---------------------------------------------------------------
    def start(self, job, sched, slot):
        """Start the job once its hosts are free (``hosts_free``), after asking the network
        for it. While the controller does not answer, or is not ready (the view being
        rebuilt after a restart), the job waits, up to ``NETWORK_WAIT_S``; a refusal (409)
        releases it."""
        lj = self.waiting.pop(job.jid, None) or LiveJob(job, sched, 7100 + job.jid,
                                                        self.data.parent / f"job{job.jid}.npz")
        rec = self.records[job.jid]
        if not self.hosts_free(lj.sched):
            rec.setdefault("_due_at", self.now())
            self.waiting[job.jid] = lj
            return
        asked_at = self.now()
        status, reply = self.put_network(lj)
        if status in (0, 503) and time.monotonic() - rec.setdefault("_asked_at", time.monotonic()) < NETWORK_WAIT_S:
            rec.setdefault("_due_at", asked_at)     # waiting for the controller delays the start too
            self.waiting[job.jid] = lj
            return
        rec.pop("_asked_at", None)
        if status != 200:
            self.usage.release(job.jid, slot)
            rec.update(outcome="refused by the network", network_error=reply.get("error"))
            self.log(f"job {job.jid}: the network refused it ({status}): {reply.get('error')}")
            return
        rec["network"] = {"paths": reply["paths"], "reserved_mbps": reply["reserved_mbps"], "meters": reply["meters"]}
        self.spawn_ps(lj, resume=False)
        for chunk, host in enumerate(lj.worker_hosts()):
            self.spawn_worker(lj, host, chunk)
        rec["started_at_s"] = round(self.now(), 2)
        rec["start_delay_s"] = round(self.now() - rec.pop("_due_at", self.now()), 2)
        rec["iterations_per_worker"] = lj.iterations
        self.running[job.jid] = lj

    def poll(self, slot):
        for lj in list(self.waiting.values()):
            self.start(lj.job, lj.sched, slot)
        for jid, lj in list(self.running.items()):
            if lj.ps.proc.poll() is not None:
                lj.ps.output = last_json(lj.ps.proc)
                if lj.ps.proc.returncode == 0 and lj.ps.output.get("done"):
                    self.finish(lj, slot)
                else:
                    self.recover(lj, "ps", lj.ps, slot, f"PS exited ({lj.ps.proc.returncode})")
                continue
            for node in list(lj.workers):
                rc = node.proc.poll()
                if rc is None:
                    continue
                node.output = last_json(node.proc)
                lj.workers.remove(node)
                if rc == 0:
                    lj.finished_workers.append(node)
                else:
                    self.recover(lj, "worker", node, slot, node.output.get("error") or f"worker exited ({rc})")
                    break
        if time.monotonic() - self.reconciled_at >= RECONCILE_S:
            self.reconciled_at = time.monotonic()
            for jid in list(self.deletes_due):
                self.delete_network(jid)
            for lj in self.running.values():
                status, reply = self.put_network(lj)
                if status == 409:      # e.g. no path left: it runs on ordinary forwarding, unmetered
                    self.records[lj.job.jid].setdefault("network_refusals", []).append(
                        {"at_s": round(self.now(), 2), "error": reply.get("error")})

    def _destination(self, lj, role, src, slot, alive):
        """Where a failed node goes: its own server if alive, else another alive server
        with a free node (the PS's server first, for a worker)."""
        s_src = HOSTS.index(src)
        if alive[src]:
            return s_src
        order = [lj.sched.ps_server] + [s for s in range(len(HOSTS)) if s != lj.sched.ps_server]
        for s in order:
            if s != s_src and alive[HOSTS[s]] and self.usage.can_move(lj.job.jid, role, s_src, s, slot):
                return s
        return None

    def recover(self, lj, role, node, slot, reason):
        jid = lj.job.jid
        alive = self.alive()
        ps_host = HOSTS[lj.sched.ps_server]
        if role == "worker" and not alive[ps_host]:        # its PS is unreachable: the PS moves
            role, node, reason = "ps", lj.ps, f"{reason}; the PS host {ps_host} is down"
        event = {"at_s": round(self.now(), 2), "role": role, "from": node.host, "reason": reason[:200]}
        if len(lj.recoveries) >= MAX_RECOVERIES:
            return self.fail(lj, slot, f"more than {MAX_RECOVERIES} recoveries; last: {reason}")
        dst = self._destination(lj, role, node.host, slot, alive)
        if dst is None:
            return self.fail(lj, slot, f"no free {role} node on a live server after: {reason}")
        if dst != HOSTS.index(node.host):
            lj.sched = self.usage.move(jid, role, HOSTS.index(node.host), dst, slot)
        event["to"] = HOSTS[dst]
        status, reply = self.put_network(lj)               # the new paths and meters, before the traffic
        if status == 409:
            return self.fail(lj, slot, f"the network refused the job after moving its {role}: {reply.get('error')}")
        if role == "ps":
            for other in [lj.ps, *lj.workers]:             # workers follow their PS
                if other.proc.poll() is None:
                    other.proc.kill()
                    other.proc.wait(timeout=10)
            lj.workers = []
            self.spawn_ps(lj, resume=True)
            new = [self.spawn_worker(lj, host, chunk) for chunk, host in enumerate(lj.worker_hosts())]
        else:
            new = [self.spawn_worker(lj, HOSTS[dst], node.chunk)]
        event["_nodes"] = new          # their first push is the recovery (read when they end)
        event["recovered_at_s"] = round(self.now(), 2)
        lj.recoveries.append(event)
        self.log(f"job {jid}: {role} on {event['from']} replaced on {event['to']} ({reason[:80]})")

    def _stop(self, lj, slot):
        for node in [lj.ps, *lj.workers]:
            if node.proc.poll() is None:
                try:
                    node.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=10)
            node.output = node.output or last_json(node.proc)
        rec = self.records[lj.job.jid]
        for event in lj.recoveries:
            pushes = [n.output["first_push_at"] - self.t0 for n in event.pop("_nodes", ())
                      if n.output.get("first_push_at")]
            event["first_push_s"] = round(min(pushes), 2) if pushes else None
        rec["job_packets"] = self.job_packets(lj.job.jid)
        self.delete_network(lj.job.jid)
        self.usage.release(lj.job.jid, slot)
        del self.running[lj.job.jid]
        done_at = lj.ps.output.get("done_at", time.time()) - self.t0       # the PS's clock, not the poll's
        rec.update(finished_at_s=round(done_at, 2), recoveries=lj.recoveries,
                   within_reservation=done_at <= (lj.sched.end + 1) * self.slot_s,
                   final_placement={"workers": {HOSTS[i]: int(c) for i, c in enumerate(lj.sched.workers) if c},
                                    "ps": HOSTS[lj.sched.ps_server]})

    def finish(self, lj, slot):
        self._stop(lj, slot)
        rec = self.records[lj.job.jid]
        rec["outcome"] = "finished"
        rec["outputs"] = [lj.ps.output] + [w.output for w in lj.finished_workers + lj.workers if w.output]

    def fail(self, lj, slot, why):
        for node in [lj.ps, *lj.workers]:
            if node.proc.poll() is None:
                node.proc.kill()
        self._stop(lj, slot)
        self.records[lj.job.jid].update(outcome="failed", error=why)
        self.log(f"job {lj.job.jid} failed: {why}")


# -- faults ---------------------------------------------------------------------------
def fault_targets(driver, events):
    """The running jobs a fault may hit, best first: those whose nodes have run
    ``FAULT_AFTER_S`` (pushes flow), no earlier fault's jobs while there are others,
    distributed before centralised, the most of the model's time left (so that the
    recovery happens before the job would have ended)."""
    hit = {j for e in events for j in e["jobs"]}
    now = driver.now()
    started = {jid: driver.records[jid]["started_at_s"] for jid in driver.running}

    def time_left(lj):
        return started[lj.job.jid] + lj.iterations * float(lj.job.tau_s[lj.sched.w, lj.sched.p]) - now

    ready = [lj for lj in driver.running.values() if now - started[lj.job.jid] >= FAULT_AFTER_S]
    return sorted(ready, key=lambda lj: (lj.job.jid in hit, lj.sched.kind != "distributed", -time_left(lj)))


def inject(driver, fault, events, log):
    """Inject ``fault`` on the best of ``fault_targets``; returns the event, or None while
    no running job can take it."""
    jobs = fault_targets(driver, events)
    if not jobs:
        return None
    event = {"fault": fault, "at_s": round(driver.now(), 2)}
    if fault == "controller-restart":
        event["jobs"] = sorted(driver.running)
    else:
        for lj in jobs:
            remote = [w for w in lj.workers if w.host != lj.ps.host and w.proc.poll() is None]
            if fault == "ps-kill" or remote:
                break
        else:
            return None
        event["jobs"] = [lj.job.jid]
        if fault == "worker-kill":
            remote[0].proc.send_signal(signal.SIGKILL)
            event["target"] = remote[0].host
        elif fault == "ps-kill":
            lj.ps.proc.send_signal(signal.SIGKILL)
            event["target"] = lj.ps.host
        else:
            event["target"] = remote[0].host
    if fault == "controller-restart":         # in a thread: the driver keeps polling meanwhile
        def restart():
            driver.bed.restart_controller()
            event["restarted_at_s"] = round(driver.now(), 2)
        event["_undo"] = threading.Thread(target=restart, daemon=True)
        event["_undo"].start()
    elif fault == "host-link":
        host = event["target"]
        event["jobs"] = sorted({lj.job.jid for lj in driver.running.values()
                                if host in [w.host for w in lj.workers] + [lj.ps.host]})
        driver.bed.set_link_up(host, LEAF[host], False)
        undo = threading.Timer(OUTAGE_S, driver.bed.set_link_up, (host, LEAF[host], True))
        undo.daemon = True
        undo.start()
        event["_undo"] = undo
    log(f"fault {fault} at {event['at_s']} s: jobs {event['jobs']} ({event.get('target', '')})")
    return event


def fault_rows(events, records, accepted_at):
    """One row per fault type: jobs hit, finished, failed explicitly, lost, recovery times."""
    rows = []
    for fault in sorted({e["fault"] for e in events}):
        mine = [e for e in events if e["fault"] == fault]
        hit = sorted({j for e in mine for j in e["jobs"]})
        outcome = [records[j].get("outcome") for j in hit]
        recovery = []
        for e in mine:
            if fault == "controller-restart":     # until the new controller accepted a job's network
                after = e.get("restarted_at_s", float("inf"))   # (a put, or the delete of an ended job's)
                back = [t for times in accepted_at.values() for t in times if t > after]
                recovery.append(min(back) - e["at_s"] if back else None)
                continue
            # until the first push of a replacement (worker, or the restarted PS's workers), or
            # until the job finished all its mini-batches if it needed none (the fault came too late to matter)
            done = [r["first_push_s"] - e["at_s"] for j in e["jobs"] for r in records[j].get("recoveries", ())
                    if r["at_s"] >= e["at_s"] and r.get("first_push_s") is not None]
            done += [records[j]["finished_at_s"] - e["at_s"] for j in e["jobs"]
                     if records[j].get("outcome") == "finished" and not any(
                         r["at_s"] >= e["at_s"] for r in records[j].get("recoveries", ()))]
            recovery.append(min(done) if done else None)
        known = [r for r in recovery if r is not None]
        rows.append({"fault": fault, "events": len(mine), "jobs_hit": len(hit),
                     "finished": outcome.count("finished"), "failed": outcome.count("failed"),
                     "lost": sum(o is None for o in outcome),
                     "recovery_s_max": round(max(known), 2) if known else None,
                     "unrecovered_events": sum(r is None for r in recovery)})
    return rows


def _deleted(bed, jid):
    """DELETE a job's network; False while the controller answers 503 (it is settling)."""
    import urllib.error
    try:
        bed.rest_put(f"/sdncep/v1/pricing/jobs/{jid}", {}, timeout=5, method="DELETE")
        return True
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return False


def meter_check(bed, log):
    """Bulk TCP e1 -> e3 for 3 s, unmetered and then through a job network metered at
    ``WORKER_MBPS``: what the meters let through (Mbit/s, each way)."""
    from controller.job_flows import MAX_JOB_ID
    server = ("import socket,time\ns=socket.create_server(('0.0.0.0',5999));c,_=s.accept();n=0;t=time.time()\n"
              "while True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n*8/(time.time()-t)/1e6)")
    e1, e3 = bed.net["e1"], bed.net["e3"]
    client = (f"import socket,time\ns=socket.create_connection(('{e3.IP()}',5999));t=time.time()\n"
              "while time.time()-t<3: s.sendall(b'x'*16384)\ns.close()")

    def blast():
        srv = e3.popen(["python3", "-c", server], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        e1.cmd(f"timeout 20 python3 -c \"{client}\"")
        try:
            return float(srv.communicate(timeout=20)[0].strip() or "nan")
        except (subprocess.TimeoutExpired, ValueError):
            srv.kill()
            return float("nan")
    plain = blast()
    body = {"ps": e3.IP(), "port": 5999, "workers": [e1.IP()], "worker_mbps": WORKER_MBPS, "ps_mbps": PS_MBPS}
    bed.rest_put(f"/sdncep/v1/pricing/jobs/{MAX_JOB_ID}", body, timeout=5)
    metered = blast()
    bed.wait_until(lambda: _deleted(bed, MAX_JOB_ID), timeout=30, what="the meter check's flows removed")
    log(f"meter check: bulk TCP e1->e3 {plain:.1f} Mbit/s unmetered, {metered:.1f} Mbit/s metered at {WORKER_MBPS:g}")
    return {"unmetered_mbps": round(plain, 2), "metered_mbps": round(metered, 2), "meter_mbps": WORKER_MBPS}


def summarise(records, rtts, worker_bw):
    rows = []
    for jid, rec in sorted(records.items()):
        outputs = rec.pop("outputs", None)
        if outputs:
            tau = job_tau(rec, rtts, worker_bw)
            ps_out = outputs[0]
            ws = [o for o in outputs[1:] if o.get("iterations")]
            it = float(np.median([w["iteration_s_median"] for w in ws])) if ws else float("nan")
            rec.update({"loss_first": round(float(np.mean([w["loss_first"] for w in ws])), 3) if ws else None,
                        "loss_last": round(float(np.mean([w["loss_last"] for w in ws])), 3) if ws else None,
                        "heldout_acc": round(ps_out.get("heldout_acc", float("nan")), 3),
                        "pushes": ps_out.get("pushes"), "iteration_ms": round(1e3 * it, 1),
                        "tau_ms": round(1e3 * tau, 1), "iteration_error": round(abs(it - tau) / tau, 3)})
        rows.append(rec)
    return rows


def run_jobs(driver, jobs, book, events, faults, args, slots, log):
    """Slot by slot: admit the arrivals, start the jobs due, poll, inject the faults; then
    wait for the last jobs, at most ``DRAIN_S`` (then they fail explicitly)."""
    usage, cluster, t0 = driver.usage, driver.cluster, driver.t0
    pending, admitted = sorted(jobs, key=lambda j: j.arrival), {}
    fault_queue, last_fault = list(faults), -math.inf

    def poll(slot):
        nonlocal last_fault
        driver.poll(slot)
        if fault_queue and driver.now() >= last_fault + args.fault_every_s:
            event = inject(driver, fault_queue[0], events, log)
            if event:
                events.append(event)
                fault_queue.pop(0)
                last_fault = driver.now()

    for slot in range(slots):
        while time.time() < t0 + slot * args.slot_s:
            poll(slot - 1)
            time.sleep(0.1)
        for job in [j for j in pending if j.arrival == slot]:
            pending.remove(job)
            s = admit(job, cluster, usage, book, PLACEMENT)
            rec = driver.records[job.jid] = {"jid": job.jid, "arrival": job.arrival, "chunks": job.chunks,
                                             "minibatches": job.minibatches_total, "admitted": s is not None}
            if s is None:
                rec["outcome"] = "not admitted"
                continue
            admitted[job.jid] = (job, s)
            rec.update({"start": s.start, "end": s.end, "kind": s.kind, "ps_count": s.ps_count,
                        "workers": {HOSTS[i]: int(c) for i, c in enumerate(s.workers) if c},
                        "ps": HOSTS[s.ps_server], "payment": round(s.cost, 3), "utility": round(s.utility, 3)})
        for jid, (job, s) in list(admitted.items()):
            if s.start == slot:
                del admitted[jid]
                driver.records[jid]["reuses_nodes_of"] = sorted(
                    j for j, r in driver.records.items() if r.get("finished_at_s") is not None
                    and (set(r["final_placement"]["workers"]) | {r["final_placement"]["ps"]})
                    & {HOSTS[i] for i in s.servers()})
                driver.start(job, usage.active[jid], slot)
        if not pending and not admitted and not driver.running and not driver.waiting:
            break
    deadline = time.monotonic() + DRAIN_S
    while (driver.running or driver.waiting or driver.deletes_due) and time.monotonic() < deadline:      # the last slot's jobs
        poll(slots - 1)
        time.sleep(0.1)
    for lj in list(driver.running.values()):
        driver.fail(lj, slots - 1, f"still running {DRAIN_S:g} s after the last slot")
    for jid in list(driver.waiting):
        driver.waiting.pop(jid)
        usage.release(jid, slots - 1)
        driver.records[jid].update(outcome="failed", error="never started: its hosts stayed busy")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sdncep pricing live", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slot-s", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faults", default="", help=f"comma list of {', '.join(FAULTS)}, or 'all'")
    ap.add_argument("--fault-every-s", type=float, default=3.0, help="at least this many seconds between two faults")
    ap.add_argument("--out", default=str(REPO / "results" / "pricing" / "live"))
    args = ap.parse_args(argv)
    faults = list(FAULTS) if args.faults == "all" else [f for f in args.faults.split(",") if f]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        ap.error(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    import os
    if os.geteuid() != 0:
        print("error: the live run needs root (Mininet, OVS)", file=sys.stderr)
        return 2
    from agents.pricing.training import digits
    from sdncep.records import manifest, new_run_dir, write_manifest
    from topologies.spec import TopologySpec
    from topologies.testbed import Testbed
    out = new_run_dir(args.out)
    spec = TopologySpec()
    write_manifest(out, manifest("pricing-live", vars(args), topology=dict(vars(spec))))
    data = out / "digits.npz"
    np.savez(data, **dict(zip(("X", "y"), digits())))
    slots = 24
    # the mechanism plans with the seconds of a slot a job can use: its processes take
    # about a second to start (imports, connecting), which the model of the text has not
    cluster = make_cluster(args.slot_s - SETUP_S, slots)
    usage, book = Usage(cluster), PriceBook(cluster, PriceConfig())

    def log(text):
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)
    events = []
    with Testbed(spec, run_dir=out / "bed", controller_args=["controller.pricing_rest"]) as bed:
        bed.wait_until(lambda: bed.view_complete(capacities=True), timeout=90, what="the controller's view")
        ips = {h: bed.net[h].IP() for h in HOSTS}
        rtts = measure_rtts(bed, ips)                            # the model's RTT term
        meters = meter_check(bed, log)
        rtt = float(np.median([v for (a, b), v in rtts.items() if a != b]))
        jobs = make_jobs(cluster, args.jobs, args.seed, rtt)
        load_compiled_search(jobs[0], cluster, PLACEMENT)      # else compiling would delay slot 0's jobs
        t0 = time.time()
        driver = Driver(bed, cluster, usage, data, args.slot_s, t0, log)
        try:
            run_jobs(driver, jobs, book, events, faults, args, slots, log)
            flows_left = driver.job_flows_left()
        finally:
            driver.kill_all()
            for event in events:
                undo = event.pop("_undo", None)
                if undo is not None:
                    undo.join()
    rows = summarise(driver.records, rtts, cluster.worker_bw[0])
    table = fault_rows(events, {r["jid"]: r for r in rows}, driver.accepted_at)
    result = {"rtt_s": {f"{a}-{b}": v for (a, b), v in rtts.items() if a < b}, "slot_s": args.slot_s, "meter_check": meters, "jobs": rows,
              "faults": events, "fault_table": table, "job_flows_left": flows_left,
              "lost": sum(1 for r in rows if r.get("admitted") and r.get("outcome") is None)}
    (out / "live.json").write_text(json.dumps(result, indent=1, default=str))
    cols = ["jid", "arrival", "outcome", "start", "end", "started_at_s", "finished_at_s", "within_reservation",
            "kind", "workers", "ps", "reuses_nodes_of", "loss_first", "loss_last", "heldout_acc", "pushes",
            "job_packets", "iteration_ms", "tau_ms", "iteration_error"]
    with open(out / "jobs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nslot {args.slot_s} s, median RTT {1e3 * rtt:.2f} ms; meters: {meters}")
    print("  ".join(cols))
    for r in rows:
        print("  ".join(str(r.get(c, "-")).replace(" ", "") for c in cols))
    if table:
        print("\nfault  events  jobs_hit  finished  failed  lost  recovery_s_max  unrecovered_events")
        for row in table:
            print("  ".join(str(v) for v in row.values()))
    print(f"\nadmitted jobs without an outcome (lost): {result['lost']}\nrecords in {out}")
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

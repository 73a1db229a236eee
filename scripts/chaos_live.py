"""Chaos run: the live loop on the testbed while faults are injected on a schedule.

    sdncep chaos                       # every fault 4 times, about 1400 tasks (about 8 min, root)
    sdncep chaos --repeats 2 --rate 2  # shorter

Both end devices send tasks without pause (Poisson, ``--rate`` per device). In each
event a fault is injected ``LEAD_S`` into a run and undone ``--outage`` s later:

* ``worker-kill``: e2's worker is SIGKILLed (its heartbeats stop), then restarted;
* ``host-link``: the link e2-l2 goes down (port status), then up;
* ``fabric-link``: the link l2-c1 goes down: transfers are rerouted via c2;
* ``controller-restart``: ryu-manager is SIGKILLed and started again (switches keep
  their flows in fail mode secure; the new controller rebuilds its view);
* ``overload``: a burst of ``--burst`` tasks from every device at once on top.

Events alternate the method between SDN-CEP and the Oracle, so that the plans made
during node outages can be compared. For each fault type the table gives the
tasks of its events, how many completed, were retried (planned again), failed
with an explicit error, and were lost (no record at all: must be 0), and the
recovery time: from the fault to the first completion of a task planned after it
on a plan that avoids the failed part (a controller restart: from the kill to the
first task the new controller planned; overload: until the burst drained); and the
affected tasks (in flight on the failed part at the fault, or first planned onto it
before the controller knew) with the longest time any took from the fault to its
result. e2 is the fastest edge node, where most plans go: a fault there is felt.
Writes records.csv/json, events.json and summary.json to a run folder.
"""

import argparse
import csv
import json
import statistics
import sys
import threading
import time

from tqdm import tqdm

FAULTS = ("worker-kill", "host-link", "fabric-link", "controller-restart", "overload")
NODE_FAULTS = ("worker-kill", "host-link")
METHODS = ("sdn-cep", "oracle")
LEAD_S = 3.0           # into each event's run before the fault
SETTLE_S = 5.0         # after the fault is undone, before the run ends
FAULTY_NODE, HOST_LINK, FABRIC_LINK = "e2", ("e2", "l2"), ("l2", "c1")


# -- the tables (pure: records and events in, rows out) ----------------------------
def uses_fault(record, fault, node_ip, plan_key="plan"):
    """Whether a task's plan (``plan_key``: its final ``plan`` or ``first_plan``) or its
    transfers' paths go through the part that ``fault`` takes down."""
    if fault in NODE_FAULTS:
        return f"{node_ip}:" in (record.get(plan_key) or "")
    if fault == "fabric-link":
        pairs = {pair for path in record.get("paths") or () for pair in zip(path["switches"], path["switches"][1:])}
        return bool(pairs & {FABRIC_LINK, FABRIC_LINK[::-1]})
    return False


def event_rows(records, events, expected, node_ip):
    """One row per event: its tasks' outcomes, its recovery time and its affected tasks.

    ``records``: the devices' task records (runtime.device) with ``event`` and
    ``device``; ``events``: {"id", "fault", "method", "at", "undone_at"}; ``expected``:
    {event id: tasks the devices were asked to run}; ``node_ip``: the faulty node's.

    Recovery (s from the fault): until the first task planned after it (arisen after
    it, or planned again) completed on a plan that avoids the failed part; after a
    controller restart, any task planned by the new controller; for overload, until
    the burst drained. Affected tasks: those whose first plan used the failed part
    and that were in flight at the fault or arose during it (a node or link fault);
    ``affected_worst_s`` is the longest any took to complete, counted from the fault.
    """
    rows = []
    for event in events:
        fault, at = event["fault"], event["at"]
        mine = [r for r in records if r["event"] == event["id"]]
        ok = [r for r in mine if r["status"] == "ok"]
        done = {id(r): r["arrived_at"] + r["e2e_s"] for r in ok}
        if fault == "overload":
            recovery = max(done.values(), default=at) - at
        else:
            since = event["undone_at"] if fault == "controller-restart" else at
            new = [done[id(r)] for r in ok if (r["arrived_at"] >= at or r.get("retries"))
                   and done[id(r)] >= since and not uses_fault(r, fault, node_ip)]
            recovery = min(new) - at if new else None
        affected = [r for r in mine if fault not in ("overload", "controller-restart")
                    and uses_fault(r, fault, node_ip, "first_plan" if fault in NODE_FAULTS else "plan")
                    and (r["arrived_at"] < at < r["arrived_at"] + (r["e2e_s"] or float("inf"))
                         or at <= r["arrived_at"] < event["undone_at"])]
        rows.append({"event": event["id"], "fault": fault, "method": event["method"],
                     "tasks": expected[event["id"]], "completed": len(ok),
                     "retried": sum(bool(r.get("retries")) for r in mine),
                     "failed": sum(r["status"] != "ok" for r in mine),
                     "errors": ",".join(sorted({str(r.get("error_code")) for r in mine if r["status"] != "ok"})),
                     "lost": expected[event["id"]] - len(mine), "recovery_s": recovery,
                     "affected": len(affected),
                     "affected_worst_s": max((done[id(r)] - at for r in affected if id(r) in done), default=None)})
    return rows


def fault_table(rows, faults=FAULTS):
    """Per fault type (in the order of ``faults``): the events' rows summed, recovery as
    median and worst. A row: its event's fault, tasks, completed, retried, failed,
    errors (comma-separated codes), lost, recovery_s, affected and affected_worst_s."""
    table = []
    for fault in faults:
        mine = [r for r in rows if r["fault"] == fault]
        if not mine:
            continue
        recoveries = [r["recovery_s"] for r in mine if r["recovery_s"] is not None]
        tasks = sum(r["tasks"] for r in mine)
        completed = sum(r["completed"] for r in mine)
        table.append({"fault": fault, "events": len(mine), "tasks": tasks, "completed": completed,
                      "completed_pct": 100.0 * completed / tasks if tasks else 0.0,
                      "retried": sum(r["retried"] for r in mine), "failed": sum(r["failed"] for r in mine),
                      "errors": ",".join(sorted({e for r in mine for e in r["errors"].split(",") if e})),
                      "lost": sum(r["lost"] for r in mine),
                      "recovery_median_s": statistics.median(recoveries) if recoveries else None,
                      "recovery_worst_s": max(recoveries) if recoveries else None,
                      "unrecovered": len(mine) - len(recoveries),
                      "affected": sum(r["affected"] for r in mine),
                      "affected_worst_s": max((r["affected_worst_s"] for r in mine
                                               if r["affected_worst_s"] is not None), default=None)})
    return table


def outage_plans(records, events, node_ip):
    """SDN-CEP against the Oracle on the tasks that arose while a node was out: per
    method, tasks, median measured latency, mean predicted latency, and how many
    first plans still used the node (``node_ip``) before the controller knew."""
    windows = {e["id"]: e for e in events if e["fault"] in NODE_FAULTS}
    out = {}
    for method in METHODS:
        mine = [r for r in records if r["event"] in windows and r["method"] == method and r["status"] == "ok"
                and windows[r["event"]]["at"] <= r["arrived_at"] < windows[r["event"]]["undone_at"]]
        if mine:
            out[method] = {"tasks": len(mine), "median_e2e_s": statistics.median(r["e2e_s"] for r in mine),
                           "mean_predicted_s": statistics.fmean(r["predicted_latency_s"] for r in mine),
                           "on_failed_node": sum(f"{node_ip}:" in (r.get("first_plan") or "") for r in mine)}
    if set(out) == set(METHODS):
        out["ratio_median_e2e"] = out["sdn-cep"]["median_e2e_s"] / out["oracle"]["median_e2e_s"]
        out["ratio_predicted"] = out["sdn-cep"]["mean_predicted_s"] / out["oracle"]["mean_predicted_s"]
    return out


def write_outputs(out, records, events, summary):
    """records.json/csv, events.json, summary.json and faults.csv (summary["faults"]) in ``out``."""
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "events.json").write_text(json.dumps(events, indent=1))
    (out / "records.json").write_text(json.dumps(records, default=float))
    keys = sorted({k for r in records for k in r if not isinstance(r[k], (dict, list))})
    with open(out / "records.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    with open(out / "faults.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(summary["faults"][0]))
        writer.writeheader()
        writer.writerows(summary["faults"])


def print_table(table, outage):
    def cell(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"
    print(f"{'fault':<19}{'events':>7}{'tasks':>7}{'done':>7}{'done%':>8}{'retried':>8}{'failed':>7}{'lost':>6}"
          f"{'recovery p50':>14}{'worst':>8}{'affected':>10}{'worst':>8}  errors")
    for row in table:
        print(f"{row['fault']:<19}{row['events']:>7}{row['tasks']:>7}{row['completed']:>7}"
              f"{row['completed_pct']:>8.1f}{row['retried']:>8}{row['failed']:>7}{row['lost']:>6}"
              f"{cell(row['recovery_median_s']):>13}s{cell(row['recovery_worst_s']):>7}s"
              f"{row['affected']:>10}{cell(row['affected_worst_s']):>7}s  {row['errors'] or '-'}")
    total = {k: sum(r[k] for r in table) for k in ("tasks", "completed", "lost")}
    print(f"{'all':<19}{'':>7}{total['tasks']:>7}{total['completed']:>7}"
          f"{100.0 * total['completed'] / max(total['tasks'], 1):>8.1f}{'':>8}{'':>7}{total['lost']:>6}")
    if outage:
        print(f"\nplans while {FAULTY_NODE} was out (worker killed or link down):")
        for method in METHODS:
            if method in outage:
                m = outage[method]
                print(f"  {method:<8} {m['tasks']:>4} tasks  median {m['median_e2e_s'] * 1e3:7.1f} ms measured, "
                      f"{m['mean_predicted_s'] * 1e3:7.1f} ms predicted (mean); first plans on {FAULTY_NODE}: "
                      f"{m['on_failed_node']}")
        if "ratio_median_e2e" in outage:
            print(f"  sdn-cep / oracle: {outage['ratio_median_e2e']:.3f} measured (median), "
                  f"{outage['ratio_predicted']:.3f} predicted (mean)")


# -- the run ---------------------------------------------------------------------
class Injector:
    """Injects one fault into the testbed and undoes it."""

    def __init__(self, bed):
        self.actions = {   # fault -> (inject, undo); an overload is a burst, not an injection
            "worker-kill": (lambda: bed.kill_worker(FAULTY_NODE), lambda: bed.start_worker(FAULTY_NODE)),
            "host-link": (lambda: bed.set_link_up(*HOST_LINK, False), lambda: bed.set_link_up(*HOST_LINK, True)),
            "fabric-link": (lambda: bed.set_link_up(*FABRIC_LINK, False),
                            lambda: bed.set_link_up(*FABRIC_LINK, True)),
            "controller-restart": (bed.kill_controller, bed.restart_controller),
        }

    def inject(self, fault):
        self.actions[fault][0]()

    def undo(self, fault):
        self.actions[fault][1]()


def schedule(repeats):
    """(event id, fault, method): the fault types interleaved, methods alternating."""
    return [(n, fault, METHODS[(n // len(FAULTS)) % len(METHODS)])
            for n, fault in enumerate([f for _ in range(repeats) for f in FAULTS])]


def run_event(bench, injector, event_id, fault, method, args, log):
    """One run of both devices with the fault injected LEAD_S into it; its records."""
    window = LEAD_S + args.outage + SETTLE_S
    count = max(int(window * args.rate), 1)
    event = {"id": event_id, "fault": fault, "method": method}

    def inject():
        time.sleep(LEAD_S)
        event["at"] = time.time()
        if fault == "overload":
            event["undone_at"] = event["at"]
            return
        injector.inject(fault)
        time.sleep(args.outage)
        injector.undo(fault)
        event["undone_at"] = time.time()

    expected = count * 2
    if fault == "overload":
        # the burst is the run: every device's tasks at once, after a steady lead-in
        lead_count = max(int(LEAD_S * args.rate), 1)
        lead = bench.run_tasks(method, lead_count, {"event": event_id}, rate=args.rate,
                               devices=("d1", "d2"), seed=event_id)
        event["at"] = time.time()
        event["undone_at"] = event["at"]
        burst = bench.run_tasks(method, args.burst, {"event": event_id}, arrivals="batch",
                                devices=("d1", "d2"), seed=event_id, timeout=300)
        rows, expected = lead + burst, 2 * (lead_count + args.burst)
    else:
        thread = threading.Thread(target=inject, daemon=True)
        thread.start()
        try:
            rows = bench.run_tasks(method, count, {"event": event_id}, rate=args.rate, devices=("d1", "d2"),
                                   seed=event_id, timeout=window + 120)
        finally:
            thread.join(timeout=args.outage + 60)
    log(f"event {event_id}: {fault} ({method}) {sum(r['status'] == 'ok' for r in rows)}/{expected} ok")
    return event, rows, expected


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="events per fault type")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"fault types, of {','.join(FAULTS)}")
    parser.add_argument("--rate", type=float, default=3.0, help="tasks/s per device")
    parser.add_argument("--outage", type=float, default=4.0, help="seconds a fault lasts")
    parser.add_argument("--burst", type=int, default=40, help="overload: tasks per device at once")
    parser.add_argument("--wan", type=float, default=20.0, help="WAN Mbit/s")
    parser.add_argument("--out", help="run folder (default: a new one under results/chaos/)")
    args = parser.parse_args(argv)
    args.faults = tuple(filter(None, args.faults.split(",")))
    if set(args.faults) - set(FAULTS) or not args.faults:
        parser.error(f"--faults takes fault types of {', '.join(FAULTS)}")
    if args.repeats < 1 or args.rate <= 0 or args.outage <= 0 or args.burst < 1 or args.wan <= 0:
        parser.error("--repeats, --rate, --outage, --burst and --wan must be positive")
    return args


def main(argv=None):
    from scripts.bench_live import LiveBench, agent_run
    from topologies.testbed import Testbed, TestbedError

    args = parse_args(argv)
    out, conf, spec = agent_run("chaos", args, wan_mbit=args.wan)
    plan = [e for e in schedule(args.repeats) if e[1] in args.faults]
    records, events, expected = [], [], {}
    started = time.monotonic()
    try:
        with Testbed(spec, controller_args=["--config-file", str(conf)]) as bed:
            bed.wait_until(bed.view_complete, timeout=180, interval=0.5, what="a complete view")
            node_ip = bed.net[FAULTY_NODE].IP()
            with LiveBench(bed, out, "alexnet") as bench:
                bench.run_tasks("only-edge", 2, {"event": -1}, rate=2.0, devices=("d1", "d2"))   # warm up
                bench.records.clear()
                injector = Injector(bed)
                progress = tqdm(plan, desc="chaos", unit="event")
                for event_id, fault, method in progress:
                    event, rows, expected[event_id] = run_event(bench, injector, event_id, fault, method, args,
                                                                progress.write)
                    events.append(event)
                    records += rows
                    bed.wait_until(lambda: bed.view_complete(capacities=False), timeout=60, interval=0.5,
                                   what="the view back after the fault")
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = event_rows(records, events, expected, node_ip)
    table, outage = fault_table(rows), outage_plans(records, events, node_ip)
    summary = {"faults": table, "events": rows, "outage_plans": outage, "took_s": time.monotonic() - started}
    write_outputs(out, records, events, summary)
    print_table(table, outage)
    print(f"\nrecords, events and summary in {out}; took {summary['took_s']:.0f} s")
    return 0 if sum(r["lost"] for r in table) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Soak run: many tasks at a steady rate; does the memory of the controller and the
workers stay flat?

    sdncep soak                         # 10 000 tasks, 5/s per device (about 17 min, root)
    sdncep soak --tasks 2000 --rate 4

Both devices run SDN-CEP tasks in chunks of ``--chunk`` (half from each); after each
chunk the resident memory (RSS, /proc/PID/status) of ryu-manager and of every worker
is read. The table compares the first chunk with the last: the growth must stay
under ``--max-growth`` percent. Writes rss.csv and summary.json to a run folder.
"""

import argparse
import csv
import json
import sys
import time

from tqdm import tqdm


def rss_bytes(pid):
    """Resident set size of a process, bytes (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def growth(samples):
    """{process: percent growth of RSS from the first sample to the last}."""
    first, last = samples[0], samples[-1]
    return {name: 100.0 * (last[name] - first[name]) / first[name] for name in first
            if first[name] and last.get(name)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in all")
    parser.add_argument("--chunk", type=int, default=1000, help="tasks between two memory readings")
    parser.add_argument("--rate", type=float, default=5.0, help="tasks/s per device")
    parser.add_argument("--max-growth", type=float, default=10.0, help="allowed RSS growth, percent")
    parser.add_argument("--out", help="run folder (default: a new one under results/soak/)")
    args = parser.parse_args(argv)
    if args.tasks < 2 * args.chunk or args.chunk < 2 or args.rate <= 0:
        parser.error("--tasks must be at least two chunks, --chunk >= 2 and --rate > 0")
    return args


def main(argv=None):
    from scripts.bench_live import LiveBench, agent_run
    from topologies.testbed import Testbed, TestbedError

    args = parse_args(argv)
    out, conf, spec = agent_run("soak", args)
    samples, outcomes = [], {"tasks": 0, "ok": 0, "lost": 0}
    started = time.monotonic()
    try:
        with Testbed(spec, controller_args=["--config-file", str(conf)]) as bed:
            bed.wait_until(bed.view_complete, timeout=180, interval=0.5, what="a complete view")
            pids = {"controller": bed.ryu.pid}
            pids.update({name: bed.net[name].service.pid for name, role, _ in spec.hosts() if role != "device"})
            with LiveBench(bed, out, "alexnet") as bench:
                bench.run_tasks("sdn-cep", 20, {"chunk": -1}, rate=args.rate, devices=("d1", "d2"))  # warm
                chunks = args.tasks // args.chunk
                for chunk in tqdm(range(chunks), desc="soak", unit="chunk"):
                    rows = bench.run_tasks("sdn-cep", args.chunk // 2, {"chunk": chunk}, rate=args.rate,
                                           devices=("d1", "d2"), seed=chunk, timeout=args.chunk / args.rate + 300)
                    bench.records.clear()     # a soak keeps no records in memory
                    outcomes["tasks"] += 2 * (args.chunk // 2)
                    outcomes["ok"] += sum(r["status"] == "ok" for r in rows)
                    outcomes["lost"] += 2 * (args.chunk // 2) - len(rows)
                    samples.append({name: rss_bytes(pid) for name, pid in pids.items()})
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with open(out / "rss.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["chunk", *samples[0]])
        writer.writeheader()
        writer.writerows(dict(s, chunk=i) for i, s in enumerate(samples))
    grew = growth(samples)
    summary = dict(outcomes, took_s=time.monotonic() - started, rss_first=samples[0], rss_last=samples[-1],
                   growth_pct=grew, max_growth_pct=args.max_growth)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{outcomes['tasks']} tasks: {outcomes['ok']} ok, {outcomes['lost']} lost; "
          f"took {summary['took_s']:.0f} s")
    print(f"{'process':<12}{'RSS first':>12}{'RSS last':>12}{'growth':>9}")
    for name in samples[0]:
        first, last = samples[0][name], samples[-1][name]
        print(f"{name:<12}{(first or 0) / 2**20:>10.1f}MB{(last or 0) / 2**20:>10.1f}MB"
              f"{grew.get(name, float('nan')):>8.1f}%")
    ok = outcomes["lost"] == 0 and all(g < args.max_growth for g in grew.values()) and len(grew) == len(pids)
    print(f"\nrss.csv and summary.json in {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

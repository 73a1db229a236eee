"""Transport benchmark: how close does a frame transfer get to bytes*8/bandwidth?

Uses the runtime's own wire path (``wire.send_frame``: header + one ``sendall`` of the
payload view, TCP_NODELAY; ``wire.read_frame``: ``recv_into`` a preallocated buffer).
The receiver answers every frame with a small RESULT carrying its receive timestamps.

* ``oneway_s`` = receiver's last-byte time - sender's send start (needs a shared clock:
  true on loopback and between Mininet hosts);
* ``acked_s``  = send start -> ack received (adds the ack's one-way delay);
* ``ratio``    = oneway_s / (payload_bytes * 8 / bandwidth)  (target <= 1.15 at 20 Mbit/s).

Examples::

    python scripts/bench_transport.py --loopback --sizes 1MB,4MB --repeats 10
    h2$ python scripts/bench_transport.py --serve 0.0.0.0:9100
    h1$ python scripts/bench_transport.py --to 10.0.0.2:9100 --bandwidth-mbit 20 \\
            --sizes 1MB --repeats 10 --json bench.json --csv bench.csv
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import sys
import threading
import time

import numpy as np

try:
    import runtime  # noqa: F401
except ImportError:  # run as a file from a checkout: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from protocol import wire  # noqa: E402
from protocol.task_plan import parse_addr  # noqa: E402
from protocol.wire import RESULT, TASK, Frame, Hop, Stage  # noqa: E402

MODEL = "bench"


def parse_size(text: str) -> int:
    t = text.strip().upper()
    for suffix, mult in (("MIB", 2**20), ("KIB", 2**10), ("GIB", 2**30), ("MB", 10**6),
                         ("KB", 10**3), ("GB", 10**9), ("B", 1)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def _set_bufs(sock: socket.socket, kib: int) -> None:
    if kib:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, kib * 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, kib * 1024)


def serve_conn(conn: socket.socket, limits: wire.Limits) -> None:
    wire.tune_socket(conn)
    with conn:
        while True:
            try:
                f = wire.read_frame(conn, limits, allowed_models={MODEL}, idle_timeout=60)
            except wire.FrameError as e:
                print(f"receiver: {e}", file=sys.stderr)
                return
            if f is None:
                return
            ack = Frame(RESULT, f.task_id, MODEL, f.cut, f.hop_index, f.hops, f.reply_to,
                        (Stage("recv", 0, 0, 0, f.recv_start, f.recv_end),))
            conn.settimeout(limits.io_timeout)
            wire.send_frame(conn, ack)


def serve(addr: tuple[str, int], limits: wire.Limits, sockbuf_kib: int = 0,
          ready: threading.Event | None = None, bound: list | None = None) -> None:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _set_bufs(ls, sockbuf_kib)
    ls.bind(addr)
    ls.listen(8)
    if bound is not None:
        bound.append(ls.getsockname())
    if ready is not None:
        ready.set()
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(conn, limits), daemon=True).start()


def measure(addr: tuple[str, int], sizes: list[int], repeats: int, bandwidth_bps: float | None,
            limits: wire.Limits, sockbuf_kib: int = 0, timeout: float = 120.0) -> list[dict]:
    sock = socket.create_connection(addr, timeout=10)
    _set_bufs(sock, sockbuf_kib)
    wire.tune_socket(sock)
    hop = (Hop(addr[0], addr[1], 0, 1),)
    rows = []
    try:
        for size in sizes:
            payload = np.frombuffer(np.random.default_rng(size).bytes(size), np.uint8)
            for rep in range(-1, repeats):  # rep -1: warm-up (opens the congestion window)
                f = Frame(TASK, wire.new_task_id(), MODEL, 0, 0, hop, ("127.0.0.1", 1))
                sock.settimeout(timeout)
                t0 = time.time()
                nbytes = wire.send_frame(sock, f, payload, limits)
                t_sent = time.time()
                ack = wire.read_frame(sock, limits, idle_timeout=timeout)
                t1 = time.time()
                if ack is None or ack.task_id != f.task_id:
                    raise RuntimeError("bad ack")
                if rep < 0:
                    continue
                st = ack.stamps[0]
                row = {"size_bytes": size, "frame_bytes": nbytes, "rep": rep,
                       "oneway_s": st.recv_end - t0, "acked_s": t1 - t0,
                       "sendall_s": t_sent - t0, "recv_span_s": st.recv_end - st.recv_start,
                       "throughput_mbit": size * 8 / max(st.recv_end - t0, 1e-9) / 1e6}
                if bandwidth_bps:
                    ideal = size * 8 / bandwidth_bps
                    row.update(bandwidth_mbit=bandwidth_bps / 1e6, ideal_s=ideal,
                               ratio=row["oneway_s"] / ideal, ratio_acked=row["acked_s"] / ideal)
                rows.append(row)
    finally:
        sock.close()
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for size in sorted({r["size_bytes"] for r in rows}):
        rs = [r for r in rows if r["size_bytes"] == size]
        s = {"size_bytes": size, "repeats": len(rs)}
        for k in ("oneway_s", "acked_s", "throughput_mbit", "ratio", "ratio_acked"):
            vals = [r[k] for r in rs if k in r]
            if vals:
                s[f"{k}_median"] = statistics.median(vals)
                s[f"{k}_mean"] = statistics.fmean(vals)
                s[f"{k}_max"] = max(vals)
                s[f"{k}_min"] = min(vals)
        if "bandwidth_mbit" in rs[0]:
            s["bandwidth_mbit"] = rs[0]["bandwidth_mbit"]
            s["ideal_s"] = rs[0]["ideal_s"]
        out.append(s)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", metavar="HOST:PORT", help="run the receiver")
    mode.add_argument("--to", metavar="HOST:PORT", help="send to a receiver")
    mode.add_argument("--loopback", action="store_true", help="receiver in-process on 127.0.0.1")
    p.add_argument("--sizes", default="1MB", help="comma-separated payload sizes (1MB=10^6 B, 1MiB=2^20 B)")
    p.add_argument("--repeats", type=int, default=10, help="timed transfers per size (+1 warm-up)")
    p.add_argument("--bandwidth-mbit", type=float, default=None, help="nominal path rate, Mbit/s")
    p.add_argument("--sockbuf-kib", type=int, default=0, help="SO_SNDBUF/SO_RCVBUF (0: kernel autotuning)")
    p.add_argument("--json", default=None, help="write rows + summary as JSON here")
    p.add_argument("--csv", default=None, help="write per-transfer rows as CSV here")
    a = p.parse_args(argv)
    sizes = [parse_size(s) for s in a.sizes.split(",") if s.strip()]
    limits = wire.Limits(max_payload=max(sizes + [1]) + 1024, io_timeout=60, frame_timeout=600)
    if a.serve:
        print(f"receiver on {a.serve}", flush=True)
        serve(parse_addr(a.serve), wire.Limits(max_payload=1 << 30, io_timeout=60,
                                               frame_timeout=600), a.sockbuf_kib)
        return 0
    if a.loopback:
        ready, bound = threading.Event(), []
        threading.Thread(target=serve, args=(("127.0.0.1", 0), limits, a.sockbuf_kib, ready, bound),
                         daemon=True).start()
        ready.wait(5)
        addr = bound[0]
    else:
        addr = parse_addr(a.to)
    bw = a.bandwidth_mbit * 1e6 if a.bandwidth_mbit else None
    rows = measure(addr, sizes, a.repeats, bw, limits, a.sockbuf_kib)
    summary = summarize(rows)
    for s in summary:
        line = (f"size={s['size_bytes']}B oneway median={s['oneway_s_median'] * 1e3:.2f}ms "
                f"max={s['oneway_s_max'] * 1e3:.2f}ms throughput median="
                f"{s['throughput_mbit_median']:.1f}Mbit/s")
        if bw:
            line += (f" | nominal {a.bandwidth_mbit}Mbit/s ideal={s['ideal_s'] * 1e3:.2f}ms "
                     f"ratio median={s['ratio_median']:.3f} max={s['ratio_max']:.3f} "
                     f"(acked median={s['ratio_acked_median']:.3f})")
        print(line)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"target": f"{addr[0]}:{addr[1]}", "bandwidth_mbit": a.bandwidth_mbit,
                       "summary": summary, "rows": rows}, fh, indent=1)
    if a.csv and rows:
        with open(a.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Requester / task generator: send images through a split plan, record the outcome.

Result path: the client listens on a TCP port (``--listen``, default an ephemeral port on
all addresses) and puts ``reply_to = (its address as seen by the first hop, that port)``
in every TASK.  Whichever worker finishes (or fails) sends RESULT / ERROR there, so
results arrive however many hops the plan has.  TASKs go to the first hop over one
pooled connection per address.

Every submitted task ends with exactly one record: ``ok`` (RESULT), ``error`` (ERROR
frame or send failure) or ``timeout`` (nothing within ``--timeout`` seconds).

Example::

    python -m runtime.client --to 10.0.0.3:9000 --model alexnet \\
        --plan 0-4,10.0.0.9:9000:4-m --rate 2 --arrivals poisson --count 20 --out results.csv
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import socket
import statistics
import threading
import time
from typing import Sequence

import numpy as np

from protocol import wire
from protocol.task_plan import WirePlan, PlanError, parse_addr
from protocol.wire import RESULT, TASK, Frame, FrameError, Limits, Stage

log = logging.getLogger("runtime.client")

OK, FAILED, TIMEOUT = "ok", "error", "timeout"


@dataclasses.dataclass
class TaskResult:
    """Outcome of one task as seen by the requester (times are ``time.time()``)."""

    task_id: str
    status: str
    t_submit: float
    t_done: float
    classes: tuple[int, ...] = ()
    topk: tuple[wire.TopK, ...] = ()
    stages: tuple[Stage, ...] = ()
    error_code: str = ""
    error_message: str = ""
    logits: np.ndarray | None = None

    @property
    def latency_s(self) -> float:
        return self.t_done - self.t_submit

    def breakdown(self) -> dict:
        """Per-stage latency split (seconds) from the stamps carried through the plan.

        ``h{i}_net_s``: previous sender's send start -> this hop's last byte received
        (serialisation + propagation + transfer); ``h{i}_recv_s``: first to last byte;
        ``h{i}_queue_s``: waiting for the compute thread; ``h{i}_compute_s``: model.run;
        ``h{i}_send_wait_s``: compute end -> send start; ``result_net_s``: last send
        start -> result received; ``h{i}_sent_at``, ``h{i}_first_byte_at`` and
        ``h{i}_arrived_at``: when the transfer into hop i was sent, and when its first
        and last byte arrived (epoch s).  Cross-host terms assume
        synchronised clocks (true for Mininet hosts, which share the kernel clock).
        """
        out: dict = {}
        prev_send = self.t_submit
        hops = [s for s in self.stages if s.hop != wire.NO_HOP]
        for i, s in enumerate(hops):
            out[f"h{i}_name"] = s.name
            out[f"h{i}_range"] = f"{s.start}-{s.end}"
            out[f"h{i}_sent_at"] = prev_send
            out[f"h{i}_first_byte_at"] = s.recv_start or math.nan
            out[f"h{i}_arrived_at"] = s.recv_end or math.nan
            out[f"h{i}_net_s"] = s.recv_end - prev_send if s.recv_end else math.nan
            out[f"h{i}_recv_s"] = s.recv_end - s.recv_start if s.recv_start else math.nan
            out[f"h{i}_queue_s"] = s.compute_start - s.recv_end if s.compute_start else math.nan
            out[f"h{i}_compute_s"] = (s.compute_end - s.compute_start
                                      if s.compute_end else math.nan)
            out[f"h{i}_send_wait_s"] = (s.send_start - s.compute_end
                                        if s.send_start and s.compute_end else math.nan)
            prev_send = s.send_start or prev_send
        if self.status == OK and hops:
            out["result_net_s"] = self.t_done - prev_send
        return out


def record_hops(record: dict) -> tuple[tuple[str, int, int], ...]:
    """A task record's plan as it ran, ((node, start, end), ...), read back from the
    ``h{i}_name`` and ``h{i}_range`` fields :meth:`TaskResult.breakdown` writes."""
    hops, i = [], 0
    while record.get(f"h{i}_name"):
        start, end = record[f"h{i}_range"].split("-")
        hops.append((record[f"h{i}_name"], int(start), int(end)))
        i += 1
    return tuple(hops)


class _Pending:
    __slots__ = ("event", "result", "t_submit")

    def __init__(self, t_submit: float):
        self.event = threading.Event()
        self.result: TaskResult | None = None
        self.t_submit = t_submit


class Client:
    """Sends TASK frames and collects RESULT/ERROR frames on its own listening port."""

    def __init__(self, listen: tuple[str, int] = ("0.0.0.0", 0), reply_host: str | None = None,
                 limits: Limits = wire.DEFAULT_LIMITS, connect_timeout: float = 5.0,
                 send_timeout: float = 60.0, max_connections: int = 64, stall_timeout: float | None = None):
        self.listen_addr = listen
        self.reply_host = reply_host
        self.limits = limits
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.stall_timeout = stall_timeout   # a send with no progress this long fails (wire.send_frame)
        self.max_connections = max_connections
        self._pending: dict[bytes, _Pending] = {}
        self.finished = 0  # submitted tasks whose result or error is in (a failed send counts)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pool: dict[tuple[str, int], socket.socket] = {}
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Client":
        ls = socket.socket(socket.AF_INET6 if ":" in self.listen_addr[0] else socket.AF_INET)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(self.listen_addr)
        ls.listen(64)
        ls.settimeout(0.5)
        self._listener = ls
        threading.Thread(target=self._accept_loop, name="client-accept", daemon=True).start()
        return self

    @property
    def reply_port(self) -> int:
        return self._listener.getsockname()[1]

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
            except OSError:
                pass
            self._listener.close()
        with self._send_lock:
            for s in self._pool.values():
                s.close()
            self._pool.clear()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> "Client":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ results
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if self._stop.is_set():
                    break
                time.sleep(0.05)
                continue
            with self._lock:
                if len(self._conns) >= self.max_connections:
                    conn.close()
                    continue
                self._conns.add(conn)
            threading.Thread(target=self._read_results, args=(conn, peer), daemon=True,
                             name="client-results").start()

    def _read_results(self, conn: socket.socket, peer) -> None:
        wire.tune_socket(conn)
        try:
            while not self._stop.is_set():
                try:
                    frame = wire.read_frame(conn, self.limits, idle_timeout=1.0)
                except wire.FrameTimeout as e:
                    if e.detail == "idle":
                        continue
                    log.warning("result connection from %s: %s", peer, e)
                    return
                except FrameError as e:
                    log.warning("bad frame from %s: %s", peer, e)
                    return
                if frame is None:
                    return
                if frame.msg_type == TASK:
                    log.warning("ignoring TASK frame on the result port from %s", peer)
                    continue
                self._deliver(frame)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _deliver(self, f: Frame) -> None:
        t = time.time()
        with self._lock:
            p = self._pending.get(f.task_id)
        if p is None:
            log.info("late or unknown %s for task %s", wire.MSG_NAMES[f.msg_type], f.task_id.hex())
            return
        if f.msg_type == RESULT:
            logits = f.array().copy() if f.dtype != wire.NO_TENSOR else None
            res = TaskResult(f.task_id.hex(), OK, p.t_submit, t,
                             classes=tuple(r.classes[0] for r in f.results), topk=f.results,
                             stages=f.stamps, logits=logits)
        else:
            res = TaskResult(f.task_id.hex(), FAILED, p.t_submit, t, stages=f.stamps,
                             error_code=f.error_code, error_message=f.error_message)
        with self._lock:  # results arrive on one thread per connection
            first = p.result is None
            if first:
                p.result = res
                self.finished += 1
        if first:
            p.event.set()

    # ------------------------------------------------------------------ tasks
    def _conn(self, addr: tuple[str, int]) -> socket.socket:
        s = self._pool.get(addr)
        if s is not None and wire.peer_closed(s):
            s.close()
            s = None
            del self._pool[addr]
        if s is None:
            s = socket.create_connection(addr, timeout=self.connect_timeout)
            s.settimeout(self.send_timeout)
            wire.tune_socket(s)
            self._pool[addr] = s
        return s

    def connect(self, addr: tuple[str, int]) -> None:
        """Open the pooled connection to ``addr`` now, so the first task sent there does
        not wait for TCP's handshake and the worker's new connection thread."""
        with self._send_lock:
            self._conn(addr)

    def submit(self, plan: WirePlan, x, topk: int = 1, want_logits: bool = False,
               wire_dtype: str = "float32", task_id: bytes | None = None) -> bytes:
        """Send one task; returns its 16-byte id (then call :meth:`wait`).

        ``x`` is a numpy array / torch tensor at point 0; a 3-D array gets a batch dim.
        ``wire_dtype`` ``float16`` halves the bytes on every link (workers compute in
        float32 and forward in the dtype they received).  A send failure is recorded at
        once as an ``error`` outcome (``send_failed``).
        """
        plan.validate()
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        if arr.ndim == 3:
            arr = arr[None]
        arr = np.ascontiguousarray(arr, dtype=np.dtype(wire.DTYPES[wire.DTYPE_CODES[wire_dtype]]))
        task_id = task_id or wire.new_task_id()
        first = plan.hops[0]
        t_submit = time.time()
        pending = _Pending(t_submit)
        with self._lock:
            self._pending[task_id] = pending
        try:
            with self._send_lock:
                s = self._conn(first.addr)
                reply = (self.reply_host or s.getsockname()[0], self.reply_port)
                frame = Frame(TASK, task_id, plan.model, 0, 0, plan.to_wire(), reply,
                              stamps=(Stage("client", wire.NO_HOP, 0, 0, send_start=time.time()),),
                              flags=wire.FLAG_WANT_LOGITS if want_logits else 0, topk=topk)
                try:
                    wire.send_frame(s, frame, arr, self.limits, stall_timeout=self.stall_timeout)
                except OSError:
                    s.close()
                    self._pool.pop(first.addr, None)
                    raise
        except (OSError, ValueError) as e:
            pending.result = TaskResult(task_id.hex(), FAILED, t_submit, time.time(),
                                        error_code="send_failed", error_message=str(e))
            with self._lock:
                self.finished += 1
            pending.event.set()
        return task_id

    def wait(self, task_id: bytes, timeout: float) -> TaskResult:
        """Block until the task's RESULT/ERROR arrives or ``timeout`` s pass (-> ``timeout``)."""
        with self._lock:
            p = self._pending[task_id]
        p.event.wait(max(0.0, timeout))
        with self._lock:
            self._pending.pop(task_id, None)
        if p.result is not None:
            return p.result
        return TaskResult(task_id.hex(), TIMEOUT, p.t_submit, time.time(),
                          error_code="timeout", error_message=f"no reply within {timeout:.1f}s")

    def result(self, task_id: bytes) -> TaskResult | None:
        """The task's RESULT/ERROR if it is in, without waiting (the task stays pending)."""
        with self._lock:
            p = self._pending.get(task_id)
        return None if p is None else p.result

    def discard(self, task_id: bytes) -> None:
        """Stop waiting for a task (a retried task's other copies): a late answer is
        then logged and dropped."""
        with self._lock:
            self._pending.pop(task_id, None)

    def closed_peers(self) -> set[tuple[str, int]]:
        """Workers whose end of a pooled connection closed since the last call (the
        worker process died or restarted). Their connections are dropped; the next
        task sent there connects anew."""
        closed = {addr: s for addr, s in list(self._pool.items())                       # no lock: a send
                  if s.fileno() != -1 and wire.peer_closed(s)}
        if closed:                                                                       # may hold it long
            with self._send_lock:
                for addr, s in closed.items():
                    if self._pool.get(addr) is s:
                        del self._pool[addr]
                    s.close()
        return set(closed)

    def infer(self, plan: WirePlan, x, timeout: float = 30.0, **kw) -> TaskResult:
        """Submit and wait for one task."""
        return self.wait(self.submit(plan, x, **kw), timeout)


# ---------------------------------------------------------------------- workload


def arrival_times(count: int, rate: float, kind: str, seed: int = 0) -> np.ndarray:
    """Send offsets (s) of ``count`` tasks: ``fixed`` every 1/rate s from 0, ``poisson``
    the arrivals of a Poisson process started at 0 (seeded exponential gaps of mean
    1/rate, the first one included: devices started together do not all send at 0)."""
    if kind == "fixed":
        return np.arange(count) / rate
    if kind == "poisson":
        return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, size=count))
    raise ValueError(f"unknown arrival process {kind!r}")


def record(seq: int, res: TaskResult, plan: WirePlan, image: str, planned: float) -> dict:
    """One flat row (CSV/JSON) describing a finished task."""
    row = {
        "seq": seq, "task_id": res.task_id, "model": plan.model, "plan": str(plan),
        "n_hops": len(plan.hops), "image": image, "planned_s": planned,
        "t_submit": res.t_submit, "t_done": res.t_done, "latency_s": res.latency_s,
        "status": res.status, "error_code": res.error_code, "error_message": res.error_message,
        "top1": res.classes[0] if res.classes else "",
        "top1_score": res.topk[0].scores[0] if res.topk else "",
    }
    row.update(res.breakdown())
    row["stages"] = [dataclasses.asdict(s) for s in res.stages]
    return row


def run_workload(client: Client, plan: WirePlan, images: Sequence[tuple[str, np.ndarray]],
                 count: int, rate: float = 1.0, arrivals: str = "poisson", seed: int = 0,
                 timeout: float = 30.0, topk: int = 1, wire_dtype: str = "float32") -> list[dict]:
    """Send ``count`` tasks (images cycled) and return one record per task.

    ``arrivals``: ``fixed``/``poisson`` are open-loop at ``rate`` tasks/s; ``closed``
    sends the next task when the previous one finished.
    """
    rows: list[dict] = []
    t0 = time.time()
    if arrivals == "closed":
        for i in range(count):
            name, x = images[i % len(images)]
            res = client.infer(plan, x, timeout=timeout, topk=topk, wire_dtype=wire_dtype)
            rows.append(record(i, res, plan, name, res.t_submit - t0))
        return rows
    offsets = arrival_times(count, rate, arrivals, seed)
    sent = []
    for i, off in enumerate(offsets):
        delay = t0 + off - time.time()
        if delay > 0:
            time.sleep(delay)
        name, x = images[i % len(images)]
        sent.append((i, name, float(off), client.submit(plan, x, topk=topk, wire_dtype=wire_dtype)))
    for i, name, off, tid in sent:
        with client._lock:
            p = client._pending.get(tid)
        remaining = (p.t_submit + timeout - time.time()) if p else 0.0
        rows.append(record(i, client.wait(tid, remaining), plan, name, off))
    return rows


def write_records(rows: list[dict], path: str) -> None:
    """Write records as CSV (``.csv``, stamps dropped) or JSON (anything else)."""
    if path.endswith(".csv"):
        fields: list[str] = []
        for r in rows:
            fields += [k for k in r if k != "stages" and k not in fields]
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    else:
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)


def summarize(rows: list[dict]) -> dict:
    lat = sorted(r["latency_s"] for r in rows if r["status"] == OK)
    out = {"count": len(rows), "ok": len(lat),
           "error": sum(r["status"] == FAILED for r in rows),
           "timeout": sum(r["status"] == TIMEOUT for r in rows)}
    if lat:
        out.update(mean_s=statistics.fmean(lat), p50_s=lat[len(lat) // 2],
                   p95_s=lat[min(len(lat) - 1, int(0.95 * len(lat)))], max_s=lat[-1])
    return out


def _resolve(host: str) -> str:
    return socket.gethostbyname(host)


def main(argv: list[str] | None = None) -> int:
    from models import model_names

    from runtime.images import DEFAULT_NAMES, load_images

    p = argparse.ArgumentParser(prog="python -m runtime.client", description=__doc__.split("\n")[0])
    p.add_argument("--to", help="HOST:PORT of the first hop (hops without address use it)")
    p.add_argument("--model", required=True, choices=model_names())
    p.add_argument("--plan", default="0-m",
                   help="hops HOST:PORT:START-END[,...]; END may be 'm'; default 0-m on --to")
    p.add_argument("--rate", type=float, default=1.0, help="tasks per second (open loop)")
    p.add_argument("--arrivals", choices=("poisson", "fixed", "closed"), default="poisson")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson arrivals")
    p.add_argument("--timeout", type=float, default=30.0, help="per-task deadline, s")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--images", default=",".join(DEFAULT_NAMES),
                   help="comma-separated skimage/sklearn sample images")
    p.add_argument("--wire-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--listen", default="0.0.0.0:0", help="HOST:PORT of the result listener")
    p.add_argument("--reply-host", default=None,
                   help="address workers send results to (default: our address towards --to)")
    p.add_argument("--out", default=None, help="records file (.csv or .json)")
    p.add_argument("--json", default=None, help="also write JSON records (with raw stamps) here")
    p.add_argument("--log-level", default="WARNING")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    default = parse_addr(a.to) if a.to else None
    num_segments = None
    if any(item.strip().endswith("-m") for item in a.plan.split(",")):
        from models import build_model

        num_segments = build_model(a.model).num_segments
    try:
        plan = WirePlan.parse(a.model, a.plan, num_segments, default)
    except PlanError as e:
        p.error(str(e))
    plan = WirePlan(plan.model, tuple(dataclasses.replace(h, host=_resolve(h.host)) for h in plan.hops))
    images = load_images(tuple(n.strip() for n in a.images.split(",") if n.strip()))
    with Client(parse_addr(a.listen), reply_host=a.reply_host) as client:
        rows = run_workload(client, plan, images, a.count, a.rate, a.arrivals, a.seed,
                            a.timeout, a.topk, a.wire_dtype)
    if a.out:
        write_records(rows, a.out)
    if a.json:
        write_records(rows, a.json)
    for r in rows:
        print(f"{r['seq']:4d} {r['image']:<12} {r['status']:<7} {r['latency_s'] * 1e3:8.1f} ms "
              f"top1={r['top1']} {r['error_code']}")
    print(json.dumps(summarize(rows)))
    return 0 if all(r["status"] == OK for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

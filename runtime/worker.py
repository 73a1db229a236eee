"""Split-inference worker: receive a TASK, run its segment range, forward or reply.

Thread model (all daemon threads, every blocking call has a timeout):

* one *accept* thread; one *connection* thread per accepted TCP connection (at most
  ``max_connections``).  It reads frames with :func:`protocol.wire.read_frame` (header
  validated before the payload is allocated, payload charged to a byte budget) and puts
  TASKs on the bounded compute queue.  A malformed frame closes that connection only.
* one *compute* thread: takes TASKs one at a time (so one CPU-bound inference at a
  time, and ``queue_len`` is the backlog), builds models lazily (cached), runs
  ``model.run(x, start, end)`` and hands the outgoing frame to a sender.
* one *sender* thread per destination, started when a frame is first sent there and
  gone after ``SENDER_IDLE_S`` without work, each with its own bounded queue and one
  pooled TCP connection (per-destination ordering). So a slow or unreachable
  destination delays only the frames bound to it; one that cannot be reached fails
  its frames at once for ``UNREACHABLE_S`` after a failed connect (each failure is
  reported to the requester), instead of each waiting for the connect timeout.  The
  next hop gets a TASK with the updated plan; after the last hop the RESULT goes to the
  plan's reply-to address (the requester listens there), so it reaches the requester
  whatever the number of hops.  Errors go to the reply-to address as ERROR frames.
* At ``max_connections`` a new connection takes the place of the one that has gone
  longest without a frame (if that is over ``EVICT_IDLE_S``), so idle connections
  cannot lock new ones out.

Each worker appends one :class:`protocol.wire.Stage` (receive start/end, compute
start/end, send start) to the frame's stamps, so the requester sees every stage.

With a :class:`runtime.pacing.Pacer` the worker emulates a node of a given speed:
after the real layers it holds the result until the emulated time has passed
(compute end is stamped then), and counts the hops whose real compute took longer.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import logging
import queue
import signal
import socket
import threading
import time
from typing import Any, Callable

from protocol import wire
from protocol.heartbeat import BUSY_WINDOW_S
from runtime.pacing import PaceStats
from protocol.wire import ERROR, RESULT, TASK, Frame, FrameError, Limits, Stage

log = logging.getLogger("runtime.worker")

BUSY_WINDOW = BUSY_WINDOW_S  # seconds over which busy_fraction is measured


class ByteBudget:
    """Bytes of received payload held by the worker; bounds memory under load or attack."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, n: int) -> None:
        with self._lock:
            if self.used + n > self.capacity:
                raise FrameError("overloaded", f"payload budget full ({self.used}+{n} > {self.capacity})")
            self.used += n

    def release(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)


@dataclasses.dataclass
class _Job:
    frame: Frame
    reserved: int
    enqueued: float


@dataclasses.dataclass
class _Outgoing:
    dest: tuple[str, int]
    frame: Frame
    stage: Stage | None  # this worker's stage; send_start filled in by the sender
    tensor: Any = None
    on_fail: Callable[[str], None] | None = None


def _numeric_addr(host: str, port: int) -> tuple[str, int]:
    """Only IP literals (and ``localhost``) are dialled: no DNS lookups from frame data."""
    if host == "localhost":
        host = "127.0.0.1"
    socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return host, port


SENDER_IDLE_S = 30.0     # a destination's sender thread ends after this long without work
UNREACHABLE_S = 5.0      # after a failed connect, fail that destination's frames at once for this long
EVICT_IDLE_S = 5.0       # at max_connections, a connection this long without a frame makes room


class _Sender(threading.Thread):
    """Writes the frames bound to one destination over one pooled connection."""

    def __init__(self, worker: "Worker", dest: tuple[str, int]):
        super().__init__(name=f"{worker.name}-send-{dest[0]}:{dest[1]}", daemon=True)
        self.worker, self.dest = worker, dest
        self.q: queue.Queue[_Outgoing | None] = queue.Queue(maxsize=worker.queue_size * 4)
        self.sock: socket.socket | None = None
        self._resent = 0            # the connection's retransmitted segments already counted

    def run(self) -> None:
        try:
            while True:
                try:  # nothing to keep open: end soon (a destination that did not answer, say)
                    item = self.q.get(timeout=SENDER_IDLE_S if self.sock is not None else 0.5)
                except queue.Empty:
                    if self.worker._retire(self):
                        return
                    continue
                if item is None:
                    return
                self._deliver(item)
        finally:
            self._close()

    def _close(self) -> None:
        if self.sock is not None:
            self._count_resent()
            self.sock.close()
            self.sock = None

    def _count_resent(self) -> None:
        """Charge what TCP resent on the connection since last looked: a frame that
        waited with the link idle (scripts/live_fidelity: stalls) shows as resends
        here if packets were lost, and not if the path was fine."""
        total = wire.total_retransmissions(self.sock)
        if total is not None and total > self._resent:
            self.worker._resent(self.dest, total - self._resent)
            self._resent = total

    def _deliver(self, item: _Outgoing) -> None:
        try:
            down = self.worker._unreachable.get(self.dest)
            if down is not None and time.monotonic() < down[0]:
                raise OSError(f"unreachable ({down[1]})")
            self._send(item)
        except Exception as e:  # noqa: BLE001 - a sender must never die
            log.warning("%s: send to %s:%s failed: %s", self.worker.name, *item.dest, e)
            self.worker._count("send_failed")
            if item.on_fail is not None:
                try:
                    item.on_fail(f"{item.dest[0]}:{item.dest[1]}: {e}")
                except Exception as e2:  # noqa: BLE001
                    log.warning("%s: error report failed: %s", self.worker.name, e2)

    def _conn(self) -> socket.socket:
        if self.sock is not None and wire.peer_closed(self.sock):
            self._close()
        if self.sock is None:
            try:
                s = socket.create_connection(_numeric_addr(*self.dest), timeout=self.worker.connect_timeout)
            except OSError as e:
                self.worker._mark_unreachable(self.dest, str(e) or type(e).__name__)
                raise
            s.settimeout(self.worker.send_timeout)
            wire.tune_socket(s)
            self.sock, self._resent = s, 0
        else:
            self._count_resent()
        return self.sock

    def _send(self, item: _Outgoing) -> None:
        frame = item.frame
        for attempt in (0, 1):
            s = self._conn()
            if item.stage is not None:
                stage = dataclasses.replace(item.stage, send_start=time.time())
                frame = dataclasses.replace(item.frame, stamps=item.frame.stamps + (stage,))
            try:
                wire.send_frame(s, frame, item.tensor, self.worker.limits, stall_timeout=self.worker.stall_timeout)
                return
            except OSError as e:
                self._close()
                if attempt or isinstance(e, wire.SendStalled):   # a stalled path stays stalled
                    raise


def default_model_factory(seed: int = 0) -> Callable[[str], Any]:
    def factory(name: str):
        from models import build_model

        return build_model(name, seed=seed)

    return factory


class Worker:
    """A split-inference worker listening on ``host:port`` (``port=0``: pick a free one).

    ``models`` is the allow-list (``None``: ``models.model_names()``); ``model_factory(name)``
    returns an object with ``num_segments``, ``output_shape(k)`` and ``run(x, start, end)``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "worker",
                 models: list[str] | tuple[str, ...] | None = None,
                 model_factory: Callable[[str], Any] | None = None, seed: int = 0,
                 torch_threads: int | None = 1, queue_size: int = 64,
                 enqueue_timeout: float = 2.0,
                 limits: Limits = wire.DEFAULT_LIMITS, max_inflight_bytes: int = 256 << 20,
                 max_connections: int = 64, idle_timeout: float = 300.0,
                 connect_timeout: float = 3.0, send_timeout: float = 60.0,
                 max_batch: int = 64, max_destinations: int = 64, pacer=None, stall_timeout: float = 2.0):
        if models is None:
            from models import model_names

            models = model_names()          # built-ins and registered (SDNCEP_MODEL_PLUGINS) models
        self.host, self.port, self.name = host, port, name[:wire.NAME_FIELD]
        self.allowed = frozenset(models)
        self.model_factory = model_factory or default_model_factory(seed)
        self.torch_threads = torch_threads
        self.queue_size = queue_size
        self.enqueue_timeout = enqueue_timeout
        self._waiting = 0  # connection threads blocked on a full compute queue
        self.limits = limits
        self.budget = ByteBudget(max_inflight_bytes)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        # a frame whose bytes stop leaving for this long fails at once (a link down under
        # the connection): the device hears next_hop_unreachable and plans again
        self.stall_timeout = stall_timeout
        self.max_batch = max_batch
        self.pacer = pacer
        self.pace_stats = PaceStats()
        self._models: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._q: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self.max_destinations = max_destinations
        self._senders: dict[tuple[str, int], _Sender] = {}
        self._unreachable: dict[tuple[str, int], tuple[float, str]] = {}   # dest -> (until, why)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, float] = {}   # connection -> when it last read a frame
        self._busy: collections.deque[tuple[float, float]] = collections.deque()
        self._busy_since: float | None = None
        self._counters = collections.Counter()
        self._started = time.time()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Worker":
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        ls = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(128)
        ls.settimeout(0.5)
        self._listener = ls
        self.port = ls.getsockname()[1]
        for target, nm in ((self._accept_loop, "accept"), (self._compute_loop, "compute")):
            t = threading.Thread(target=target, name=f"{self.name}-{nm}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("%s listening on %s:%d models=%s", self.name, self.host, self.port,
                 ",".join(sorted(self.allowed)))
        return self

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
            except OSError:
                pass
            self._listener.close()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        with self._lock:
            senders = list(self._senders.values())
        for s in senders:
            try:
                s.q.put(None, timeout=1.0)
            except queue.Full:
                pass
        for t in self._threads + senders:
            t.join(timeout)

    def __enter__(self) -> "Worker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def preload(self) -> None:
        for name in sorted(self.allowed):
            self._model(name)

    # ------------------------------------------------------------------ load
    def load(self) -> dict:
        """Plain-dict load report for the controller's heartbeat agent."""
        now = time.time()
        lo = now - BUSY_WINDOW
        with self._lock:
            busy = sum(max(0.0, e - max(s, lo)) for s, e in self._busy if e > lo)
            if self._busy_since is not None:
                busy += now - max(self._busy_since, lo)
            c = dict(self._counters)
            conns = len(self._conns)
        return {
            "name": self.name,
            "addr": f"{self.host}:{self.port}",
            "queue_len": self._q.qsize() + self._waiting,
            "queue_capacity": self.queue_size,
            "busy_fraction": min(1.0, busy / BUSY_WINDOW),
            "busy": self._busy_since is not None,
            "tasks_done": c.get("done", 0),
            "tasks_forwarded": c.get("forwarded", 0),
            "tasks_failed": c.get("failed", 0),
            "frames_rejected": c.get("rejected", 0),
            "inflight_bytes": self.budget.used,
            "connections": conns,
            "models_loaded": sorted(self._models),
            "uptime_s": now - self._started,
            "time": now,
            "speed": None if self.pacer is None else self.pacer.speed,
            "pacing": None if self.pacer is None else self.pace_stats.as_dict(),
        }

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1

    def _resent(self, dest: tuple[str, int], segments: int) -> None:
        with self._lock:
            self.pace_stats.tcp_retransmits += segments
        log.warning("%s: TCP resent %d segment(s) to %s:%s", self.name, segments, *dest)

    # ------------------------------------------------------------------ receive
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
                evict = None
                if len(self._conns) >= self.max_connections:
                    oldest, since = min(self._conns.items(), key=lambda kv: kv[1])
                    if time.monotonic() - since > EVICT_IDLE_S:
                        evict = oldest
                        del self._conns[oldest]
                full = len(self._conns) >= self.max_connections
                if not full:
                    self._conns[conn] = time.monotonic()
            if evict is not None:
                log.info("%s: at %d connections, closing the longest idle one for %s", self.name,
                         self.max_connections, peer)
                self._count("evicted")
                try:
                    evict.shutdown(socket.SHUT_RDWR)      # its thread sees the end and closes it
                except OSError:
                    pass
            if full:
                log.warning("%s: too many busy connections, refusing %s", self.name, peer)
                conn.close()
                continue
            threading.Thread(target=self._serve_conn, args=(conn, peer), daemon=True,
                             name=f"{self.name}-conn").start()

    def _serve_conn(self, conn: socket.socket, peer) -> None:
        wire.tune_socket(conn)
        try:
            while not self._stop.is_set():
                reserved = [0]

                def reserve(n: int) -> None:
                    self.budget.reserve(n)
                    reserved[0] = n

                try:
                    frame = wire.read_frame(conn, self.limits, self.allowed,
                                            idle_timeout=self.idle_timeout, reserve=reserve)
                except FrameError as e:
                    self.budget.release(reserved[0])
                    if not isinstance(e, wire.FrameTimeout) or e.detail != "idle":
                        self._count("rejected")
                        log.warning("%s: rejected frame from %s: %s", self.name, peer, e)
                    if e.reply_to is not None and e.task_id is not None:
                        self._report_error_ctx(e)
                    if e.unread is None:
                        return
                    try:  # well-formed frame we refuse: skip its payload, keep the connection
                        wire.skip_payload(conn, e.unread, self.limits)
                    except FrameError:
                        return
                    continue
                if frame is None:
                    return
                with self._lock:
                    if conn in self._conns:
                        self._conns[conn] = time.monotonic()
                if frame.msg_type != TASK:
                    self.budget.release(reserved[0])
                    self._count("rejected")
                    log.warning("%s: ignoring %s frame from %s", self.name,
                                wire.MSG_NAMES[frame.msg_type], peer)
                    continue
                job = _Job(frame, reserved[0], time.time())
                try:
                    self._q.put_nowait(job)
                    continue
                except queue.Full:
                    pass
                with self._lock:
                    self._waiting += 1
                try:  # back-pressure: stop reading this connection for a while ...
                    self._q.put(job, timeout=self.enqueue_timeout)
                except queue.Full:  # ... then reject explicitly
                    self.budget.release(reserved[0])
                    self._fail(frame, "overloaded", f"compute queue full ({self.queue_size})",
                               Stage(self.name, frame.hop_index, frame.hop.start, frame.hop.end,
                                     frame.recv_start, frame.recv_end))
                finally:
                    with self._lock:
                        self._waiting -= 1
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    # ------------------------------------------------------------------ compute
    def _model(self, name: str):
        with self._model_lock:
            m = self._models.get(name)
            if m is None:
                t = time.time()
                m = self.model_factory(name)
                if hasattr(m, "eval"):
                    m.eval()
                self._models[name] = m
                log.info("%s: built %s in %.2fs", self.name, name, time.time() - t)
            return m

    def _compute_loop(self) -> None:
        while True:
            job = self._q.get()
            if job is None or self._stop.is_set():
                break
            try:
                self._run_job(job)
            except Exception as e:  # noqa: BLE001 - the compute thread must never die
                log.exception("%s: task failed", self.name)
                f = job.frame
                self._fail(f, "internal", f"{type(e).__name__}: {e}",
                           Stage(self.name, f.hop_index, f.hop.start, f.hop.end,
                                 f.recv_start, f.recv_end))
            finally:
                self.budget.release(job.reserved)
                with self._lock:
                    if self._busy_since is not None:
                        self._busy.append((self._busy_since, time.time()))
                        self._busy_since = None
                    lo = time.time() - BUSY_WINDOW
                    while self._busy and self._busy[0][1] < lo:
                        self._busy.popleft()

    def _run_job(self, job: _Job) -> None:
        import torch

        f = job.frame
        hop = f.hop
        with self._lock:
            self._busy_since = time.time()
        stage = Stage(self.name, f.hop_index, hop.start, hop.end, f.recv_start, f.recv_end)
        try:
            model = self._model(f.model)  # first use builds it: counted as queue wait
        except ValueError as e:  # models.UnknownModelError is a ValueError
            return self._fail(f, "unknown_model", str(e), stage)
        stage = dataclasses.replace(stage, compute_start=time.time())
        m = model.num_segments
        if hop.end > m:
            return self._fail(f, "bad_cut", f"hop ends at point {hop.end}, {f.model} has {m}", stage)
        if f.hop_index == len(f.hops) - 1 and hop.end != m:
            return self._fail(f, "bad_plan", f"last hop ends at {hop.end}, not at {m}", stage)
        expect = tuple(model.output_shape(f.cut))
        if tuple(f.shape[1:]) != expect:
            return self._fail(f, "bad_shape",
                              f"tensor {f.shape} at point {f.cut}, expected (B, *{expect})", stage)
        if f.shape[0] > self.max_batch:
            return self._fail(f, "bad_shape", f"batch {f.shape[0]} > {self.max_batch}", stage)
        if f.dtype not in (1, 2, 8):
            return self._fail(f, "bad_dtype", f"{wire.DTYPES[f.dtype]} is not a float tensor", stage)
        x = f.tensor()
        if x.dtype != torch.float32:
            x = x.float()
        started, cpu_started = time.monotonic(), time.thread_time()
        with torch.inference_mode():
            out = model.run(x, hop.start, hop.end)
        f.payload = b""  # drop the input buffer now
        if self.pacer is not None:
            self._hold(f.model, hop, started, time.thread_time() - cpu_started)
        stage = dataclasses.replace(stage, compute_end=time.time())
        if f.hop_index + 1 < len(f.hops):
            nxt = f.hops[f.hop_index + 1]
            if f.dtype == 2:
                out = out.half()
            fwd = dataclasses.replace(f, cut=hop.end, hop_index=f.hop_index + 1, payload=b"",
                                      dtype=wire.NO_TENSOR, shape=())
            self._count("forwarded")
            self._enqueue(_Outgoing((nxt.host, nxt.port), fwd, stage, out,
                                    on_fail=lambda why, f=f, stage=stage: self._fail(
                                        f, "next_hop_unreachable", why, stage, count=False)))
            return
        logits = out.reshape(out.shape[0], -1).float()
        probs = torch.softmax(logits, dim=1)
        rows = logits.shape[0]
        k = max(1, min(f.topk, logits.shape[1],
                       (self.limits.max_extra_bytes - 2) // (8 * max(1, rows))))
        scores, classes = torch.topk(probs, k, dim=1)
        results = tuple(wire.TopK(tuple(int(c) for c in cr), tuple(float(s) for s in sr))
                        for cr, sr in zip(classes.tolist(), scores.tolist()))
        res = Frame(RESULT, f.task_id, f.model, hop.end, f.hop_index, f.hops, f.reply_to,
                    f.stamps, flags=f.flags, topk=k, results=results)
        tensor = logits if (f.flags & wire.FLAG_WANT_LOGITS) else None
        self._count("done")
        self._enqueue(_Outgoing(f.reply_to, res, stage, tensor))

    def _hold(self, model: str, hop, started: float, cpu_s: float) -> None:
        """Paced: keep the result until the emulated node would have finished the hop.
        ``cpu_s`` is the CPU time the real layers took (an overrun with little of it
        waited for a core)."""
        emulated = self.pacer.emulated_s(model, hop.start, hop.end)
        real = time.monotonic() - started
        with self._lock:
            self.pace_stats.record(real, emulated)
        if real < emulated:
            self._stop.wait(started + emulated - time.monotonic())
        else:
            log.warning("%s: overrun: %s %d-%d took %.1f ms of real compute (%.1f ms of CPU), emulated %.1f ms",
                        self.name, model, hop.start, hop.end, 1000 * real, 1000 * cpu_s, 1000 * emulated)

    # ------------------------------------------------------------------ send
    def _enqueue(self, item: _Outgoing, block: bool = True) -> None:
        """Queue ``item`` on its destination's sender; the compute thread blocks when the
        sender is backed up (back-pressure), error reports never block."""
        with self._lock:        # under the lock: a sender retiring now cannot miss the item
            sender = self._sender_for(item.dest)
            queued = False
            if sender is not None:
                try:
                    sender.q.put_nowait(item)
                    queued = True
                except queue.Full:
                    pass
        if sender is None:
            log.warning("%s: %d destinations busy, refusing one more (%s:%s)", self.name,
                        self.max_destinations, *item.dest)
            if item.on_fail is not None:
                item.on_fail(f"too many destinations at once ({self.max_destinations})")
            return
        if queued:
            return
        try:  # a full queue: its sender is busy and will not retire before this lands
            sender.q.put(item, timeout=self.send_timeout if block else 0.0)
        except queue.Full:
            log.warning("%s: send queue to %s:%s full, dropping", self.name, *item.dest)
            if item.on_fail is not None:
                item.on_fail("send queue full")

    def _sender_for(self, dest: tuple[str, int]) -> "_Sender | None":
        """The destination's sender, started if it has none (None: too many destinations).
        The caller holds ``self._lock``."""
        sender = self._senders.get(dest)
        if sender is None:
            if len(self._senders) >= self.max_destinations or self._stop.is_set():
                return None
            sender = self._senders[dest] = _Sender(self, dest)
            sender.start()
        return sender

    def _mark_unreachable(self, dest: tuple[str, int], why: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._unreachable) >= 1024:
                self._unreachable = {d: v for d, v in self._unreachable.items() if v[0] > now}
            if len(self._unreachable) < 1024:
                self._unreachable[dest] = (now + UNREACHABLE_S, why)

    def _retire(self, sender: "_Sender") -> bool:
        """An idle sender asks to end: yes unless work arrived meanwhile."""
        with self._lock:
            if not sender.q.empty():
                return False
            if self._senders.get(sender.dest) is sender:
                del self._senders[sender.dest]
            return True

    def _fail(self, f: Frame, code: str, message: str, stage: Stage | None,
              count: bool = True) -> None:
        """Log and send an ERROR frame for task ``f`` to its requester."""
        if count:
            self._count("failed")
        log.warning("%s: task %s (%s hop %d) failed: %s: %s", self.name, f.task_id.hex()[:8],
                    f.model, f.hop_index, code, message)
        err = Frame(ERROR, f.task_id, f.model, f.cut, f.hop_index, f.hops, f.reply_to,
                    f.stamps, error_code=code, error_message=f"{self.name}: {message}")
        self._enqueue(_Outgoing(f.reply_to, err, stage), block=False)

    def _report_error_ctx(self, e: FrameError) -> None:
        self._count("failed")
        err = Frame(ERROR, e.task_id, e.model, e.cut, e.hop_index, e.hops, e.reply_to,
                    e.stamps, error_code=e.reason, error_message=f"{self.name}: {e}")
        self._enqueue(_Outgoing(e.reply_to, err, None), block=False)


class PacedLoad:
    """A paced node's load for its heartbeats: its emulated speed as its CPU share, and
    busy while it computes or holds a result (its cgroup's usage is only the real part)."""

    def __init__(self, worker: Worker):
        self.worker = worker

    def cpu_share(self) -> float:
        return self.worker.pacer.speed

    def busy(self) -> float:
        return self.worker.load()["busy_fraction"]


# ---------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    from protocol.task_plan import parse_addr

    p = argparse.ArgumentParser(prog="python -m runtime.worker", description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="0.0.0.0:9000", help="HOST:PORT to listen on")
    p.add_argument("--name", default=socket.gethostname()[:16], help="name in stamps and logs (<=16 chars)")
    p.add_argument("--models", default="all", help="comma-separated allow-list, or 'all'")
    p.add_argument("--seed", type=int, default=0, help="weight seed of build_model")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: leave torch's default)")
    p.add_argument("--queue-size", type=int, default=64, help="compute queue capacity")
    p.add_argument("--enqueue-timeout", type=float, default=2.0,
                   help="s a full queue may hold back a connection before 'overloaded'")
    p.add_argument("--max-payload-mib", type=float, default=64, help="largest accepted tensor")
    p.add_argument("--max-inflight-mib", type=float, default=256, help="payload memory budget")
    p.add_argument("--max-connections", type=int, default=64)
    p.add_argument("--idle-timeout", type=float, default=300.0, help="close idle connections after s")
    p.add_argument("--io-timeout", type=float, default=30.0, help="per-recv timeout inside a frame, s")
    p.add_argument("--connect-timeout", type=float, default=3.0, help="next hop / reply connect timeout, s")
    p.add_argument("--preload", action="store_true", help="build every allowed model at start")
    p.add_argument("--load-interval", type=float, default=0.0,
                   help="log worker.load() every N s (0: never)")
    p.add_argument("--pace", metavar="SPEED",
                   help="emulate a node of this speed: a host class (edge-small, edge-medium, edge-large, "
                        "cloud) or cores of the profiling machine; the real layers run, then the result "
                        "is held until the profiled time on that node has passed")
    p.add_argument("--pace-jitter", action="store_true",
                   help="with --pace: draw each segment's time from the profile's measured spread")
    p.add_argument("--pace-seed", type=int, default=0, help="seed of --pace-jitter")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--heartbeat-role", choices=("edge", "cloud"),
                   help="also send this host's load to the SDN controller, with the task queue "
                        "length as queue_len (runtime.host_agent in this process)")
    p.add_argument("--heartbeat-ip", help="this host's IP (with --heartbeat-role)")
    p.add_argument("--heartbeat-prefixlen", type=int, default=8)
    p.add_argument("--cgroup-root", action="append", default=[],
                   help="where the cgroup v1 hierarchy is mounted (see runtime.host_agent)")
    a = p.parse_args(argv)
    if a.heartbeat_role and not a.heartbeat_ip:
        p.error("--heartbeat-role needs --heartbeat-ip")
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = parse_addr(a.listen)
    if a.models == "all":
        models = None
    else:
        models = [m.strip() for m in a.models.split(",") if m.strip()]
        from models import model_names

        bad = [m for m in models if m not in model_names()]
        if bad:
            p.error(f"unknown models {bad}; known: {', '.join(model_names())} (register your own: "
                    f"docs/howto/add-a-model.md)")
    limits = dataclasses.replace(wire.DEFAULT_LIMITS, max_payload=int(a.max_payload_mib * 2**20),
                                 io_timeout=a.io_timeout)
    pacer = None
    if a.pace is not None:
        from runtime.pacing import Pacer, PacingError
        try:
            pacer = Pacer(a.pace, jitter=a.pace_jitter, seed=a.pace_seed)
        except PacingError as exc:
            p.error(f"--pace: {exc}")
    w = Worker(host, port, a.name, models=models, seed=a.seed, torch_threads=a.threads or None,
               queue_size=a.queue_size, enqueue_timeout=a.enqueue_timeout, limits=limits,
               max_inflight_bytes=int(a.max_inflight_mib * 2**20),
               max_connections=a.max_connections, idle_timeout=a.idle_timeout,
               connect_timeout=a.connect_timeout, pacer=pacer)
    if a.preload:
        w.preload()
    w.start()
    if a.heartbeat_role:
        from runtime.host_agent import CGROUP_ROOT, CgroupLoad, HostAgent

        load = PacedLoad(w) if pacer else CgroupLoad.of_this_process(tuple(a.cgroup_root) + (CGROUP_ROOT,))
        agent = HostAgent(a.name, a.heartbeat_role, a.heartbeat_ip, a.heartbeat_prefixlen, load=load,
                          queue_len_fn=lambda: w.load()["queue_len"],
                          pacing_fn=(lambda: w.load()["pacing"]) if pacer else None)
        threading.Thread(target=agent.run, name="heartbeat", daemon=True).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(a.load_interval or 1.0):
        if a.load_interval:
            log.info("load %s", w.load())
    w.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

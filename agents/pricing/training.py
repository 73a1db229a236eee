"""Real data-parallel training for the pricing jobs, over TCP in the project's wire format.

The live mode of issue 15 (agents.pricing.live_node, scripts/pricing_live.py): a softmax
regression on scikit-learn's digits (shipped with the package), workers that compute the
gradient of one mini-batch of their chunk, push it to the parameter server in a TASK frame
(``protocol.wire``: struct-encoded, never pickle) and get the new parameters back in a
RESULT frame.  Compute is paced: a worker holds each gradient until the job's modelled
compute time per mini-batch has passed (as ``runtime.pacing`` does for inference), so the
measured iteration time can be compared with the model's ``tau = compute + 2 g / b``.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from protocol.wire import (
    RESULT,
    TASK,
    Frame,
    FrameError,
    Hop,
    new_task_id,
    read_frame,
    send_frame,
)

N_FEATURES, N_CLASSES = 64, 10


def digits(seed: int = 0):
    """Features scaled to [0, 1] and labels of sklearn's digits, shuffled."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    return (X[order] / 16.0).astype(np.float32), y[order].astype(np.int64)


def init_params(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.01 * rng.standard_normal((N_FEATURES + 1) * N_CLASSES)).astype(np.float32)


def loss_grad(params: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(X W + b) and its gradient (flat, like ``params``)."""
    W = params[:N_FEATURES * N_CLASSES].reshape(N_FEATURES, N_CLASSES)
    b = params[N_FEATURES * N_CLASSES:]
    z = X @ W + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
    p[np.arange(len(y)), y] -= 1.0
    p /= len(y)
    return loss, np.concatenate([(X.T @ p).ravel(), p.sum(axis=0)]).astype(np.float32)


@dataclass
class PSStats:
    pushes: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0


STALL_S = 3.0           # a push or pull that makes no progress this long: the peer is gone
CHECKPOINT_EVERY_S = 1.0


class ParameterServer:
    """Applies every pushed gradient (SGD, step ``lr``) and answers with the parameters.

    The job is done after ``target`` pushes in all (its mini-batches), whichever workers
    sent them: a worker that dies is replaced by a new connection that carries on. With
    ``checkpoint`` (a path), the parameters and the push count are written there (npz,
    atomically) every ``CHECKPOINT_EVERY_S``, so that a PS started again, elsewhere,
    resumes from them (``ParameterServer.resume``)."""

    def __init__(self, params: np.ndarray, lr: float, model: str = "pricing_job", pushes: int = 0,
                 checkpoint: str | None = None):
        self.params, self.lr, self.model = params.copy(), lr, model
        self.lock = threading.Lock()
        self.stats = PSStats(pushes=pushes)
        self.checkpoint = checkpoint
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.done = threading.Event()
        self._conns: list[socket.socket] = []

    @classmethod
    def resume(cls, checkpoint: str, lr: float, model: str = "pricing_job") -> ParameterServer:
        """A PS from ``checkpoint`` (plain arrays: loaded without pickle)."""
        with np.load(checkpoint, allow_pickle=False) as saved:
            return cls(saved["params"], lr, model, int(saved["pushes"]), checkpoint)

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        return self.sock.getsockname()[:2]

    def save(self) -> None:
        if self.checkpoint:
            with self.lock:
                params, pushes = self.params.copy(), self.stats.pushes
            tmp = f"{self.checkpoint}.tmp.npz"
            np.savez(tmp, params=params, pushes=np.int64(pushes))
            os.replace(tmp, self.checkpoint)

    def serve(self, target: int, idle_s: float | None = None) -> bool:
        """Serve workers, each connection until it closes, until ``target`` pushes in all;
        False if no push came for ``idle_s`` first (its driver is gone: it must not run on)."""
        saved_at = pushed_at = time.monotonic()
        pushes = self.stats.pushes
        while not self.done.is_set():
            if self.stats.pushes != pushes:
                pushes, pushed_at = self.stats.pushes, time.monotonic()
            elif idle_s is not None and time.monotonic() - pushed_at > idle_s:
                break
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                conn = None
            if conn is not None:
                conn.settimeout(STALL_S)
                self._conns.append(conn)
                self.stats.connections += 1
                threading.Thread(target=self._serve_one, args=(conn, target), daemon=True).start()
            if self.stats.pushes >= target:
                self.done.set()
            if time.monotonic() - saved_at >= CHECKPOINT_EVERY_S:
                self.save()
                saved_at = time.monotonic()
        self.save()
        for conn in self._conns:          # the job is done (or abandoned): every worker's next pull ends
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.sock.close()
        return self.done.is_set()

    def _serve_one(self, conn: socket.socket, target: int) -> None:
        try:
            while not self.done.is_set():
                frame = read_frame(conn, allowed_models={self.model}, idle_timeout=None)
                if frame is None:
                    return
                grad = frame.array()
                with self.lock:
                    if self.stats.pushes >= target:
                        self.done.set()
                        return
                    self.params -= self.lr * grad
                    reply = self.params.copy()
                    self.stats.pushes += 1
                    self.stats.bytes_in += grad.nbytes
                    self.stats.bytes_out += reply.nbytes
                send_frame(conn, Frame(RESULT, frame.task_id, self.model, frame.cut, 0, frame.hops,
                                       frame.reply_to), tensor=reply)
        except (OSError, FrameError):     # a worker gone (reset, stalled, closed mid-frame)
            return


@dataclass
class WorkerLog:
    losses: list = field(default_factory=list)
    iteration_s: list = field(default_factory=list)
    ps_closed: bool = False           # the PS closed the connection before ``iterations``
    first_push_at: float | None = None  # wall clock of the first parameters back


def run_worker(ps: tuple[str, int], X: np.ndarray, y: np.ndarray, iterations: int, batch: int,
               compute_s: float, params: np.ndarray, model: str = "pricing_job", seed: int = 0,
               connect_wait: float = 0.0) -> WorkerLog:
    """Train up to ``iterations`` mini-batches of (X, y): gradient, paced to ``compute_s``,
    push, pull; stops early when the PS closes (the job's work is done, or the PS died).
    ``connect_wait``: seconds to keep retrying while the PS is not listening yet.
    Raises OSError (or FrameError) if the PS is lost: no progress for ``STALL_S``."""
    rng = np.random.default_rng(seed)
    log = WorkerLog()
    hop = (Hop(ps[0], ps[1], 0, 1),)                     # one step: gradient in, parameters out
    deadline = time.monotonic() + connect_wait
    while True:
        try:
            sock = socket.create_connection(ps, timeout=STALL_S)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
    with sock:
        for _ in range(iterations):
            t0 = time.perf_counter()
            idx = rng.integers(0, len(y), batch)
            loss, grad = loss_grad(params, X[idx], y[idx])
            left = compute_s - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)                              # paced: the modelled worker speed
            try:
                send_frame(sock, Frame(TASK, new_task_id(), model, 0, 0, hop, ("127.0.0.1", 0)), tensor=grad)
                reply = read_frame(sock, allowed_models={model}, idle_timeout=STALL_S)
            except (BrokenPipeError, ConnectionResetError):
                reply = None
            if reply is None:          # the PS closed: the job is done, or the PS died (its driver knows)
                log.ps_closed = True
                break
            params = reply.array().copy()
            if log.first_push_at is None:
                log.first_push_at = time.time()
            log.losses.append(loss)
            log.iteration_s.append(time.perf_counter() - t0)
    return log

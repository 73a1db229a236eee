"""Real data-parallel training for the pricing jobs, over TCP in the project's wire format.

A building block for the live mode of issue 15 (not yet wired to the testbed): a softmax
regression on scikit-learn's digits (shipped with the package), workers that compute the
gradient of one mini-batch of their chunk, push it to the parameter server in a TASK frame
(``runtime.wire``: struct-encoded, never pickle) and get the new parameters back in a
RESULT frame.  Compute is paced: a worker holds each gradient until the job's modelled
compute time per mini-batch has passed (as ``runtime.pacing`` does for inference), so the
measured iteration time can be compared with the model's ``tau = compute + 2 g / b``.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from runtime.wire import (
    RESULT,
    TASK,
    Frame,
    WireHop,
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


class ParameterServer:
    """Applies every pushed gradient (SGD, step ``lr``) and answers with the parameters."""

    def __init__(self, params: np.ndarray, lr: float, model: str = "pricing_job"):
        self.params, self.lr, self.model = params.copy(), lr, model
        self.lock = threading.Lock()
        self.stats = PSStats()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.threads: list[threading.Thread] = []

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.sock.bind((host, port))
        self.sock.listen(16)
        return self.sock.getsockname()[:2]

    def serve(self, workers: int) -> None:
        """Serve ``workers`` connections, each until it closes; returns when all are done."""
        for _ in range(workers):
            conn, _ = self.sock.accept()
            t = threading.Thread(target=self._serve_one, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)
        for t in self.threads:
            t.join()
        self.sock.close()

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            while True:
                frame = read_frame(conn, allowed_models={self.model})
                if frame is None:
                    return
                grad = frame.array()
                with self.lock:
                    self.params -= self.lr * grad
                    reply = self.params.copy()
                    self.stats.pushes += 1
                    self.stats.bytes_in += grad.nbytes
                    self.stats.bytes_out += reply.nbytes
                send_frame(conn, Frame(RESULT, frame.task_id, self.model, frame.cut, 0, frame.hops,
                                       frame.reply_to), tensor=reply)


@dataclass
class WorkerLog:
    losses: list = field(default_factory=list)
    iteration_s: list = field(default_factory=list)


def run_worker(ps: tuple[str, int], X: np.ndarray, y: np.ndarray, iterations: int, batch: int,
               compute_s: float, params: np.ndarray, model: str = "pricing_job", seed: int = 0,
               connect_wait: float = 0.0) -> WorkerLog:
    """Train ``iterations`` mini-batches of (X, y): gradient, paced to ``compute_s``, push, pull.
    ``connect_wait``: seconds to keep retrying while the PS is not listening yet."""
    rng = np.random.default_rng(seed)
    log = WorkerLog()
    hop = (WireHop(ps[0], ps[1], 0, 1),)                     # one step: gradient in, parameters out
    deadline = time.monotonic() + connect_wait
    while True:
        try:
            sock = socket.create_connection(ps, timeout=30)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
    with sock:
        for it in range(iterations):
            t0 = time.perf_counter()
            idx = rng.integers(0, len(y), batch)
            loss, grad = loss_grad(params, X[idx], y[idx])
            left = compute_s - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)                              # paced: the modelled worker speed
            send_frame(sock, Frame(TASK, new_task_id(), model, 0, 0, hop, ("127.0.0.1", 0)), tensor=grad)
            reply = read_frame(sock, allowed_models={model})
            params = reply.array().copy()
            log.losses.append(loss)
            log.iteration_s.append(time.perf_counter() - t0)
    return log

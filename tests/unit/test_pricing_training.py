"""The live-mode building block: real training over TCP in the wire format (loopback)."""

import socket
import threading

import numpy as np
import pytest

from agents.pricing import training
from agents.pricing.training import (
    ParameterServer,
    digits,
    init_params,
    loss_grad,
    run_worker,
)
from protocol.wire import FrameError


def test_gradient_matches_finite_differences():
    X, y = digits()
    p = init_params(1)
    _, g = loss_grad(p, X[:32], y[:32])
    for i in (0, 100, 640, 649):
        e = np.zeros_like(p, dtype=np.float64)
        e[i] = 1e-3
        up = loss_grad((p + e).astype(np.float32), X[:32], y[:32])[0]
        down = loss_grad((p - e).astype(np.float32), X[:32], y[:32])[0]
        assert abs((up - down) / 2e-3 - g[i]) < 2e-3


def test_two_workers_train_through_a_ps_and_iterations_match_the_pace():
    X, y = digits()
    chunks = [(X[:800], y[:800]), (X[800:1600], y[800:1600])]
    ps = ParameterServer(init_params(), lr=0.5)
    addr = ps.listen()
    server = threading.Thread(target=ps.serve, args=(120,), daemon=True)
    server.start()
    logs = [None, None]

    def work(i):
        logs[i] = run_worker(addr, *chunks[i], iterations=60, batch=32, compute_s=0.02, params=init_params(),
                             seed=i)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    server.join(10)
    assert ps.stats.pushes == 120 and ps.stats.bytes_in == 120 * 650 * 4
    for log in logs:
        assert np.mean(log.losses[-10:]) < 0.6 * np.mean(log.losses[:5])      # it learns
        assert abs(np.median(log.iteration_s) - 0.02) / 0.02 < 0.2              # the model's pace
    test_loss, _ = loss_grad(ps.params, X[1600:], y[1600:])
    assert test_loss < 1.0


def _serve(ps, target):
    addr = ps.listen()
    thread = threading.Thread(target=ps.serve, args=(target,), daemon=True)
    thread.start()
    return addr, thread


def test_a_replacement_worker_carries_the_job_to_its_target():
    """A worker that stops halfway is replaced by a new connection; the PS counts the
    job's pushes, not its workers, and ends every connection at its target."""
    X, y = digits()
    ps = ParameterServer(init_params(), lr=0.5)
    addr, server = _serve(ps, 50)
    first = run_worker(addr, X[:800], y[:800], iterations=20, batch=32, compute_s=0.0, params=init_params())
    assert len(first.losses) == 20 and not first.ps_closed and ps.stats.pushes == 20
    second = run_worker(addr, X[:800], y[:800], iterations=100, batch=32, compute_s=0.0, params=init_params())
    server.join(10)
    assert second.ps_closed and len(second.losses) == 30 and ps.stats.pushes == 50
    assert ps.stats.connections == 2


def test_a_ps_resumes_from_its_checkpoint(tmp_path):
    X, y = digits()
    path = str(tmp_path / "ps.npz")
    ps = ParameterServer(init_params(), lr=0.5, checkpoint=path)
    addr, server = _serve(ps, 40)
    run_worker(addr, X[:800], y[:800], iterations=40, batch=32, compute_s=0.0, params=init_params())
    server.join(10)
    again = ParameterServer.resume(path, lr=0.5)
    assert again.stats.pushes == 40 and np.array_equal(again.params, ps.params)
    addr, server = _serve(again, 60)
    log = run_worker(addr, X[:800], y[:800], iterations=100, batch=32, compute_s=0.0, params=again.params)
    server.join(10)
    assert log.ps_closed and len(log.losses) == 20 and again.stats.pushes == 60


def test_a_lost_ps_is_an_error_for_the_worker_not_a_hang(monkeypatch):
    monkeypatch.setattr(training, "STALL_S", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as listener:      # accepts, never answers
        X, y = digits()
        with pytest.raises((OSError, FrameError)):
            run_worker(listener.getsockname()[:2], X[:100], y[:100], iterations=5, batch=8, compute_s=0.0,
                       params=init_params())


def test_a_ps_without_pushes_gives_up():
    ps = ParameterServer(init_params(), lr=0.5)
    ps.listen()
    assert ps.serve(10, idle_s=0.3) is False and not ps.done.is_set()

"""The live-mode building block: real training over TCP in the wire format (loopback)."""

import threading

import numpy as np

from agents.pricing.training import (
    ParameterServer,
    digits,
    init_params,
    loss_grad,
    run_worker,
)


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
    server = threading.Thread(target=ps.serve, args=(2,), daemon=True)
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

"""One process of a live training job on a testbed host: ``ps`` or ``worker``.

    python -m agents.pricing.live_node ps --port 7100 --pushes 240 --checkpoint /run/job7.npz
    python -m agents.pricing.live_node worker --ps 10.0.0.3:7100 --iterations 120 --chunk 0/2

Prints one JSON line (its summary) when done; exit status 0.  A PS started with
``--resume`` continues from its checkpoint (a PS that died, started again elsewhere).
A worker that loses its PS (no progress for training.STALL_S) prints an ``error`` line
and exits with status 3; a PS without a push for ``--idle-exit-s`` exits with status 4.  Used by scripts/pricing_live.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from protocol.wire import FrameError

from .training import ParameterServer, digits, init_params, loss_grad, run_worker


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="role", required=True)
    ps = sub.add_parser("ps")
    ps.add_argument("--host", default="0.0.0.0")
    ps.add_argument("--port", type=int, required=True)
    ps.add_argument("--pushes", type=int, required=True, help="the job's mini-batches: done after this many")
    ps.add_argument("--checkpoint", help="npz path for the parameters and the push count")
    ps.add_argument("--resume", action="store_true", help="start from --checkpoint")
    ps.add_argument("--idle-exit-s", type=float, default=60.0, help="give up after this long without a push")
    ps.add_argument("--lr", type=float, default=0.5)
    ps.add_argument("--model", default="pricing_job")
    wk = sub.add_parser("worker")
    wk.add_argument("--ps", required=True, help="host:port")
    wk.add_argument("--iterations", type=int, required=True)
    wk.add_argument("--batch", type=int, default=32)
    wk.add_argument("--compute-s", type=float, default=0.05)
    wk.add_argument("--chunk", default="0/1", help="i/n: this worker's share of the data")
    wk.add_argument("--model", default="pricing_job")
    wk.add_argument("--seed", type=int, default=0)
    for sp in (ps, wk):
        sp.add_argument("--data", help="digits as an .npz (X, y) written by the driver; default: sklearn")
    args = ap.parse_args(argv)
    if args.data:
        with np.load(args.data) as d:
            X, y = d["X"], d["y"]
    else:
        X, y = digits()
    if args.role == "ps":
        if args.resume:
            server = ParameterServer.resume(args.checkpoint, args.lr, args.model)
        else:
            server = ParameterServer(init_params(), args.lr, args.model, checkpoint=args.checkpoint)
        resumed_at = server.stats.pushes
        server.listen(args.host, args.port)
        print(json.dumps({"role": "ps", "ready": True, "resumed_at": resumed_at}), flush=True)
        if not server.serve(args.pushes, idle_s=args.idle_exit_s):
            print(json.dumps({"role": "ps", "error": f"no push for {args.idle_exit_s:g} s", "pushes":
                              server.stats.pushes}), flush=True)
            return 4
        test = slice(1500, None)
        loss, _ = loss_grad(server.params, X[test], y[test])
        W = server.params[:640].reshape(64, 10)
        acc = float(((X[test] @ W + server.params[640:]).argmax(1) == y[test]).mean())
        print(json.dumps({"role": "ps", "done": True, "done_at": time.time(), "pushes": server.stats.pushes,
                          "resumed_at": resumed_at,
                          "connections": server.stats.connections, "bytes_in": server.stats.bytes_in,
                          "bytes_out": server.stats.bytes_out, "heldout_loss": loss, "heldout_acc": acc}),
              flush=True)
        return 0
    i, n = (int(v) for v in args.chunk.split("/"))
    train = np.arange(1500)
    part = train[i::n]
    host, port = args.ps.rsplit(":", 1)
    try:
        log = run_worker((host, int(port)), X[part], y[part], args.iterations, args.batch, args.compute_s,
                         init_params(), args.model, args.seed, connect_wait=30.0)
    except (OSError, FrameError) as exc:
        print(json.dumps({"role": "worker", "error": f"lost the PS {args.ps}: {exc}"}), flush=True)
        return 3
    if not log.losses:
        print(json.dumps({"role": "worker", "iterations": 0, "ps_closed": log.ps_closed}), flush=True)
        return 0
    print(json.dumps({"role": "worker", "iterations": len(log.losses), "ps_closed": log.ps_closed,
                      "first_push_at": log.first_push_at,
                      "loss_first": float(np.mean(log.losses[:5])),
                      "loss_last": float(np.mean(log.losses[-5:])),
                      "iteration_s_median": float(np.median(log.iteration_s)),
                      "iteration_s_mean": float(np.mean(log.iteration_s))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

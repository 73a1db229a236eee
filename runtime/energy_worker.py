"""The edge worker of the energy-aware offloading live mode (docs/energy.md), on e1.

    python -m runtime.energy_worker --port 7711 [--max-tasks 16] [--heartbeat-ip 10.0.0.9]

One task per TCP connection:

    device -> 4-byte big-endian length + JSON header {"bytes": n, "edge_s": s}
    worker -> one JSON line: {"ok": true} (send the input) or {"ok": false, "error": code,
              "message": text} and the connection closes (code: overloaded, bad_request)
    device -> the n input bytes
    worker -> one JSON line {"ok": true, "received": t, "done": t} once it has held the
              task for its edge CPU share ``edge_s`` (paced, as runtime.pacing does)

At most ``--max-tasks`` tasks are taken at once; beyond, a connection is refused with
``overloaded`` at once (the device then runs the task itself). With ``--heartbeat-ip`` the
worker sends its host's heartbeats (runtime.host_agent), so that the controller's view
holds the edge server alive exactly while this worker runs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import socket
import struct
import sys
import threading
import time

log = logging.getLogger("runtime.energy_worker")

DEFAULT_PORT = 7711
MAX_TASKS = 16
MAX_HEADER = 4096
MIN_INPUT_BPS = 10_000       # an input slower than this (bytes/s) overall is given up
MAX_INPUT_BYTES = 64 << 20
HEADER_TIMEOUT_S = 5.0      # a device that connects and sends no header is not waited for
INPUT_TIMEOUT_S = 30.0      # no byte of the input for that long: the device is gone


def paced_kernel(seconds: float, real_fraction: float = 0.05) -> int:
    """Real CPU-bound work (SHA-256) for ``real_fraction`` of ``seconds``, then hold until
    ``seconds`` have passed since the call. Returns the number of hash rounds done."""
    start = time.perf_counter()
    buf, rounds = b"\0" * 65536, 0
    while time.perf_counter() - start < seconds * real_fraction:
        buf = hashlib.sha256(buf).digest() * 2048
        rounds += 1
    rest = seconds - (time.perf_counter() - start)
    if rest > 0:
        time.sleep(rest)
    return rounds


def recv_exact(conn: socket.socket, n: int, deadline: float | None = None) -> bytes:
    """``n`` bytes; TimeoutError past ``deadline`` (time.monotonic) as well as per read,
    so that a sender trickling its input cannot hold a task slot for ever."""
    view = bytearray(n)
    mv, got = memoryview(view), 0
    while got < n:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"input not complete in time ({got} of {n} bytes)")
        k = conn.recv_into(mv[got:], min(n - got, 1 << 20))
        if not k:
            raise ConnectionError("peer closed early")
        got += k
    return bytes(view)


def _line(conn, **reply) -> None:
    conn.sendall(json.dumps(reply).encode() + b"\n")


def parse_header(raw: bytes) -> tuple[int, float]:
    """(input bytes, edge seconds) of a task header; ValueError with the reason otherwise."""
    try:
        head = json.loads(raw)
    except RecursionError:
        raise ValueError("the header nests too deep") from None
    if not isinstance(head, dict):
        raise ValueError("the header must be a JSON object")
    n, edge_s = head.get("bytes"), head.get("edge_s")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_INPUT_BYTES:
        raise ValueError(f"bytes must be an integer in 0..{MAX_INPUT_BYTES}, got {n!r}")
    if isinstance(edge_s, bool) or not isinstance(edge_s, (int, float)) or not 0 <= edge_s <= 600:
        raise ValueError(f"edge_s must be a number of seconds in 0..600, got {edge_s!r}")
    return n, float(edge_s)


class EnergyEdgeWorker:
    """Accepts tasks on ``port``, at most ``max_tasks`` at once."""

    def __init__(self, port: int = DEFAULT_PORT, max_tasks: int = MAX_TASKS, host: str = "0.0.0.0"):
        self.server = socket.create_server((host, port), backlog=128, reuse_port=True)
        self.max_tasks = max_tasks
        self.active = 0
        self.refused = 0
        self._lock = threading.Lock()

    def _take_slot(self) -> bool:
        with self._lock:
            if self.active >= self.max_tasks:
                self.refused += 1
                return False
            self.active += 1
            return True

    def serve_forever(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError as exc:          # e.g. out of file descriptors under a flood: go on
                log.warning("accept failed: %s", exc)
                time.sleep(0.1)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._take_slot():
                self._refuse(conn)          # at once, in this thread: a refusal costs no thread
                continue
            try:
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
            except RuntimeError as exc:     # no thread to be had: refuse, and free the slot
                log.warning("no thread for a task: %s", exc)
                with self._lock:
                    self.active -= 1
                self._refuse(conn)

    def _refuse(self, conn) -> None:
        with conn:
            try:
                conn.settimeout(1.0)
                _line(conn, ok=False, error="overloaded",
                      message=f"edge worker busy ({self.max_tasks} tasks at once); run it locally")
            except OSError:
                pass

    def _handle(self, conn) -> None:
        try:
            with conn:
                conn.settimeout(HEADER_TIMEOUT_S)
                (hlen,) = struct.unpack("!I", recv_exact(conn, 4))
                if hlen > MAX_HEADER:
                    _line(conn, ok=False, error="bad_request", message=f"header of {hlen} bytes; at most {MAX_HEADER}")
                    return
                try:
                    n, edge_s = parse_header(recv_exact(conn, hlen))
                except ValueError as exc:
                    _line(conn, ok=False, error="bad_request", message=str(exc))
                    return
                _line(conn, ok=True)
                conn.settimeout(INPUT_TIMEOUT_S)
                recv_exact(conn, n, deadline=time.monotonic() + INPUT_TIMEOUT_S + n / MIN_INPUT_BPS)
                received = time.time()
                paced_kernel(edge_s)
                _line(conn, ok=True, received=received, done=time.time())
        except (OSError, ConnectionError, struct.error) as exc:   # the device went away: nothing to answer
            log.info("task connection ended: %s", exc)
        finally:
            with self._lock:
                self.active -= 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="energy_worker", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--max-tasks", type=int, default=MAX_TASKS, help="tasks taken at once; beyond: overloaded")
    p.add_argument("--name", default="e1", help="this host's name (heartbeats)")
    p.add_argument("--heartbeat-ip", help="send this host's heartbeats from this IP")
    p.add_argument("--heartbeat-prefixlen", type=int, default=8)
    p.add_argument("--cgroup-root", action="append", default=[], help="where the host's cgroups are visible")
    a = p.parse_args(argv)
    if a.max_tasks < 1:
        p.error("--max-tasks must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = EnergyEdgeWorker(a.port, a.max_tasks)
    if a.heartbeat_ip:
        from runtime.host_agent import CGROUP_ROOT, CgroupLoad, HostAgent
        agent = HostAgent(a.name, "edge", a.heartbeat_ip, a.heartbeat_prefixlen,
                          load=CgroupLoad.of_this_process(tuple(a.cgroup_root) + (CGROUP_ROOT,)),
                          queue_len_fn=lambda: worker.active)
        threading.Thread(target=agent.run, name="heartbeat", daemon=True).start()
    worker.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

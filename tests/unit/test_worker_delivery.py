"""Regression tests (issue 16): results bound to an unreachable address no longer
stall results bound elsewhere, and idle connections no longer lock new ones out."""

import logging
import socket
import time

import numpy as np

from runtime import worker as worker_module
from runtime.client import Client
from protocol.task_plan import Hop, WirePlan
from runtime.testing import TINY_NAME, tiny_factory
from runtime.worker import Worker
from tests.unit.test_fuzz import valid_task

BLACKHOLE = ("127.0.0.9", 9)


def test_an_unreachable_reply_address_delays_only_its_own_frames(monkeypatch, caplog):
    caplog.set_level(logging.CRITICAL, logger="runtime.worker")
    connect = socket.create_connection
    attempts = []

    def slow_to_fail(addr, timeout=None, *args, **kwargs):
        if tuple(addr) == BLACKHOLE:          # a host that never answers: each try costs the timeout
            attempts.append(time.monotonic())
            time.sleep(timeout)
            raise TimeoutError("timed out")
        return connect(addr, timeout, *args, **kwargs)
    monkeypatch.setattr(worker_module.socket, "create_connection", slow_to_fail)
    w = Worker(name="dl", models=[TINY_NAME], model_factory=tiny_factory(), connect_timeout=1.0).start()
    client = Client(("127.0.0.1", 0)).start()
    try:
        plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
        x = np.ones((1, 3, 8, 8), np.float32)
        assert client.infer(plan, x, timeout=10).status == "ok"
        with socket.create_connection(w.address) as s:            # 40 tasks whose results cannot be delivered
            for _ in range(40):
                s.sendall(valid_task(w.address, BLACKHOLE))
            started = time.monotonic()
            results = [client.infer(plan, x, timeout=10) for _ in range(5)]
            took = time.monotonic() - started
        assert all(r.status == "ok" for r in results)
        assert took < 2.0, f"real results took {took:.1f} s behind the unreachable ones"
        deadline = time.monotonic() + 10
        while w.load().get("queue_len", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(attempts) <= 3       # one connect per UNREACHABLE_S, the rest fail at once
    finally:
        client.close()
        w.stop()


def test_idle_connections_make_room_for_a_new_one(monkeypatch):
    monkeypatch.setattr(worker_module, "EVICT_IDLE_S", 0.2)
    w = Worker(name="ev", models=[TINY_NAME], model_factory=tiny_factory(), max_connections=4,
               idle_timeout=300.0).start()
    idle = [socket.create_connection(w.address) for _ in range(4)]
    client = Client(("127.0.0.1", 0)).start()
    try:
        time.sleep(0.4)
        plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
        assert client.infer(plan, np.ones((1, 3, 8, 8), np.float32), timeout=5).status == "ok"
        idle[0].settimeout(2)
        assert idle[0].recv(1) == b""                  # the longest idle one was closed
    finally:
        for s in idle:
            s.close()
        client.close()
        w.stop()


def test_a_sender_charges_what_tcp_resent_on_its_connection(monkeypatch, caplog):
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert worker_module.wire.total_retransmissions(tcp) == 0       # the kernel's count, read from TCP_INFO
        assert worker_module.wire.total_retransmissions(udp) is None
    looked = iter(range(0, 100, 3))       # the connection's total grows by 3 between frames
    monkeypatch.setattr(worker_module.wire, "total_retransmissions", lambda sock: next(looked))
    caplog.set_level(logging.WARNING, logger="runtime.worker")
    w = Worker(name="rt", models=[TINY_NAME], model_factory=tiny_factory()).start()
    client = Client(("127.0.0.1", 0)).start()
    try:
        plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
        x = np.ones((1, 3, 8, 8), np.float32)
        for _ in range(3):       # three results over one pooled connection: looked at before the 2nd and 3rd
            assert client.infer(plan, x, timeout=10).status == "ok"
        assert w.pace_stats.tcp_retransmits == 3
        assert "TCP resent 3 segment(s) to 127.0.0.1" in caplog.text
    finally:
        client.close()
        w.stop()

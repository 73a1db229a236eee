"""Fault handling of the energy live mode, pure parts: which edge server a decision may use
(agents.energy.edges, agents.energy.service), the device's decision retries and its local
fallback (runtime.energy_device), the edge worker's bound (runtime.energy_worker), and the
chaos table (scripts.energy_chaos), over localhost with no testbed."""
import socket
import threading
import time

import numpy as np
import pytest

from agents.energy.edges import EdgeServer, choose_edge
from agents.energy.instances import draw_instance
from agents.energy.service import NotReady, RequestError, decide, default_policies
from runtime import energy_device as dev
from runtime.energy_worker import EnergyEdgeWorker
from scripts.energy_chaos import event_rows

POLICIES = default_policies()
FIELDS = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")
NAMES = [f"d{i + 1}" for i in range(6)]
ATTACHMENT = {n: f"a{i % 2 + 1}" for i, n in enumerate(NAMES)}


def _request(inst, method="optimum", **extra):
    return {"method": method, **extra,
            "devices": [{"name": NAMES[i], **{f: float(getattr(inst, f)[i]) for f in FIELDS}} for i in range(inst.n)]}


def _offloading_instance():
    for seed in range(50):
        inst = draw_instance(np.random.default_rng(seed), n=6)
        reply = decide(_request(inst), ATTACHMENT, POLICIES)
        if sum(d["offload"] for d in reply["devices"]) >= 3:
            return inst, reply
    raise AssertionError("no instance offloads")


# -- masking -------------------------------------------------------------------------
def test_a_dead_edge_server_blocks_every_device_with_its_reason():
    choice = choose_edge([EdgeServer("e1", "10.0.0.9", False, "no heartbeat for more than 3 s")], ["d1", "d2"],
                         lambda d, e: True)
    assert choice.edge is None and choice.masked == {"e1": "no heartbeat for more than 3 s"}
    assert set(choice.blocked) == {"d1", "d2"} and "e1: no heartbeat" in choice.blocked["d1"]


def test_the_live_server_that_reaches_most_devices_is_chosen():
    edges = [EdgeServer("e1", "a", False, "its switch port is down"), EdgeServer("e2", "b", True),
             EdgeServer("e3", "c", True)]
    choice = choose_edge(edges, ["d1", "d2"], lambda d, e: e == "e3" or d == "d1")
    assert choice.edge.name == "e3" and choice.blocked == {}
    assert set(choice.masked) == {"e1", "e2"} and "spare" in choice.masked["e2"]
    only_d1 = choose_edge(edges[:2], ["d1", "d2"], lambda d, e: d == "d1")
    assert only_d1.edge.name == "e2" and list(only_d1.blocked) == ["d2"] and "no path" in only_d1.blocked["d2"]


def test_decisions_with_the_edge_masked_are_all_local_and_say_why():
    inst, free = _offloading_instance()
    up = decide(_request(inst), ATTACHMENT, POLICIES, [EdgeServer("e1", "10.0.0.9", True)], lambda d, e: True)
    assert [d["offload"] for d in up["devices"]] == [d["offload"] for d in free["devices"]]
    assert up["edge"] == {"name": "e1", "ip": "10.0.0.9"} and all(d["why_local"] is None for d in up["devices"])
    down = decide(_request(inst), ATTACHMENT, POLICIES, [EdgeServer("e1", "10.0.0.9", False, "its switch port is down")])
    assert down["edge"] is None and down["masked_edges"] == {"e1": "its switch port is down"}
    assert not any(d["offload"] for d in down["devices"])
    assert all("port is down" in d["why_local"] for d in down["devices"])
    # each device's local run time is the model's, offloaded or not: the fallback's length
    assert all(d["local_s"] == pytest.approx(inst.cycles[i] / d["freq_hz"]) for i, d in enumerate(down["devices"]))


def test_a_device_that_cannot_reach_the_edge_runs_locally_and_the_others_are_decided_among_themselves():
    inst, free = _offloading_instance()
    cut = next(d["name"] for d in free["devices"] if d["offload"])
    reply = decide(_request(inst), ATTACHMENT, POLICIES, [EdgeServer("e1", "x", True)], lambda d, e: d != cut)
    by = {d["name"]: d for d in reply["devices"]}
    assert not by[cut]["offload"] and "no path" in by[cut]["why_local"]
    rest = [i for i, n in enumerate(NAMES) if n != cut]
    sub = decide({"method": "optimum", "devices": [_request(inst)["devices"][i] for i in rest]}, ATTACHMENT, POLICIES)
    assert [by[d["name"]]["offload"] for d in sub["devices"]] == [d["offload"] for d in sub["devices"]]


def test_an_unplaced_device_is_not_ready_and_bad_unreachable_lists_are_refused():
    inst = draw_instance(np.random.default_rng(1), n=6)
    with pytest.raises(NotReady) as caught:
        decide(_request(inst), {}, POLICIES)
    assert caught.value.retry_after_s > 0
    for bad in ("e1", [1], [""], ["e"] * 17):
        with pytest.raises(RequestError, match="unreachable"):
            decide(_request(inst, unreachable=bad), ATTACHMENT, POLICIES)


# -- the device's decision request ----------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def test_a_decision_is_asked_again_with_backoff_while_the_controller_is_away():
    clock = FakeClock()
    answers = [ConnectionRefusedError("refused"), ConnectionRefusedError("refused"),
               dev.Temporary("HTTP 503: overloaded", 0.3), {"devices": []}]

    def post(_payload):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    reply, info = dev.ask_decision(post, {}, sleep=clock.sleep, clock=lambda: clock.now)
    assert reply == {"devices": []} and info["attempts"] == 4 and len(info["reasons"]) == 3
    assert clock.slept == [0.1, 0.2, 0.3]


def test_decision_retries_are_bounded_and_bad_input_is_not_retried():
    clock = FakeClock()

    def away(_payload):
        raise ConnectionRefusedError("refused")
    with pytest.raises(dev.DecisionUnavailable) as caught:
        dev.ask_decision(away, {}, budget_s=5.0, sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.now <= 5.0 and len(caught.value.reasons) >= 5 and max(clock.slept) == dev.MAX_BACKOFF_S

    def bad(_payload):
        raise dev.DecisionRefused("HTTP 400: bad energy request")
    with pytest.raises(dev.DecisionRefused):
        dev.ask_decision(bad, {}, sleep=clock.sleep, clock=lambda: clock.now)


# -- the task and its fallback ------------------------------------------------------
def _job(mode="offload", **extra):
    return {"name": "d1", "mode": mode, "start_at": 0, "edge": "127.0.0.1:1", "bytes": 10, "edge_s": 0.01,
            "model_s": 0.05, "local_s": 0.01, **extra}


def test_an_offloaded_task_whose_edge_fails_runs_locally_counted_as_retried():
    def broken(*_args):
        raise dev.EdgeFailure("connection_lost", "reset by peer")
    ran = []
    record = dev.run_task(_job(), send=broken, local=ran.append)
    assert record["status"] == "ok" and record["mode"] == "offload" and record["ran"] == "local"
    assert record["retries"] == 1 and record["retry_reason"].startswith("connection_lost") and ran == [0.01]


def test_a_task_that_cannot_run_at_all_ends_with_an_explicit_error():
    def broken(*_args):
        raise dev.EdgeFailure("closed", "closed")

    def crash(_s):
        raise MemoryError("no memory")
    assert dev.run_task(_job(local_s=None), send=broken)["error_code"] == "no_local_run"
    failed = dev.run_task(_job("local"), local=crash)
    assert failed["status"] == "error" and failed["error_code"] == "local_failed" and "no memory" in failed["error"]


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_edge_failures_are_named_promptly():
    port = _port()
    started = time.time()
    with pytest.raises(dev.EdgeFailure) as refused:          # nothing listens: the worker is gone
        dev.offload(f"127.0.0.1:{port}", b"x", 0.0, 0.05, started)
    assert refused.value.code == "connect_failed" and time.time() - started < 1.0

    server = socket.create_server(("127.0.0.1", 0))
    silent_port = server.getsockname()[1]
    conns = []
    threading.Thread(target=lambda: conns.append(server.accept()[0]), daemon=True).start()
    started = time.time()
    with pytest.raises(dev.EdgeFailure) as silent:          # accepts, never answers
        dev.offload(f"127.0.0.1:{silent_port}", b"x", 0.0, 0.05, started)
    assert silent.value.code == "no_reply" and time.time() - started < dev.check_after(0.05) + 0.5
    server.close()
    for conn in conns:
        conn.close()


def test_the_edge_worker_refuses_beyond_its_slots_and_the_device_falls_back():
    port = _port()
    worker = EnergyEdgeWorker(port, max_tasks=1, host="127.0.0.1")
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    edge = f"127.0.0.1:{port}"
    holding = threading.Thread(target=dev.offload, args=(edge, b"x" * 1000, 0.5, 0.5, time.time()), daemon=True)
    holding.start()
    deadline = time.time() + 5
    while worker.active < 1 and time.time() < deadline:
        time.sleep(0.01)
    record = dev.run_task(_job(edge=edge, edge_s=0.5), local=lambda s: None)
    assert record["ran"] == "local" and record["retry_reason"].startswith("overloaded") and worker.refused == 1
    holding.join(timeout=5)
    while worker.active and time.time() < deadline:     # its slot is freed just after its answer
        time.sleep(0.01)
    ok = dev.run_task(_job(edge=edge, bytes=50_000, edge_s=0.02))
    assert ok["ran"] == "offload" and ok["status"] == "ok" and ok["edge_s_measured"] >= 0.02


# -- the chaos table ---------------------------------------------------------------
def _rec(event, decided_at, done_at, mode="offload", ran="offload", why_local=None, status="ok", started=None):
    return {"event": event, "decided_at": decided_at, "done_at": done_at, "started_at": started or decided_at + 1,
            "mode": mode, "ran": ran, "why_local": why_local, "status": status,
            "retries": int(mode != ran), "retry_reason": "connection_lost: reset" if mode != ran else None,
            "error_code": None if status == "ok" else "local_failed"}


def test_the_chaos_rows_count_recovery_from_the_first_masked_decision_and_the_rejoin():
    event = {"id": 0, "fault": "edge-kill", "at": 10.0, "undone_at": 14.0}
    records = [_rec(0, 8.0, 9.5),
               _rec(0, 9.0, 11.0, ran="local", started=9.9),                           # in flight: fell back
               _rec(0, 11.0, 12.5, mode="local", ran="local", why_local="no edge alive"),
               _rec(0, 15.0, 16.2)]                                                       # back on the edge
    [row] = event_rows(records, [event], {0: 5})
    assert row["lost"] == 1 and row["completed"] == 4 and row["retried"] == 1
    assert row["recovery_s"] == pytest.approx(2.5) and row["rejoin_s"] == pytest.approx(2.2)
    assert row["affected"] == 1 and row["affected_local"] == 1 and row["affected_worst_s"] == pytest.approx(1.0)


def _edge_answering(lines):
    """A fake edge worker on localhost that reads the header, then answers ``lines``."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for line in lines:
                conn.sendall(line)
            time.sleep(1.0)
    threading.Thread(target=serve, daemon=True).start()
    return server, f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("answers", [[b"[1, 2]\n"], [b'{"ok": true}\n', b'{"ok": true}\n'],
                                     [b'{"ok": true}\n', b'{"ok": true, "received": "x", "done": 1}\n']])
def test_an_answer_that_is_not_the_workers_is_a_bad_reply_and_the_task_runs_locally(answers):
    server, edge = _edge_answering(answers)
    with server:
        record = dev.run_task(_job(edge=edge, bytes=10), local=lambda s: None)
    assert record["status"] == "ok" and record["ran"] == "local" and record["retry_reason"].startswith("bad_reply")


def test_an_upload_slower_than_the_check_time_fails_at_the_check_time(monkeypatch):
    server = socket.create_server(("127.0.0.1", 0))
    conns = []

    def trickle():                      # reads the header, then takes 64 kB every 0.2 s
        conn, _ = server.accept()
        conns.append(conn)
        conn.recv(4096)
        conn.sendall(b'{"ok": true}\n')
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        while True:
            try:
                if not conn.recv(65536):
                    return
            except OSError:
                return
            time.sleep(0.2)
    threading.Thread(target=trickle, daemon=True).start()
    started = time.time()
    with pytest.raises(dev.EdgeFailure) as late:
        dev.offload(f"127.0.0.1:{server.getsockname()[1]}", bytes(64 << 20), 0.0, 0.1, started)
    assert late.value.code == "no_reply" and time.time() - started < dev.check_after(0.1) + dev.STALL_S
    server.close()
    for conn in conns:
        conn.close()


def test_any_5xx_is_retried_and_the_servers_retry_time_is_sane():
    calls = []

    def post(_payload):
        calls.append(1)
        if len(calls) < 3:
            raise dev.Temporary("HTTP 500: internal error", dev.retry_wait(None))
        return {"ok": True}
    reply, info = dev.ask_decision(post, {}, sleep=lambda s: None)
    assert reply == {"ok": True} and info["attempts"] == 3
    for advised in (-5, float("nan"), True, "x", 1e9, None):
        assert dev.FIRST_BACKOFF_S <= dev.retry_wait(advised) <= 1.2 * dev.MAX_BACKOFF_S


def test_a_header_nested_too_deep_is_a_bad_request_not_a_crash():
    from runtime.energy_worker import parse_header
    with pytest.raises(ValueError, match="nests too deep"):
        parse_header(b"[" * 4000)


def test_an_input_trickling_in_is_given_up_at_its_deadline():
    from runtime.energy_worker import recv_exact
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"xy")
        with pytest.raises(TimeoutError, match="not complete in time"):
            recv_exact(b, 10, deadline=time.monotonic() - 1)

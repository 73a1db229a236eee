"""Client, plans, arrivals, records and the two CLIs (loopback only)."""
import csv
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from protocol.task_plan import Hop, WirePlan, PlanError, parse_addr, split_plan
from runtime import client as client_mod
from runtime.client import Client, arrival_times, run_workload, summarize, write_records
from runtime.testing import TINY_NAME, tiny_factory
from runtime.worker import Worker
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ plans
def test_plan_parse_and_validate():
    p = WirePlan.parse("alexnet", "10.0.0.3:9000:0-4,10.0.0.9:9001:4-m", num_segments=11)
    assert p.hops == (Hop("10.0.0.3", 9000, 0, 4), Hop("10.0.0.9", 9001, 4, 11))
    assert p.cuts == (4,) and str(p) == "10.0.0.3:9000:0-4,10.0.0.9:9001:4-11"
    assert WirePlan.parse("alexnet", "0-3,h2:1:3-11", default_addr=("h1", 7)).hops[0] == Hop("h1", 7, 0, 3)
    assert WirePlan.parse("alexnet", str(p), 11) == p
    assert WirePlan.from_wire("alexnet", p.to_wire()) == p


@pytest.mark.parametrize("spec", ["", "0-4", "a:1:1-4", "a:1:0-4,b:2:5-11", "a:1:0-4,b:2:4-10",
                                  "a:1:4-2", "a:x:0-11", "a:1:0-m", "a:0:0-11", "bad host:1:0-11",
                                  "a:1:0", ",a:1:0-11"])
def test_plan_parse_rejects(spec):
    with pytest.raises(PlanError):
        WirePlan.parse("alexnet", spec, num_segments=11 if "m" not in spec else None)


def test_plan_validate_known_models_and_hops():
    p = WirePlan("nope", (Hop("a", 1, 0, 3),))
    with pytest.raises(PlanError):
        p.validate(known_models=("alexnet",))
    with pytest.raises(PlanError):
        WirePlan("alexnet", ()).validate()
    with pytest.raises(PlanError):
        WirePlan("alexnet", tuple(Hop("a", 1, i, i + 1) for i in range(9))).validate()


def test_split_plan_drops_empty_hops():
    edge, cloud = ("10.0.0.3", 9000), ("10.0.0.9", 9000)
    assert split_plan("alexnet", 11, [edge, cloud], [0]).hops == (Hop(*cloud, 0, 11),)
    assert split_plan("alexnet", 11, [edge, cloud], [11]).hops == (Hop(*edge, 0, 11),)
    assert split_plan("alexnet", 11, [edge, cloud], [5]).cuts == (5,)
    assert parse_addr("10.0.0.3:9000") == ("10.0.0.3", 9000)


# ------------------------------------------------------------------ arrivals
def test_arrivals_seeded_and_rates():
    a = arrival_times(2000, 4.0, "poisson", seed=3)
    assert a[0] > 0 and np.all(np.diff(a) >= 0)  # the first arrival is a gap after the start too
    assert np.array_equal(a, arrival_times(2000, 4.0, "poisson", seed=3))
    assert not np.array_equal(a, arrival_times(2000, 4.0, "poisson", seed=4))
    assert abs(np.mean(np.diff(a)) - 0.25) < 0.02
    firsts = [arrival_times(1, 4.0, "poisson", seed=s)[0] for s in range(400)]
    assert abs(np.mean(firsts) - 0.25) < 0.04
    assert np.allclose(arrival_times(5, 2.0, "fixed"), [0, 0.5, 1, 1.5, 2])
    with pytest.raises(ValueError):
        arrival_times(3, 1.0, "bursty")


def test_images_are_real_and_normalised():
    from runtime.images import load_images

    imgs = load_images(("astronaut", "coffee", "china"))
    for name, x in imgs:
        assert x.shape == (3, 224, 224) and x.dtype == np.float32
        assert -3 < x.mean() < 3 and x.std() > 0.2
    with pytest.raises(ValueError):
        load_images(("no_such_image",))


# ------------------------------------------------------------------ workload
@pytest.fixture
def tiny2():
    ws = [Worker(name=f"t{i}", models=[TINY_NAME], model_factory=tiny_factory()).start()
          for i in range(2)]
    yield ws
    for w in ws:
        w.stop()


def tiny_images(n=3):
    rng = np.random.default_rng(0)
    return [(f"img{i}", rng.standard_normal((3, 8, 8)).astype(np.float32)) for i in range(n)]


@pytest.mark.parametrize("arrivals", ["poisson", "fixed", "closed"])
def test_workload_records(tmp_path, tiny2, arrivals):
    plan = split_plan(TINY_NAME, 4, [w.address for w in tiny2], [2])
    with Client(("127.0.0.1", 0)) as c:
        t0 = time.time()
        rows = run_workload(c, plan, tiny_images(), count=12, rate=40, arrivals=arrivals,
                            seed=1, timeout=10, topk=3)
    assert [r["seq"] for r in rows] == list(range(12))
    assert all(r["status"] == "ok" for r in rows)
    assert c.finished == 12
    if arrivals != "closed":
        assert time.time() - t0 >= 0.8 * rows[-1]["planned_s"]
    r = rows[0]
    for k in ("latency_s", "h0_net_s", "h0_queue_s", "h0_compute_s", "h1_compute_s", "result_net_s"):
        assert r[k] >= 0, k
    assert r["h0_name"] == "t0" and r["h1_name"] == "t1" and r["image"] == "img0"
    write_records(rows, str(tmp_path / "r.csv"))
    write_records(rows, str(tmp_path / "r.json"))
    with open(tmp_path / "r.csv") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 12 and got[0]["status"] == "ok" and "h1_compute_s" in got[0]
    js = json.loads((tmp_path / "r.json").read_text())
    assert [s["name"] for s in js[0]["stages"]] == ["client", "t0", "t1"]
    assert summarize(rows)["ok"] == 12


def test_timeouts_and_errors_are_records():
    """A worker that never answers -> 'timeout' rows; a dead one -> 'error' rows."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    accepted = []

    def swallow():
        hole.settimeout(5)
        try:
            conn, _ = hole.accept()
            accepted.append(conn)
            conn.settimeout(5)
            while conn.recv(65536):
                pass
        except OSError:
            pass

    th = threading.Thread(target=swallow, daemon=True)
    th.start()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    try:
        with Client(("127.0.0.1", 0)) as c:
            rows = run_workload(c, WirePlan(TINY_NAME, (Hop(*hole.getsockname(), 0, 4),)), tiny_images(),
                                count=3, rate=50, arrivals="fixed", timeout=0.3)
            assert [r["status"] for r in rows] == ["timeout"] * 3
            assert rows[0]["error_code"] == "timeout" and rows[0]["latency_s"] >= 0.29
            rows = run_workload(c, WirePlan(TINY_NAME, (Hop("127.0.0.1", dead_port, 0, 4),)),
                                tiny_images(), count=2, rate=50, arrivals="poisson", timeout=1)
            assert [r["error_code"] for r in rows] == ["send_failed"] * 2
            assert c.finished == 2  # failed sends are finished; the timed-out tasks never were
            s = summarize(rows)
            assert (s["count"], s["ok"], s["error"]) == (2, 0, 2)
    finally:
        hole.close()
        for conn in accepted:
            conn.close()


def test_late_result_for_timed_out_task_is_ignored(tiny2):
    class Slow:
        def __init__(self):
            from runtime.testing import TinyModel

            self.m = TinyModel()
            self.num_segments = 4

        def output_shape(self, k):
            return self.m.output_shape(k)

        def run(self, x, s, e):
            time.sleep(0.3)
            return self.m.run(x, s, e)

    w = Worker(name="slow", models=[TINY_NAME], model_factory=lambda n: Slow()).start()
    try:
        with Client(("127.0.0.1", 0)) as c:
            plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
            assert c.infer(plan, tiny_images()[0][1], timeout=0.05).status == "timeout"
            wait_until(lambda: w.load()["tasks_done"] == 1, timeout=5, what="the late result sent")
            assert c.infer(plan, tiny_images()[0][1], timeout=5).status == "ok"
    finally:
        w.stop()


# ------------------------------------------------------------------ CLIs
def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_worker_and_client_cli_end_to_end(tmp_path, capsys):
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "runtime.worker", "--listen",
                               f"127.0.0.1:{p}", "--name", f"cli{i}", "--models", "alexnet",
                               "--log-level", "WARNING", "--preload"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i, p in enumerate(ports)]
    try:
        deadline = time.monotonic() + 60
        for p in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "worker did not start"
                    time.sleep(0.2)
        out = tmp_path / "res.csv"
        rc = client_mod.main(["--to", f"127.0.0.1:{ports[0]}", "--model", "alexnet", "--plan",
                              f"0-3,127.0.0.1:{ports[1]}:3-m", "--rate", "10", "--arrivals",
                              "poisson", "--count", "4", "--images", "astronaut,coffee",
                              "--out", str(out), "--json", str(tmp_path / "res.json"),
                              "--timeout", "30"])
        assert rc == 0, capsys.readouterr().out
        rows = list(csv.DictReader(open(out)))
        assert [r["status"] for r in rows] == ["ok"] * 4
        assert rows[0]["plan"] == f"127.0.0.1:{ports[0]}:0-3,127.0.0.1:{ports[1]}:3-11"
        assert rows[0]["image"] == "astronaut" and rows[1]["image"] == "coffee"
        assert '"ok": 4' in capsys.readouterr().out
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    assert all(p.returncode == 0 for p in procs)


def test_connect_opens_the_pooled_connection_before_the_first_task():
    with Worker(name="w", models=[TINY_NAME], model_factory=tiny_factory()) as worker, \
            Client(("127.0.0.1", 0)) as client:
        client.connect(worker.address)
        deadline = time.monotonic() + 5
        while worker.load()["connections"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.load()["connections"] == 1
        plan = WirePlan(TINY_NAME, (Hop(*worker.address, 0, 4),))
        assert client.infer(plan, np.zeros((1, 3, 8, 8), np.float32), timeout=10).status == "ok"
        assert worker.load()["connections"] == 1       # the task went over the connection opened before

"""Workers on 127.0.0.1 (in-process threads): split execution, errors, load report."""
import functools
import socket
import threading
import time

import numpy as np
import pytest
import torch

from runtime.client import Client
from protocol.task_plan import Hop, WirePlan, split_plan
from runtime.testing import TINY_NAME, TinyModel, tiny_factory
from tests.polling import wait_until
from runtime.worker import BUSY_WINDOW, Worker

TIMEOUT = 20.0


@pytest.fixture
def client():
    with Client(("127.0.0.1", 0)) as c:
        yield c


def tiny_workers(n, **kw):
    return [Worker(name=f"w{i}", models=[TINY_NAME], model_factory=tiny_factory(), **kw).start()
            for i in range(n)]


@pytest.fixture
def tiny3():
    ws = tiny_workers(3)
    yield ws
    for w in ws:
        w.stop()


def tiny_input(seed=0, batch=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, 8, 8)).astype(np.float32)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@functools.lru_cache(maxsize=None)
def real_model(name):
    models = pytest.importorskip("models")
    return models.build_model(name, seed=0)


@pytest.mark.parametrize("model_name,cuts", [("alexnet", [5]), ("resnet18", [2, 5])])
def test_split_task_matches_local_run(client, model_name, cuts):
    from runtime.images import load_image

    m = real_model(model_name)
    ws = [Worker(name=f"h{i}", models=[model_name], model_factory=real_model).start()
          for i in range(len(cuts) + 1)]
    try:
        plan = split_plan(model_name, m.num_segments, [w.address for w in ws], cuts)
        assert len(plan.hops) == len(cuts) + 1
        x = load_image("chelsea")
        res = client.infer(plan, x, timeout=60, topk=5, want_logits=True)
        assert res.status == "ok", res
        ref = m.run(torch.from_numpy(x.copy())[None], 0, m.num_segments)
        assert res.classes == (int(ref.argmax(1)),)
        np.testing.assert_allclose(res.logits, ref.numpy(), rtol=1e-4, atol=1e-4)
        assert len(res.topk[0].classes) == 5
        names = [s.name for s in res.stages]
        assert names == ["client"] + [w.name for w in ws]
        bd = res.breakdown()
        for i in range(len(ws)):
            assert bd[f"h{i}_compute_s"] > 0 and bd[f"h{i}_queue_s"] >= 0
        assert bd["result_net_s"] >= 0
        assert sum(w.load()["tasks_forwarded"] for w in ws) == len(cuts)
        assert ws[-1].load()["tasks_done"] == 1
    finally:
        for w in ws:
            w.stop()


def test_three_hops_tiny_float16_and_batch(client, tiny3):
    m = TinyModel()
    plan = split_plan(TINY_NAME, 4, [w.address for w in tiny3], [1, 3])
    x = tiny_input(batch=3)
    ref = m.run(torch.from_numpy(x), 0, 4)
    res = client.infer(plan, x, timeout=TIMEOUT, topk=2, want_logits=True)
    assert res.status == "ok"
    assert res.classes == tuple(int(c) for c in ref.argmax(1))
    res16 = client.infer(plan, x, timeout=TIMEOUT, wire_dtype="float16")
    assert res16.status == "ok" and len(res16.classes) == 3


def test_unknown_model_gets_error_frame(client, tiny3):
    plan = WirePlan("alexnet", (Hop(*tiny3[0].address, 0, 11),))
    res = client.infer(plan, np.zeros((3, 224, 224), np.float32), timeout=TIMEOUT)
    assert res.status == "error" and res.error_code == "unknown_model"
    # the worker keeps serving
    ok = client.infer(WirePlan(TINY_NAME, (Hop(*tiny3[0].address, 0, 4),)), tiny_input(), timeout=TIMEOUT)
    assert ok.status == "ok"


def test_factory_rejecting_model_gives_unknown_model(client):
    w = Worker(name="w", models=[TINY_NAME, "alexnet"], model_factory=tiny_factory()).start()
    try:
        res = client.infer(WirePlan("alexnet", (Hop(*w.address, 0, 11),)),
                           np.zeros((3, 224, 224), np.float32), timeout=TIMEOUT)
        assert res.error_code == "unknown_model"
    finally:
        w.stop()


@pytest.mark.parametrize("hops,shape,code", [
    ([(0, 9)], (1, 3, 8, 8), "bad_cut"),           # past the model's last point
    ([(0, 2)], (1, 3, 8, 8), "bad_plan"),          # last hop does not finish the model
    ([(0, 4)], (1, 3, 9, 9), "bad_shape"),         # wrong tensor for point 0
])
def test_bad_plans_get_error_frames(client, tiny3, hops, shape, code):
    plan = WirePlan(TINY_NAME, tuple(Hop(*tiny3[0].address, s, e) for s, e in hops))
    res = client.infer(plan, np.zeros(shape, np.float32), timeout=TIMEOUT)
    assert res.status == "error" and res.error_code == code, res


def test_integer_tensor_rejected(client, tiny3):
    plan = WirePlan(TINY_NAME, (Hop(*tiny3[0].address, 0, 4),))
    res = client.infer(plan, np.zeros((1, 3, 8, 8), np.uint8), timeout=TIMEOUT)
    assert res.status == "ok"  # the client casts to the float32 wire dtype
    res = client.infer(plan, np.zeros((1, 3, 8, 8)), timeout=TIMEOUT, wire_dtype="uint8")
    assert res.status == "error" and res.error_code == "bad_dtype"


def test_next_hop_unreachable(client, tiny3):
    plan = WirePlan(TINY_NAME, (Hop(*tiny3[0].address, 0, 2), Hop("127.0.0.1", closed_port(), 2, 4)))
    res = client.infer(plan, tiny_input(), timeout=TIMEOUT)
    assert res.status == "error" and res.error_code == "next_hop_unreachable"
    assert [s.name for s in res.stages] == ["client", "w0"]


def test_first_hop_unreachable_is_send_failed(client):
    plan = WirePlan(TINY_NAME, (Hop("127.0.0.1", closed_port(), 0, 4),))
    res = client.infer(plan, tiny_input(), timeout=TIMEOUT)
    assert res.status == "error" and res.error_code == "send_failed"


def test_malformed_frame_closes_only_that_connection(client, tiny3):
    w = tiny3[0]
    with socket.create_connection(w.address, timeout=5) as bad:
        bad.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 200)
        bad.settimeout(5)
        try:
            assert bad.recv(10) == b""  # closed by the worker ...
        except ConnectionResetError:
            pass  # ... or reset, since our unread bytes were discarded
    plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
    for i in range(3):
        assert client.infer(plan, tiny_input(i), timeout=TIMEOUT).status == "ok"
    assert w.load()["frames_rejected"] >= 1


def test_result_of_many_pipelined_tasks(client, tiny3):
    plan = split_plan(TINY_NAME, 4, [tiny3[0].address, tiny3[1].address], [2])
    ids = [client.submit(plan, tiny_input(i)) for i in range(50)]
    res = [client.wait(t, TIMEOUT) for t in ids]
    assert all(r.status == "ok" for r in res)
    m = TinyModel()
    assert [r.classes[0] for r in res] == [int(m.run(torch.from_numpy(tiny_input(i)), 0, 4).argmax())
                                           for i in range(50)]


class SlowModel(TinyModel):
    def run(self, x, start, end):
        time.sleep(0.05)
        return super().run(x, start, end)


def test_load_report_and_overload(client):
    w = Worker(name="slow", models=[TINY_NAME], model_factory=lambda n: SlowModel(),
               queue_size=3, enqueue_timeout=0.0).start()
    try:
        load = w.load()
        assert set(load) >= {"queue_len", "busy_fraction", "tasks_done", "name"}
        assert load["tasks_done"] == 0 and load["busy_fraction"] == 0.0
        plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 4),))
        ids = [client.submit(plan, tiny_input(i)) for i in range(12)]
        time.sleep(0.02)
        mid = w.load()
        res = [client.wait(t, TIMEOUT) for t in ids]
        codes = {r.error_code for r in res if r.status != "ok"}
        assert all(r.status in ("ok", "error") for r in res)
        assert codes <= {"overloaded"} and "overloaded" in codes
        assert 1 <= mid["queue_len"] <= 3
        assert mid["busy"] and mid["inflight_bytes"] > 0
        after = w.load()
        assert after["tasks_done"] == sum(r.status == "ok" for r in res)
        assert 0.8 * 0.05 * after["tasks_done"] <= after["busy_fraction"] <= 1.0
        wait_until(lambda: w.load()["busy_fraction"] == 0.0, timeout=BUSY_WINDOW + 0.5, what="an idle busy window")
    finally:
        w.stop()


def test_concurrent_clients(tiny3):
    plan = split_plan(TINY_NAME, 4, [tiny3[0].address, tiny3[2].address], [1])
    out = []

    def run(seed):
        with Client(("127.0.0.1", 0)) as c:
            out.extend(c.infer(plan, tiny_input(seed), timeout=TIMEOUT).status for _ in range(10))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == ["ok"] * 40

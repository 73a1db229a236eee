"""Paced compute emulation: emulated hop times, holding, FIFO queueing, overruns."""
import json
import time

import numpy as np
import pytest

from agents.calibration import ProfileStore
from protocol.heartbeat import PACING_FIELDS, Heartbeat, HeartbeatError, decode, encode
from runtime.client import Client
from runtime.pacing import Pacer, PaceStats, PacingError, parse_speed
from protocol.task_plan import Hop, WirePlan
from runtime.testing import TINY_NAME, TinyModel
from runtime.worker import Worker

SEGMENT_S = (0.020, 0.010, 0.030, 0.040)   # tiny's profile at one core


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A profile store that knows the 4-segment test model at one core."""
    root = tmp_path_factory.mktemp("profiles")
    (root / "cloud").mkdir()
    shapes = [(3, 8, 8), (4, 8, 8), (4, 4, 4), (16,), (10,)]
    points = [{"index": i, "name": ("input", "p1", "p2", "p3", "output")[i], "out_bytes": 4 * int(np.prod(s)), "shape": list(s)}
              for i, s in enumerate(shapes)]
    segments = [{"index": i + 1, "name": points[i + 1]["name"], "kind": "other", "flops": 0, "params": 0,
                 "in_bytes": points[i]["out_bytes"], "out_bytes": points[i + 1]["out_bytes"],
                 "median_s": t, "p90_s": 1.5 * t, "repeats": 1} for i, t in enumerate(SEGMENT_S)]
    (root / "cloud" / f"{TINY_NAME}.json").write_text(json.dumps(
        {"schema": 1, "model": TINY_NAME, "host_class": "cloud", "cpu_share": 1.0, "torch_threads": 1,
         "points": points, "segments": segments, "total_median_s": sum(SEGMENT_S),
         "measured_full_s": sum(SEGMENT_S), "created": "2026-11-01T00:00:00Z", "machine": "hand-made"}))
    return ProfileStore(root, allow_synthetic=False)


class SlowTiny(TinyModel):
    """The test model, taking ``delay_s`` of real time per hop."""

    def __init__(self, delay_s):
        super().__init__()
        self.delay_s = delay_s

    def run(self, x, start, end):
        time.sleep(self.delay_s)
        return super().run(x, start, end)


def paced_worker(pacer, delay_s=0.0):
    return Worker(name="paced", models=[TINY_NAME], model_factory=lambda _name: SlowTiny(delay_s),
                  pacer=pacer)


def tiny_plan(worker, start=0, end=4):
    return WirePlan(TINY_NAME, (Hop(*worker.address, start, end),))


def tiny_input():
    return np.zeros((1, 3, 8, 8), np.float32)


def test_emulated_time_is_the_profiled_time_at_the_node_speed(store):
    assert Pacer(1.0, store).emulated_s(TINY_NAME, 0, 4) == pytest.approx(sum(SEGMENT_S))
    assert Pacer(0.25, store).emulated_s(TINY_NAME, 1, 3) == pytest.approx(4 * (0.010 + 0.030))
    assert Pacer(0.25, store).demand(TINY_NAME) == pytest.approx(0.25)


def test_jitter_follows_the_profile_spread_and_is_seeded(store):
    draws = [Pacer(1.0, store, jitter=True, seed=3).emulated_s(TINY_NAME, 0, 1) for _ in range(2)]
    assert draws[0] == draws[1]                       # same seed, same first draw
    pacer = Pacer(1.0, store, jitter=True, seed=4)
    times = np.array([pacer.emulated_s(TINY_NAME, 0, 1) for _ in range(4000)])
    assert np.median(times) == pytest.approx(0.020, rel=0.05)
    assert np.quantile(times, 0.9) == pytest.approx(0.030, rel=0.05)   # the profile's p90


def test_speeds_are_host_classes_or_cores():
    assert parse_speed("edge-small") == 0.2 and parse_speed("0.15") == 0.15 and parse_speed(0.5) == 0.5
    for bad in ("edge-huge", "", 0, -1, float("nan"), 100):
        with pytest.raises(PacingError):
            parse_speed(bad)


def test_a_paced_hop_takes_its_emulated_time_not_the_real_one(store):
    pacer = Pacer(0.5, store)   # 200 ms for the whole model; the real run takes microseconds
    with paced_worker(pacer) as worker, Client(("127.0.0.1", 0)) as client:
        result = client.infer(tiny_plan(worker), tiny_input(), timeout=10)
        assert result.status == "ok"
        compute = result.breakdown()["h0_compute_s"]
        assert 0.200 <= compute < 0.300     # held to its emulated time (the margin: wake-up on a busy machine)
        stats = worker.load()["pacing"]
        assert stats["paced_hops"] == 1 and stats["overruns"] == 0
        assert stats["emulated_s"] == pytest.approx(0.2) and stats["real_s"] < 0.05
        assert worker.load()["speed"] == 0.5


def test_tasks_queue_behind_the_hold(store):
    pacer = Pacer(2.0, store)   # 50 ms a task
    with paced_worker(pacer) as worker, Client(("127.0.0.1", 0)) as client:
        ids = [client.submit(tiny_plan(worker), tiny_input()) for _ in range(3)]
        results = [client.wait(i, 10) for i in ids]
    starts = sorted(r.stages[-1].compute_start for r in results)
    assert [r.status for r in results] == ["ok"] * 3
    gaps = np.diff(starts)
    assert (gaps >= 0.049).all() and (gaps < 0.150).all()   # one at a time, each held 50 ms (margin: a busy machine)


def test_a_hop_slower_than_its_emulated_time_is_an_overrun(store):
    pacer = Pacer(4.0, store)   # 25 ms emulated for the whole model; the real run takes 60 ms
    with paced_worker(pacer, delay_s=0.060) as worker, Client(("127.0.0.1", 0)) as client:
        assert client.infer(tiny_plan(worker), tiny_input(), timeout=10).status == "ok"
        stats = worker.load()["pacing"]
    assert stats["overruns"] == 1 and stats["overrun_s"] == pytest.approx(0.035, abs=0.01)
    assert stats["worst_overrun_s"] == stats["overrun_s"]


def test_heartbeats_carry_the_pacing_counters():
    stats = PaceStats()
    stats.record(0.01, 0.05)
    stats.record(0.07, 0.05)
    assert tuple(stats.as_dict()) == PACING_FIELDS
    beat = Heartbeat("e1", "edge", "10.0.0.3", 1, 0.2, 0.5, 0, 1 << 30, pacing=stats.as_dict())
    assert decode(encode(beat)).pacing == {**stats.as_dict()}
    assert decode(encode(Heartbeat("d1", "device", "10.0.0.1", 1, 2.0, 0.0, 0, 1 << 30))).pacing is None
    for bad in ({"paced_hops": 1}, dict(stats.as_dict(), overruns=-1), dict(stats.as_dict(), real_s=True)):
        with pytest.raises(HeartbeatError):
            Heartbeat("e1", "edge", "10.0.0.3", 1, 0.2, 0.5, 0, 1 << 30, pacing=bad)

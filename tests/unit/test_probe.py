import pytest

from controller import probe
from controller.probe import (FRAME_BYTES, MARKER_FIRST, MARKER_LAST, CapacityEstimator, CapacityProber,
                              LinkKey, parse_marker)

LINK = LinkKey(1, 2, 3, 4)


def markers_of(train):
    return [parse_marker(frame) for frame, _ in train.messages if parse_marker(frame)]


def test_train_layout_pretrain_first_marker_train_last_marker():
    prober = CapacityProber(pretrain_bytes=30_000, max_train_bytes=1_200_000)
    train = prober.plan(LINK, now=0.0)
    kinds = [parse_marker(f) and parse_marker(f)[1] for f, _ in train.messages]
    first, last = kinds.index(MARKER_FIRST), kinds.index(MARKER_LAST)
    assert 0 < first < last == len(kinds) - 1
    pre = sum(c for f, c in train.messages[:first]) * FRAME_BYTES
    between = sum(c for f, c in train.messages[first + 1:last]) * FRAME_BYTES
    assert pre == 30_000 and between == train.train_bytes
    assert all(c <= probe.MAX_COPIES_PER_MESSAGE for _, c in train.messages)
    assert train.injected_bytes == pre + between + 2 * 64


def test_frames_have_probe_ethertype_and_macs():
    train = CapacityProber().plan(LINK, 0.0)
    bulk = train.messages[0][0]
    assert len(bulk) == FRAME_BYTES and bulk[12:14] == b"\x88\xb5"
    assert bulk[:6] == bytes.fromhex("025dce000002")
    marker = next(f for f, _ in train.messages if parse_marker(f))
    assert marker[:6] == bytes.fromhex("025dce000001")


def test_rate_from_marker_times():
    prober = CapacityProber()
    train = prober.plan(LINK, 0.0)
    (pid, _), _ = markers_of(train)
    assert prober.on_marker(pid, MARKER_FIRST, dst_dpid=3, timestamp=10.0) is None
    result = prober.on_marker(pid, MARKER_LAST, dst_dpid=3, timestamp=10.1)
    assert result.link == LINK
    assert result.capacity_bps == pytest.approx(8 * (train.train_bytes + 64) / 0.1)
    assert not prober.busy(LINK)


def test_next_train_sized_from_last_rate_within_bounds():
    prober = CapacityProber(target_duration=0.25, min_train_bytes=60_000, max_train_bytes=1_200_000)
    train = prober.plan(LINK, 0.0)
    (pid, _), _ = markers_of(train)
    prober.on_marker(pid, MARKER_FIRST, 3, 0.0)
    prober.on_marker(pid, MARKER_LAST, 3, 8 * (train.train_bytes + 64) / 10e6)  # 10 Mbit/s
    assert prober.plan(LINK, 1.0).train_bytes == pytest.approx(10e6 / 8 * 0.25, abs=FRAME_BYTES)


def test_marker_from_wrong_switch_or_unknown_probe_ignored():
    prober = CapacityProber()
    train = prober.plan(LINK, 0.0)
    (pid, _), _ = markers_of(train)
    assert prober.on_marker(pid, MARKER_FIRST, dst_dpid=99, timestamp=1.0) is None
    assert prober.on_marker(12345, MARKER_LAST, dst_dpid=3, timestamp=1.0) is None
    assert prober.busy(LINK)


def test_lost_train_expires_and_halves_next_train():
    prober = CapacityProber(timeout=3.0, min_train_bytes=1)
    train = prober.plan(LINK, 0.0)
    (pid, _), _ = markers_of(train)
    prober.on_marker(pid, MARKER_FIRST, 3, 0.0)
    prober.on_marker(pid, MARKER_LAST, 3, 0.1)
    size = prober.plan(LINK, 1.0).train_bytes
    assert prober.expire(now=2.0) == []
    assert prober.expire(now=10.0) == [LINK]
    assert prober.plan(LINK, 11.0).train_bytes == pytest.approx(size / 2, abs=FRAME_BYTES)


def test_parse_marker_rejects_other_frames():
    assert parse_marker(b"\x00" * 10) is None
    assert parse_marker(probe.BULK_FRAME) is None


def test_estimator_needs_two_agreeing_probes_for_a_first_estimate_and_a_change():
    est = CapacityEstimator(window=3, jump=0.25)
    assert est.update(LINK, 50e6) is None and est.unsettled(LINK)   # one look is not enough
    assert est.update(LINK, 60e6) == 55e6 and not est.unsettled(LINK)
    assert est.update(LINK, 52e6) == 52e6      # median of three
    assert est.update(LINK, 80e6) == 52e6      # an outlier waits for a second look...
    assert est.unsettled(LINK)
    assert est.update(LINK, 51e6) == 52e6      # ...and is dropped when the link disagrees
    assert not est.unsettled(LINK)
    assert est.update(LINK, 10e6) == 52e6      # a real change: seen once, held
    assert est.update(LINK, 11e6) == 10.5e6    # seen twice: shown


def test_cross_traffic_correction_restores_a_low_reading_up_to_the_estimate_only():
    from controller.probe import corrected_capacity
    assert corrected_capacity(30e6, 20e6, 50e6) == 50e6     # 20 Mbit/s UDP on a 50 Mbit/s link
    assert corrected_capacity(25e6, 50e6, 50e6) == 50e6     # TCP that backed off: never above the estimate
    assert corrected_capacity(5e6, 5e6, 50e6) == 10e6       # the link really slowed to 10 under 5 of traffic
    assert corrected_capacity(30e6, 20e6, None) == 30e6     # first reading: as measured (conservative)
    assert corrected_capacity(60e6, 20e6, 50e6) == 60e6     # at or above the estimate: as measured


def test_estimator_settles_on_a_noisy_link_after_a_window_of_disagreeing_probes():
    est = CapacityEstimator(window=3, jump=0.1)
    assert est.update(LINK, 10e6) is None
    assert est.update(LINK, 20e6) is None
    assert est.update(LINK, 40e6) == 20e6 and not est.unsettled(LINK)


def test_schedule_probes_an_unconfirmed_result_again_soon():
    from controller.probe import ProbeSchedule
    schedule = ProbeSchedule(min_interval=2.0, max_interval=16.0, confirm_interval=0.25)
    schedule.due([LINK], 0.0)
    schedule.result(LINK, 0.0, None, 50e6, unconfirmed=True)
    assert schedule.due([LINK], 0.2) == [] and schedule.due([LINK], 0.25) == [LINK]


def test_probe_schedule_backs_off_while_a_link_holds_and_hurries_after_a_change():
    from controller.probe import ProbeSchedule
    link = LinkKey(1, 1, 2, 1)
    schedule = ProbeSchedule(min_interval=2.0, max_interval=16.0)
    assert schedule.due([link], 0.0) == [link]            # new: at once
    schedule.sent(link, 0.0)
    assert schedule.due([link], 1.0) == []                # a train is out
    schedule.result(link, 0.1, None, 50e6)                # first estimate: the shortest interval
    assert schedule.due([link], 2.0) == [] and schedule.due([link], 2.1) == [link]
    now, intervals = 2.1, []
    for _ in range(5):                                    # agreeing probes: 4, 8, 16, 16, 16 s
        schedule.result(link, now, 50e6, 51e6)
        intervals.append(schedule._next[link] - now)
        now = schedule._next[link]
    assert intervals == pytest.approx([4.0, 8.0, 16.0, 16.0, 16.0])
    schedule.result(link, now, 50e6, 10e6)                # the rate changed: back to 2 s
    assert schedule._next[link] - now == pytest.approx(2.0)
    schedule.result(link, now, 10e6, 10e6)
    schedule.hurry(now + 1)
    assert schedule.due([link], now + 1) == [link]
    schedule.lost(link, now + 1)
    assert schedule.due([link], now + 2.5) == [] and schedule.due([link], now + 3.0) == [link]

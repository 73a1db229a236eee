"""Fluid fair sharing of the WAN between senders' lanes."""

import math

import pytest

from agents.wan_share import FairShareLink


def test_lanes_share_equally_and_a_lane_alone_gets_it_all():
    link = FairShareLink()
    link.add("a", 0.0, 10.0)
    link.add("a", 0.0, 10.0)
    link.add("b", 0.0, 10.0)
    ends = link.ends(capacity_bps=10.0)
    assert ends["b"] == pytest.approx([2.0])        # half the link while a sends too
    assert ends["a"] == pytest.approx([2.0, 3.0])   # then a alone: its second at full rate


def test_a_transfer_not_ready_yet_waits_and_does_not_slow_the_others():
    link = FairShareLink()
    link.add("a", 0.0, 10.0)
    link.add("b", 0.5, 10.0)
    ends = link.ends(capacity_bps=10.0)
    # a alone for 0.5 s (5 bits), then both at 5 bit/s: a's 5 bits left take 1 s
    assert ends["a"] == pytest.approx([1.5])
    assert ends["b"] == pytest.approx([2.0])
    assert link.crossing("b", 0.0, 10.0, 10.0) == pytest.approx((2.0, 3.0))


def test_everything_is_forgotten_once_it_has_ended():
    link = FairShareLink()
    link.add("a", 0.0, 10.0)
    link.forget_before(0.5, 10.0)
    assert link.ends(10.0) == {"a": pytest.approx([1.0])}
    link.forget_before(1.0, 10.0)
    assert link.ends(10.0) == {}
    link.add("a", 0.0, 10.0)
    assert link.ends(0.0) == {"a": [math.inf]}


def test_forgetting_the_past_keeps_the_future():
    jobs = {"a": [(0.0, 30.0), (0.2, 10.0)], "b": [(0.5, 20.0)], "c": [(1.7, 5.0), (4.0, 8.0)]}
    whole, cut = FairShareLink(), FairShareLink()
    for lane, items in jobs.items():
        for ready, bits in items:
            whole.add(lane, ready, bits)
            cut.add(lane, ready, bits)
    expected = whole.ends(10.0)
    for now in (1.0, 2.5, 3.1):
        cut.forget_before(now, 10.0)
        for lane, ends in cut.ends(10.0).items():
            assert ends == pytest.approx(expected[lane][-len(ends):])
            assert all(end > now for end in ends)


def test_a_dropped_lane_leaves_the_link_to_the_others():
    link = FairShareLink()
    link.add("a", 0.0, 10.0)
    link.add("b", 0.0, 10.0)
    link.drop("a")
    link.drop("never-used")
    assert link.ends(10.0) == {"b": pytest.approx([1.0])}

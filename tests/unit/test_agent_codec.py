import itertools

import numpy as np
import pytest

from agents.codec import ActionCodec
from agents.cost import NetView, NodeView, all_plans


def test_layout_single():
    c = ActionCodec(m=3, n_edge=2)
    assert c.n == 7
    assert c.encode(0) == 0 and c.decode(0) == (0, None, None, None)
    assert c.encode(2, 1) == 4 and c.decode(4) == (2, 1, None, None)
    assert c.hops(4, ["a", "b"]) == (("b", 0, 2), ("cloud", 2, 3))
    assert c.hops(c.encode(3, 0), ["a", "b"]) == (("a", 0, 3),)
    assert c.hops(0, ["a", "b"]) == (("cloud", 0, 3),)


def test_roundtrip_two_hop():
    c = ActionCodec(m=3, n_edge=2, two_hop=True)
    assert c.n == 7 + 3 * 2      # (p, q) in {(1,2), (1,3), (2,3)} x ordered pairs (j, k)
    names = ["a", "b"]
    for a in range(c.n):
        plan = c.plan(a, "x", names)
        assert c.action_of(plan, names) == a
        assert plan.hops[0][1] == 0 and plan.hops[-1][2] == 3
    assert c.hops(c.encode(1, 0, 3, 1), names) == (("a", 0, 1), ("b", 1, 3))
    with pytest.raises(ValueError):
        c.encode(1, 0, 3, 0)
    with pytest.raises(ValueError):
        c.decode(c.n)


@pytest.mark.parametrize("m, n, two", list(itertools.product([1, 4, 11], [1, 3], [False, True])))
def test_codec_matches_all_plans(m, n, two):
    nodes = tuple(NodeView(f"e{i}", "edge", 0.5) for i in range(n)) + (NodeView("cloud", "cloud", 1.0),)
    view = NetView(nodes)
    c = ActionCodec(m, n, two)
    plans = all_plans("x", m, view, two)
    assert len(plans) == c.n
    names = [f"e{i}" for i in range(n)]
    for a, p in enumerate(plans):
        assert c.hops(a, names) == p.hops


def test_cloud_only_mask():
    m = ActionCodec(4, 2).cloud_only_mask()
    assert m.sum() == 1 and m[0] == 1 and m.dtype == np.int8

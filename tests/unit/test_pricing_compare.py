"""The paired comparison over seeds (agents/pricing/compare.py) and the seed lists."""

import pytest

from agents.pricing.compare import paired_rows, parse_seeds


def rows(method, welfare_by_seed, n_jobs=100):
    return [{"n_jobs": n_jobs, "method": method, "seed": s, "welfare": w} for s, w in welfare_by_seed.items()]


def test_paired_differences_are_per_seed_on_common_seeds():
    data = (rows("pricing", {0: 110.0, 1: 102.0, 2: 99.0, 3: 120.0, 9: 1.0})
            + rows("fcfs", {0: 100.0, 1: 100.0, 2: 100.0, 3: 100.0}))
    (r,) = paired_rows(data, ["n_jobs"], "pricing", ["fcfs"])
    assert r["seeds"] == 4 and r["versus"] == "fcfs"          # seed 9 has no pair
    assert r["mean_diff"] == pytest.approx((10 + 2 - 1 + 20) / 4)
    assert r["mean_rel_pct"] == pytest.approx((10 + 2 - 1 + 20) / 4)
    assert (r["wins"], r["losses"]) == (3, 1)
    assert r["sign_p"] == pytest.approx(0.625)                 # binomial, two-sided: 10/16
    assert 0 < r["wilcoxon_p"] <= 1


def test_a_consistent_win_over_many_seeds_is_significant_and_one_seed_is_not():
    many = rows("pricing", {s: 101.0 + s % 3 for s in range(20)}) + rows("oasis", {s: 100.0 for s in range(20)})
    (r,) = paired_rows(many, ["n_jobs"], "pricing", ["oasis"])
    assert r["wins"] == 20 and r["sign_p"] < 1e-5 and r["wilcoxon_p"] < 1e-3
    one = rows("pricing", {0: 200.0}) + rows("oasis", {0: 100.0})
    (r,) = paired_rows(one, ["n_jobs"], "pricing", ["oasis"])
    assert r["sign_p"] == 1.0 and r["wilcoxon_p"] == 1.0


def test_seed_lists():
    assert parse_seeds("0,1,2,1000-1003") == [0, 1, 2, 1000, 1001, 1002, 1003]
    assert parse_seeds("5, 5,4") == [5, 4]
    for bad in ("", "a", "3-1", "-2", "1-x"):
        with pytest.raises(ValueError):
            parse_seeds(bad)

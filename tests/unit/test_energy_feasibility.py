"""Criterion 3: no method's schedule breaks a deadline or battery constraint that some
feasible schedule meets (property test over generated instances, tight batteries and
deadlines included), and the repair is counted."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.energy.baselines import (
    AllLocal,
    AllOffload,
    Exhaustive,
    GreedyCost,
    RandomPolicy,
)
from agents.energy.config import InstanceDist
from agents.energy.droo import DrooPolicy, quantise
from agents.energy.feasibility import feasible_exists, repair
from agents.energy.instances import draw_instance
from agents.energy.model import all_decisions, build_tables, evaluate
from agents.energy.policy import DqnPolicy

# harsher than the defaults: batteries and deadlines that often rule options out
TIGHT = InstanceDist(devices=(1, 9), deadline_s=(0.2, 1.5), battery_j=(0.05, 2.0), battery_ratio=(0.05, 1.0),
                     distance_m=(50.0, 400.0))
DQN = DqnPolicy.load()
METHODS = [DQN, DrooPolicy(seed=0), AllLocal(), AllOffload(), RandomPolicy(1), GreedyCost(), Exhaustive()]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_no_schedule_breaks_a_constraint_some_schedule_meets(seed):
    tab = build_tables(draw_instance(np.random.default_rng(seed), TIGHT))
    any_feasible = bool(evaluate(tab, all_decisions(tab.inst.n)).all_feasible.any())
    assert feasible_exists(tab) == any_feasible          # the characterisation repair relies on
    for m in METHODS:
        d = m.decide(tab)
        out = evaluate(tab, d.x)
        if any_feasible:
            assert out.all_feasible[0], m.name
            # and the constraints themselves, recomputed from the outcome
            inst = tab.inst
            assert np.all(out.latency[0] <= inst.t_max * (1 + 1e-9)), m.name
            assert np.all(out.energy[0] <= inst.e_remain * (1 + 1e-9)), m.name
            assert np.all(out.power[0] <= inst.p_max * (1 + 1e-12)) and np.all(out.freq[0] <= inst.f_max * (1 + 1e-12))


def test_repair_keeps_feasible_vectors_and_counts_changes():
    rng = np.random.default_rng(7)
    for _ in range(30):
        tab = build_tables(draw_instance(rng, TIGHT))
        xs = all_decisions(tab.inst.n)
        ok = evaluate(tab, xs).all_feasible
        if ok.any() and not ok.all():
            good, bad = xs[np.flatnonzero(ok)[0]], xs[np.flatnonzero(~ok)[0]]
            assert (repair(tab, good)[0] == good).all() and repair(tab, good)[1] == 0
            fixed, changed = repair(tab, bad)
            assert changed == int((fixed != bad).sum()) > 0 and evaluate(tab, fixed).all_feasible[0]
            return
    pytest.fail("no instance with both feasible and infeasible schedules")


def test_droo_quantisation_is_order_preserving():
    x = np.array([0.9, 0.2, 0.55, 0.45])
    c = quantise(x, 4)
    assert c.shape == (4, 4) and (c[0] == (x > 0.5)).all()
    assert len({tuple(r) for r in c}) == 4
    order = np.argsort(-x)
    for row in c:                                    # each candidate offloads a top-ranked prefix
        k = int(row.sum())
        assert set(np.flatnonzero(row)) == set(order[:k])

"""Energy-aware offloading: closed-form resources vs numeric minimisers, model sanity, config."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar

from agents.config import ConfigError
from agents.energy.config import (
    SystemParams,
    energy_config_from_dict,
    load_energy_config,
)
from agents.energy.instances import draw_instance
from agents.energy.model import all_decisions, build_tables, evaluate
from agents.energy.resources import (
    local_cost,
    local_frequency,
    power_for_energy,
    power_stationary,
    rate,
)

pos = st.floats


@settings(max_examples=40, deadline=None)
@given(lt=pos(0.01, 1.0), cycles=pos(1e8, 1e9), t_max=pos(0.2, 3.0), f_max=pos(5e8, 2e9),
       kappa=pos(1e-28, 1e-27), e_remain=pos(0.05, 5.0))
def test_closed_form_frequency_matches_numeric_minimiser(lt, cycles, t_max, f_max, kappa, e_remain):
    le = 1.0 - lt
    f, ok = local_frequency(lt, le, cycles, t_max, f_max, kappa, e_remain)
    lo = cycles / t_max
    hi = min(f_max, np.sqrt(e_remain / (kappa * cycles)))
    if lo > hi:
        assert not ok
        return
    assert ok
    scale = 1e9
    res = minimize_scalar(lambda x: local_cost(x * scale, lt, le, cycles, kappa), bounds=(lo / scale, hi / scale),
                          method="bounded", options={"xatol": 1e-13, "maxiter": 2000})
    # the closed form is never worse than the numeric optimum, and they agree to 1e-6
    assert local_cost(f, lt, le, cycles, kappa) <= res.fun * (1 + 1e-12)
    assert abs(float(f) - res.x * scale) <= 1e-6 * float(f)


@settings(max_examples=40, deadline=None)
@given(lt=pos(0.01, 0.99), g=pos(1e2, 1e6), p_max=pos(0.05, 1.0))
def test_closed_form_power_matches_numeric_minimiser(lt, g, p_max):
    le = 1.0 - lt
    p = float(power_stationary(lt, le, g, p_max))
    obj = lambda q: (lt + le * q) / np.log2(1 + g * q)   # noqa: E731
    res = minimize_scalar(obj, bounds=(1e-9, 10 * p + 1.0), method="bounded",
                          options={"xatol": 1e-14, "maxiter": 2000})
    assert abs(p - res.x) <= 1e-6 * p
    assert obj(p) <= res.fun * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(bits=pos(8e5, 8e6), w=pos(1e6, 1e7), g=pos(1e2, 1e6), p_max=pos(0.05, 1.0), e=pos(1e-3, 1.0))
def test_power_for_energy_is_the_battery_boundary(bits, w, g, p_max, e):
    p = float(power_for_energy(bits, w, g, p_max, e))
    energy = lambda q: q * bits / rate(w, g, q)   # noqa: E731
    if p < 0:
        assert bits * np.log(2) / (w * g) > e * (1 - 1e-9)
        return
    assert energy(p) <= e * (1 + 1e-6)
    if p < p_max:
        root = brentq(lambda q: energy(q) - e, 1e-12, p_max, xtol=1e-15)
        assert abs(p - root) <= 1e-6 * root


def test_more_offloaders_on_an_ap_slow_each_one_down():
    inst = draw_instance(np.random.default_rng(3), n=8)
    tab = build_tables(inst)
    # own transmission gets slower with more devices on the AP (K fixed), edge share with K
    assert np.all(np.diff(tab.t_off[:, 1:5, 8], axis=1) > 0)
    assert np.all(np.diff(tab.t_off[:, 1, 1:], axis=1) > 0)


def test_evaluate_matches_a_hand_computation():
    inst = draw_instance(np.random.default_rng(5), n=4)
    sysp = inst.system
    tab = build_tables(inst)
    x = np.array([1, 0, 1, 1], bool)                   # APs 0,1,0,1: k = 2 on AP0, 1 on AP1; K = 3
    out = evaluate(tab, x)
    i, k, big_k = 0, 2, 3
    w = sysp.bandwidth_hz / k
    g = inst.gain[i] / (sysp.noise_w_hz * w)
    p = out.power[0, i]
    bits = 8 * inst.input_bytes[i]
    t = bits / (w * np.log2(1 + g * p)) + bits * k / sysp.ap_edge_bps + inst.cycles[i] * big_k / sysp.edge_hz
    assert out.latency[0, i] == pytest.approx(t, rel=1e-12)
    assert out.energy[0, i] == pytest.approx(p * bits / (w * np.log2(1 + g * p)), rel=1e-12)
    lt, le = inst.weights()
    f = out.freq[0, 1]
    assert out.cost[0, 1] == pytest.approx(lt[1] * inst.cycles[1] / f + le[1] * inst.kappa[1] * f * f * inst.cycles[1])
    assert 0 < p <= inst.p_max[i] and f <= inst.f_max[1]


def test_low_battery_weighs_energy_more():
    inst = draw_instance(np.random.default_rng(1), n=3)
    lt_full, le_full = inst.with_battery_ratio(1.0).weights()
    lt_low, le_low = inst.with_battery_ratio(0.1).weights()
    assert np.all(le_low > le_full) and np.allclose(lt_low + le_low, 1.0)
    assert np.allclose(lt_full, inst.system.lambda_t)


def test_all_decisions_enumerates_every_vector():
    xs = all_decisions(4)
    assert xs.shape == (16, 4) and len({tuple(r) for r in xs}) == 16


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        energy_config_from_dict({"system": {"edge_ghz": 10, "bogus": 1}})
    with pytest.raises(ConfigError, match="lambda_t"):
        SystemParams(lambda_t=1.5)
    with pytest.raises(ConfigError, match="low"):
        energy_config_from_dict({"instances": {"cycles_g": [2, 1]}})
    p = tmp_path / "e.yaml"
    p.write_text("system:\n  edge_ghz: 20\ninstances:\n  devices: [4, 6]\ntrain:\n  episodes: 10\n")
    cfg = load_energy_config(p)
    assert cfg.system.edge_hz == 20e9 and cfg.instances.devices == (4, 6) and cfg.train.episodes == 10


def test_shipped_config_is_the_defaults():
    from pathlib import Path

    from agents.energy.config import EnergyConfig
    path = Path(__file__).resolve().parents[2] / "configs" / "energy.yaml"
    assert load_energy_config(path) == EnergyConfig()

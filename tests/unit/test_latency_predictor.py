"""Latency predictor on synthetic profiles with a known cost law (no wall-clock asserts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.latency_predictor import (FALLBACK, LatencyPredictor, NotFittedError,
                                      evaluate_predictor, fit_share_exponent,
                                      format_evaluation)
from models.profile import validate_profile

# core-seconds = c0 + c_flops*flops + c_params*params + c_in*in_bytes + c_out*out_bytes
LAW = {
    "conv": (2e-5, 2e-11, 0.0, 1e-10, 0.0),
    "pool": (1e-5, 0.0, 0.0, 3e-10, 1e-10),
    "fc": (1e-5, 0.0, 2.5e-10, 0.0, 0.0),
    "block": (3e-5, 2.2e-11, 1e-11, 0.0, 2e-10),
}


def law_time(kind, flops, params, in_b, out_b, share, alpha=1.0):
    c = LAW[kind]
    return (c[0] + c[1] * flops + c[2] * params + c[3] * in_b + c[4] * out_b) * \
        min(share, 1.0) ** -alpha


def synthetic_profile(model, host_class, share, seed, n_seg=12, alpha=1.0, noise=0.0):
    """A schema-valid profile whose times follow LAW exactly (times optional noise)."""
    rng = np.random.default_rng(seed)
    kinds = list(LAW)
    shapes = [[3, 224, 224]] + [[int(rng.integers(8, 512)), int(rng.integers(1, 57)),
                                  int(rng.integers(1, 57))] for _ in range(n_seg - 1)] + [[1000]]
    points = [{"index": k, "name": "input" if k == 0 else ("output" if k == n_seg else f"s{k}"),
               "out_bytes": 4 * math.prod(sh), "shape": sh} for k, sh in enumerate(shapes)]
    segs = []
    for i in range(1, n_seg + 1):
        kind = kinds[(i + seed) % len(kinds)]
        flops = int(rng.integers(1e5, 2e9))
        params = int(rng.integers(0, 2e7))
        in_b, out_b = points[i - 1]["out_bytes"], points[i]["out_bytes"]
        t = law_time(kind, flops, params, in_b, out_b, share, alpha)
        t *= 1.0 + noise * rng.standard_normal()
        segs.append({"index": i, "name": points[i]["name"] if i < n_seg else f"s{i}",
                     "kind": kind, "flops": flops, "params": params, "in_bytes": in_b,
                     "out_bytes": out_b, "median_s": t, "p90_s": t * 1.1, "repeats": 5})
    total = sum(s["median_s"] for s in segs)
    prof = {"schema": 1, "model": model, "host_class": host_class, "cpu_share": share,
            "torch_threads": 1, "points": points, "segments": segs,
            "total_median_s": total, "measured_full_s": total,
            "created": "2026-11-22T01:00:00Z", "machine": "synthetic"}
    validate_profile(prof)
    return prof


SHARES = {"cloud": 1.0, "edge-large": 0.5, "edge-small": 0.2}


def synthetic_set(alpha=1.0, noise=0.0):
    return [synthetic_profile(f"m{j}", hc, share, seed=j, alpha=alpha, noise=noise)
            for j in range(4) for hc, share in SHARES.items()]


@pytest.fixture(scope="module")
def fitted():
    return LatencyPredictor().fit(synthetic_set())


def test_recovers_exact_law(fitted):
    for kind in LAW:
        for share in (1.0, 0.35, 0.2):
            args = (kind, 3e8, 4e6, 8e5, 2e5)
            assert fitted.predict_segment(*args, share) == pytest.approx(
                law_time(*args[:5], share), rel=1e-3)
    assert fitted.share_exponent == pytest.approx(1.0, abs=1e-9)


def test_unprofiled_share_and_share_cap(fitted):
    base = fitted.predict_segment("conv", 1e9, 0, 1e6, 1e6, 1.0)
    assert fitted.predict_segment("conv", 1e9, 0, 1e6, 1e6, 0.35) == pytest.approx(base / 0.35)
    # torch is single-threaded: more than one core is no faster than one
    assert fitted.predict_segment("conv", 1e9, 0, 1e6, 1e6, 2.0) == pytest.approx(base)


def test_share_exponent_is_fitted():
    pred = LatencyPredictor().fit(synthetic_set(alpha=1.2))
    assert pred.share_exponent == pytest.approx(1.2, rel=1e-6)
    assert fit_share_exponent([synthetic_profile("a", "cloud", 1.0, 0)]) == 1.0


def test_numpy_scalars_accepted(fitted):
    args = ("conv", 3e8, 4e6, 8e5, 2e5, 0.5)
    np_args = ("conv", np.int64(300_000_000), np.int64(4_000_000), np.float32(8e5),
               np.int32(200_000), np.float64(0.5))
    assert fitted.predict_segment(*np_args) == pytest.approx(fitted.predict_segment(*args))


def test_monotone_in_work(fitted):
    small = fitted.predict_segment("block", 1e8, 1e5, 1e5, 1e5, 0.5)
    big = fitted.predict_segment("block", 1e9, 1e6, 1e6, 1e6, 0.5)
    assert 0 < small < big


def test_unknown_kind_uses_pooled_model(fitted):
    assert "inception" not in fitted.weights and FALLBACK in fitted.weights
    t = fitted.predict_segment("inception", 5e8, 1e6, 1e6, 1e6, 1.0)
    assert t > 0 and math.isfinite(t)


def test_predict_model_profile_and_model(fitted):
    prof = synthetic_profile("m9", "edge-small", 0.2, seed=9)
    preds = fitted.predict_model(prof, 0.2)
    assert preds == pytest.approx([s["median_s"] for s in prof["segments"]], rel=1e-3)
    from models import build_model
    model = build_model("mobilenet_v2")
    per_seg = fitted.predict_model(model, 0.5)
    assert len(per_seg) == model.num_segments and all(t > 0 for t in per_seg)


def test_noisy_fit_is_close():
    pred = LatencyPredictor().fit(synthetic_set(noise=0.05))
    test = synthetic_profile("held", "edge-large", 0.5, seed=42)
    preds = pred.predict_model(test, 0.5)
    mape = np.mean([abs(p - s["median_s"]) / s["median_s"]
                    for p, s in zip(preds, test["segments"])])
    assert mape < 0.1


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "pred.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "sdncep-latency-predictor" and doc["version"] == 1
    again = LatencyPredictor.load(path)
    args = ("fc", 1e7, 1e7, 1e4, 4e3, 0.35)
    assert again.predict_segment(*args) == fitted.predict_segment(*args)
    assert again.share_exponent == fitted.share_exponent
    doc["features"] = ["flops"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="features"):
        LatencyPredictor.load(bad)


def test_errors(fitted):
    with pytest.raises(NotFittedError):
        LatencyPredictor().predict_segment("conv", 1, 1, 1, 1, 1.0)
    with pytest.raises(NotFittedError):
        LatencyPredictor().save("/nonexistent/never-written.json")
    for share in (0, -1, float("nan"), "1"):
        with pytest.raises(ValueError):
            fitted.predict_segment("conv", 1, 1, 1, 1, share)
    with pytest.raises(ValueError):
        fitted.predict_segment("conv", -1, 1, 1, 1, 1.0)
    with pytest.raises(ValueError):
        LatencyPredictor().fit([])


def test_evaluation_on_synthetic_set():
    ev = evaluate_predictor(synthetic_set())
    assert {r["model"] for r in ev["lomo"]} == {"m0", "m1", "m2", "m3"}
    assert {r["host_class"] for r in ev["loho"]} == set(SHARES)
    for row in ev["lomo"] + ev["loho"]:
        assert row["segment_mape"] < 1e-3 and abs(row["whole_error"]) < 1e-3
    text = format_evaluation(ev)
    assert "Leave-one-model-out" in text and "within 20%" in text


def test_chain_factor_scales_contiguous_predictions():
    profs = synthetic_set()
    for p in profs:
        p["measured_full_s"] = 1.1 * p["total_median_s"]
    pred = LatencyPredictor().fit(profs)
    assert pred.chain_factor == pytest.approx(1.1)
    test = profs[0]
    alone = pred.predict_model(test, test["cpu_share"], contiguous=False)
    chained = pred.predict_model(test, test["cpu_share"])
    assert alone == pytest.approx([s["median_s"] for s in test["segments"]], rel=1e-3)
    assert sum(chained) == pytest.approx(test["measured_full_s"], rel=1e-3)
    assert LatencyPredictor.from_dict(pred.to_dict()).chain_factor == pred.chain_factor


def test_chain_factor_per_model_with_pooled_fallback():
    profs = synthetic_set()
    for p in profs:
        p["measured_full_s"] = (1.3 if p["model"] == "m0" else 1.0) * p["total_median_s"]
    pred = LatencyPredictor().fit(profs)
    assert pred.chain_factor_for("m0") == pytest.approx(1.3)
    assert pred.chain_factor_for("m1") == pytest.approx(1.0)
    assert pred.chain_factor_for("never-seen") == pred.chain_factor == pytest.approx(1.0)
    again = LatencyPredictor.from_dict(json.loads(json.dumps(pred.to_dict())))
    assert again.chain_factors == pred.chain_factors

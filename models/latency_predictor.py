"""Neurosurgeon-style per-segment latency predictor, portable across CPU shares.

Model (one per segment kind, plus a pooled fallback for kinds never seen in training)::

    t(kind, x, share) = (w0 + w1*flops + w2*params + w3*in_bytes + w4*out_bytes)
                        * min(share, 1) ** -alpha

* The bracket is the time on one full core ("core-seconds"); its weights are
  non-negative (a segment never gets faster with more work, and the fit extrapolates
  sanely) and are fitted by least squares on *relative* error (each row divided by its
  measured time), so small layers weigh as much as big ones, as MAPE does.
* The CPU share enters by scaling, not as a regression feature: under a CFS quota a
  single-threaded, compute-bound segment runs ``1/share`` slower. The exponent
  ``alpha`` (1 in theory) is fitted once from the whole-model times of the same model
  profiled at different shares, so it also absorbs cache effects of throttling; with
  profiles at one share only it stays 1. Shares above one core are capped at 1 because
  inference runs with one torch thread. This is what lets a plan be costed on a host
  class that was never profiled.
* Each kind's weights are finally rescaled so that the median ratio measured/predicted
  on the training rows is 1 (a relative-error least-squares fit under-predicts).
* Chain factor = median of ``measured_full_s / total_median_s``, per model (over its
  training profiles) and pooled (``chain_factor``, used for models not trained on):
  running segments back to back is a little slower than the sum of the segments timed
  one at a time (colder caches). :meth:`LatencyPredictor.predict_model` applies it by
  default so sums over consecutive segments predict an edge or cloud run;
  :meth:`LatencyPredictor.predict_segment` does not.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
from scipy.optimize import nnls

from models.profile import PathOrDict, load_profile

FEATURES = ("const", "flops", "params", "in_bytes", "out_bytes")
FORMAT = "sdncep-latency-predictor"
FORMAT_VERSION = 1
FALLBACK = "*"


class NotFittedError(RuntimeError):
    """The predictor was used before :meth:`LatencyPredictor.fit` or :meth:`load`."""


def _features(flops: float, params: float, in_bytes: float, out_bytes: float) -> np.ndarray:
    return np.array([1.0, flops, params, in_bytes, out_bytes], dtype=float)


def _is_real(v: Any) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _effective_share(cpu_share: float) -> float:
    if not _is_real(cpu_share) or not math.isfinite(cpu_share) or cpu_share <= 0:
        raise ValueError(f"cpu_share must be a number of cores > 0, got {cpu_share!r}")
    return min(float(cpu_share), 1.0)


def _fit_relative_nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative w minimising sum(((x @ w) - y) / y) ** 2), then rescaled so the
    median log-ratio measured/predicted is 0 (the relative-error loss alone is biased
    towards under-prediction)."""
    a = x / y[:, None]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    w, _ = nnls(a / scale, np.ones(len(y)), maxiter=50 * a.shape[1])
    w = w / scale
    pred = x @ w
    ok = pred > 0
    if ok.any():
        w = w * float(np.exp(np.median(np.log(y[ok] / pred[ok]))))
    return w


def fit_chain_factors(profiles: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median of measured_full_s / total_median_s per model and pooled (key ``"*"``):
    how much slower a contiguous run of segments is than the sum of the segments timed
    one by one (caches are colder)."""
    ratios: dict[str, list[float]] = defaultdict(list)
    for p in profiles:
        if p["total_median_s"] > 0 and p["measured_full_s"] > 0:
            r = p["measured_full_s"] / p["total_median_s"]
            ratios[p["model"]].append(r)
            ratios[FALLBACK].append(r)
    out = {k: float(np.median(v)) for k, v in ratios.items()}
    out.setdefault(FALLBACK, 1.0)
    return out


def fit_share_exponent(profiles: Sequence[Mapping[str, Any]]) -> float:
    """alpha in t(share) = t(1) * share**-alpha, by least squares on log whole-model
    times of the same model at different (capped) shares; 1.0 without such pairs."""
    by_model: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in profiles:
        if p["measured_full_s"] > 0:
            by_model[p["model"]].append((_effective_share(p["cpu_share"]), p["measured_full_s"]))
    num = den = 0.0
    for runs in by_model.values():
        for i, (s1, t1) in enumerate(runs):
            for s2, t2 in runs[i + 1:]:
                ls = math.log(s1 / s2)
                if ls != 0:
                    num += -math.log(t1 / t2) * ls
                    den += ls * ls
    return num / den if den > 0 else 1.0


class LatencyPredictor:
    """Per-kind linear latency regressions on (FLOPs, params, in/out bytes), scaled by
    the CPU share. See the module docstring for the model."""

    def __init__(self) -> None:
        self.weights: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.share_exponent: float = 1.0
        self.chain_factors: dict[str, float] = {FALLBACK: 1.0}
        self.trained_on: list[str] = []

    # ----------------------------------------------------------------- fitting
    def fit(self, profiles: Iterable[PathOrDict]) -> "LatencyPredictor":
        """Fit on profiles (paths or dicts, each validated by ``load_profile``)."""
        loaded = [load_profile(p) for p in profiles]
        if not loaded:
            raise ValueError("fit needs at least one profile")
        alpha = fit_share_exponent(loaded)
        rows: dict[str, list[tuple[np.ndarray, float]]] = defaultdict(list)
        for p in loaded:
            share = _effective_share(p["cpu_share"])
            for s in p["segments"]:
                if s["median_s"] <= 0:
                    continue
                core_s = s["median_s"] * share ** alpha
                x = _features(s["flops"], s["params"], s["in_bytes"], s["out_bytes"])
                rows[s["kind"]].append((x, core_s))
                rows[FALLBACK].append((x, core_s))
        if not rows:
            raise ValueError("no segment with a positive median time to fit on")
        weights, counts = {}, {}
        for kind, data in rows.items():
            x = np.stack([r[0] for r in data])
            y = np.array([r[1] for r in data])
            weights[kind] = _fit_relative_nnls(x, y)
            counts[kind] = len(data)
        self.weights, self.counts, self.share_exponent = weights, counts, float(alpha)
        self.chain_factors = fit_chain_factors(loaded)
        self.trained_on = sorted({f"{p['model']}@{p['host_class']}" for p in loaded})
        return self

    # ----------------------------------------------------------------- prediction
    def _check_fitted(self) -> None:
        if FALLBACK not in self.weights:
            raise NotFittedError("LatencyPredictor is not fitted; call fit() or load()")

    def predict_segment(self, kind: str, flops: float, params: float, in_bytes: float,
                        out_bytes: float, cpu_share: float) -> float:
        """Predicted seconds of one segment on a host with ``cpu_share`` cores.
        A kind never seen in training uses the model pooled over all kinds."""
        self._check_fitted()
        for name, v in (("flops", flops), ("params", params), ("in_bytes", in_bytes),
                        ("out_bytes", out_bytes)):
            if not (_is_real(v) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        share = _effective_share(cpu_share)
        w = self.weights.get(kind, self.weights[FALLBACK])
        core_s = float(_features(flops, params, in_bytes, out_bytes) @ w)
        return core_s * share ** -self.share_exponent

    def predict_model(self, model_or_profile: Any, cpu_share: float,
                      contiguous: bool = True) -> list[float]:
        """Per-segment predicted seconds (segment 1..m) of a ``PartitionedModel`` or a
        profile (path or dict; only its static fields are used).

        With ``contiguous`` (default) each value is multiplied by the model's chain
        factor (:meth:`chain_factor_for`),
        so the sum over any run of consecutive segments predicts running them back to
        back (as an edge or cloud host does); without it, each value predicts the
        segment timed on its own like ``predict_segment``."""
        if hasattr(model_or_profile, "segment_flops"):
            m = model_or_profile
            name = m.name
            rows = [(m.segment_kinds[i - 1], m.segment_flops(i), m.segment_params(i),
                     m.output_bytes(i - 1), m.output_bytes(i))
                    for i in range(1, m.num_segments + 1)]
        else:
            prof = load_profile(model_or_profile)
            name = prof["model"]
            rows = [(s["kind"], s["flops"], s["params"], s["in_bytes"], s["out_bytes"])
                    for s in prof["segments"]]
        factor = self.chain_factor_for(name) if contiguous else 1.0
        return [factor * self.predict_segment(*row, cpu_share) for row in rows]

    @property
    def chain_factor(self) -> float:
        """Pooled chain factor (for models the predictor was not trained on)."""
        return self.chain_factors[FALLBACK]

    def chain_factor_for(self, model_name: str) -> float:
        return self.chain_factors.get(model_name, self.chain_factors[FALLBACK])

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "features": list(FEATURES),
            "share_exponent": self.share_exponent,
            "chain_factors": dict(sorted(self.chain_factors.items())),
            "trained_on": self.trained_on,
            "kinds": {k: {"weights": [float(v) for v in w], "samples": self.counts[k]}
                      for k, w in sorted(self.weights.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatencyPredictor":
        if d.get("format") != FORMAT or d.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} document")
        if list(d.get("features", [])) != list(FEATURES):
            raise ValueError(f"features must be {list(FEATURES)}, got {d.get('features')}")
        kinds = d.get("kinds")
        if not isinstance(kinds, Mapping) or FALLBACK not in kinds:
            raise ValueError(f"'kinds' must be an object with a {FALLBACK!r} entry")
        self = cls()
        for kind, entry in kinds.items():
            w = np.array(entry["weights"], dtype=float)
            if w.shape != (len(FEATURES),) or not np.all(np.isfinite(w)):
                raise ValueError(f"kinds[{kind!r}].weights must be {len(FEATURES)} numbers")
            self.weights[kind] = w
            self.counts[kind] = int(entry.get("samples", 0))
        self.share_exponent = float(d["share_exponent"])
        factors = d.get("chain_factors")
        if not isinstance(factors, Mapping) or FALLBACK not in factors:
            raise ValueError(f"'chain_factors' must be an object with a {FALLBACK!r} entry")
        self.chain_factors = {str(k): float(v) for k, v in factors.items()}
        self.trained_on = list(d.get("trained_on", []))
        return self

    def save(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "LatencyPredictor":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


# --------------------------------------------------------------------- evaluation
def _ape(pred: float, meas: float) -> float:
    return abs(pred - meas) / meas


def evaluate_predictor(profiles: Sequence[PathOrDict]) -> dict[str, Any]:
    """Held-out accuracy on measured profiles.

    * ``lomo``: leave-one-model-out. For each model, fit on the other models' profiles
      (all host classes) and predict the held-out model on every host class: per-segment
      MAPE and whole-model error (sum of predicted segments vs ``measured_full_s``).
    * ``loho``: leave-one-host-class-out. For each host class, fit on the other host
      classes' profiles (all models) and predict it: tests the CPU-share scaling.

    Returns ``{"lomo": [row...], "loho": [row...]}``, rows with keys model,
    host_class, cpu_share, segment_mape, predicted_s, measured_s, whole_error.
    """
    loaded = [load_profile(p) for p in profiles]
    out: dict[str, Any] = {"lomo": [], "loho": []}
    for mode, key in (("lomo", "model"), ("loho", "host_class")):
        groups = sorted({p[key] for p in loaded})
        for g in groups:
            train = [p for p in loaded if p[key] != g]
            test = [p for p in loaded if p[key] == g]
            if not train:
                continue
            pred = LatencyPredictor().fit(train)
            for p in sorted(test, key=lambda q: (q["model"], -q["cpu_share"])):
                seg_pred = pred.predict_model(p, p["cpu_share"], contiguous=False)
                apes = [_ape(sp, s["median_s"]) for sp, s in zip(seg_pred, p["segments"])
                        if s["median_s"] > 0]
                total = sum(pred.predict_model(p, p["cpu_share"]))
                out[mode].append({
                    "model": p["model"], "host_class": p["host_class"],
                    "cpu_share": p["cpu_share"],
                    "segment_mape": float(np.mean(apes)) if apes else float("nan"),
                    "predicted_s": total, "measured_s": p["measured_full_s"],
                    "whole_error": (total - p["measured_full_s"]) / p["measured_full_s"],
                })
    return out


def format_evaluation(ev: Mapping[str, Any]) -> str:
    titles = {"lomo": "Leave-one-model-out (fit on the other models, all host classes)",
              "loho": "Leave-one-host-class-out (fit on the other host classes, all models)"}
    lines = []
    for mode in ("lomo", "loho"):
        rows = ev[mode]
        lines += [titles[mode],
                  f"{'model':<13} {'host class':<12} {'share':>5} {'seg MAPE':>9} "
                  f"{'pred ms':>9} {'meas ms':>9} {'whole err':>9}"]
        for r in rows:
            lines.append(f"{r['model']:<13} {r['host_class']:<12} {r['cpu_share']:>5.2f} "
                         f"{r['segment_mape'] * 100:>8.1f}% {r['predicted_s'] * 1e3:>9.2f} "
                         f"{r['measured_s'] * 1e3:>9.2f} {r['whole_error'] * 100:>+8.1f}%")
        if rows:
            mape = np.mean([r["segment_mape"] for r in rows])
            worst = max(abs(r["whole_error"]) for r in rows)
            within = sum(abs(r["whole_error"]) <= 0.2 for r in rows)
            lines.append(f"mean segment MAPE {mape * 100:.1f}%, whole-model |error| max "
                         f"{worst * 100:.1f}%, {within}/{len(rows)} within 20%")
        lines.append("")
    return "\n".join(lines)

"""Task-complexity predictor q(x) in [0, 1] from cheap image features.

Formula (1): F(x) = f0(x) (cloud) if q(x) >= delta, else f1(x) (edge/collaborative).

Features (all O(pixels), on a <= 48 px strided grey version of the image): histogram entropy,
edge density and mean gradient (finite-difference Sobel-like), zlib compression ratio,
intensity std/mean, ink fraction, Laplacian energy.  The model is a logistic regression
on standardised features and their pairwise products, trained against a *real*
hardness signal: on scikit-learn's labelled ``load_digits`` a small classifier is fitted
on one split, and an image of another split is "hard" if that classifier gets it wrong
or its top-1/top-2 probability margin is in the lowest quartile.  The held-out AUC is
stored with the model.  Saved as JSON (no pickle); inference is pure numpy.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import check_delta

FEATURES = ("entropy", "edge_density", "grad_mean", "zlib_ratio", "std", "mean", "ink", "laplacian",
            "asym_lr", "asym_ud", "spread_x", "spread_y")


def _grey(img: np.ndarray) -> np.ndarray:
    """Grey, strided to <= 48 px on the long side, min-max normalised to [0, 1]."""
    x = np.asarray(img)
    if x.ndim == 3 and x.shape[2] not in (1, 3, 4):   # CHW -> HWC
        x = np.moveaxis(x, 0, 2)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D or 3-D image, got shape {np.shape(img)}")
    s0 = max(1, -(-max(x.shape[:2]) // 48))
    x = x[::s0, ::s0].astype(np.float32)
    if x.ndim == 3:
        x = x.mean(axis=2)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) * (1.0 / (hi - lo)) if hi > lo else np.zeros_like(x)


def image_features(img: np.ndarray) -> np.ndarray:
    x = _grey(img)
    h, w = x.shape
    n = x.size
    hist = np.bincount(np.minimum((x * 32).astype(np.int64), 31).ravel(), minlength=32)
    p = hist[hist > 0] / n
    entropy = float(-(p * np.log2(p)).sum() / 5.0)
    if h >= 3 and w >= 3:
        gx = (x[1:-1, 2:] - x[1:-1, :-2]) * 0.5
        gy = (x[2:, 1:-1] - x[:-2, 1:-1]) * 0.5
        g = np.sqrt(gx * gx + gy * gy)
        edge_density, grad_mean = float((g > 0.1).mean()), float(g.mean())
        lap = float(np.abs(x[2:, 1:-1] + x[:-2, 1:-1] + x[1:-1, 2:] + x[1:-1, :-2] - 4 * x[1:-1, 1:-1]).mean())
    else:
        edge_density = grad_mean = lap = 0.0
    u8 = (x * 255).astype(np.uint8).tobytes()
    zr = len(zlib.compress(u8, 6)) / max(len(u8), 1)
    mean = float(x.mean())
    tot = mean * n + 1e-9
    cols, rows = x.sum(axis=0), x.sum(axis=1)
    ix, iy = np.arange(w), np.arange(h)
    cx, cy = float(cols @ ix) / tot, float(rows @ iy) / tot
    spread_x = math.sqrt(max(float(cols @ (ix - cx) ** 2) / tot, 0.0)) / w
    spread_y = math.sqrt(max(float(rows @ (iy - cy) ** 2) / tot, 0.0)) / h
    return np.array([entropy, edge_density, grad_mean, zr, float(x.std()), mean,
                     float((x > 0.5).mean()), lap,
                     float(np.abs(x - x[:, ::-1]).mean()), float(np.abs(x - x[::-1]).mean()),
                     spread_x, spread_y], dtype=np.float64)


def _expand(z: np.ndarray) -> np.ndarray:
    """[z, z_i * z_j for i <= j] for a batch of standardised feature rows."""
    n = z.shape[1]
    iu = np.triu_indices(n)
    return np.concatenate([z, (z[:, :, None] * z[:, None, :])[:, iu[0], iu[1]]], axis=1)


@dataclass
class ComplexityPredictor:
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    delta: float = 0.6
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_delta(self.delta)

    def score_features(self, f: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(f) - self.mean) / self.std
        s = _expand(z) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(s, -30, 30)))

    def predict(self, img: np.ndarray) -> float:
        """q(x) in [0, 1]."""
        return float(self.score_features(image_features(img))[0])

    def route(self, img: np.ndarray) -> str:
        """Formula (1): 'cloud' (f0) if q(x) >= delta else 'edge' (f1)."""
        return "cloud" if self.predict(img) >= self.delta else "edge"

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "features": list(FEATURES), "expand": "poly2",
                "mean": self.mean.tolist(), "std": self.std.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "delta": self.delta, "meta": self.meta or {}}

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "ComplexityPredictor":
        d = json.loads(Path(path).read_text())
        if d.get("schema") != 1 or d.get("features") != list(FEATURES) or d.get("expand") != "poly2":
            raise ValueError(f"{path}: not a schema-1 complexity predictor with features {FEATURES}")
        return cls(np.array(d["mean"]), np.array(d["std"]), np.array(d["coef"]), float(d["intercept"]),
                   float(d["delta"]), d.get("meta"))


def digits_hardness(seed: int = 0, hard_quantile: float = 0.25):
    """Images, hardness labels and split masks from ``load_digits``.

    Split A (30%) trains the small classifier (logistic regression on pixels); on the
    rest, hard = misclassified or margin in the lowest ``hard_quantile``.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(d.target))
    a, rest = idx[: int(0.3 * len(idx))], idx[int(0.3 * len(idx)):]
    clf = LogisticRegression(max_iter=2000, C=0.05).fit(d.data[a], d.target[a])
    pr = clf.predict_proba(d.data[rest])
    top = np.sort(pr, axis=1)
    margin = top[:, -1] - top[:, -2]
    wrong = clf.predict(d.data[rest]) != d.target[rest]
    hard = wrong | (margin <= np.quantile(margin, hard_quantile))
    return d.images[rest], hard.astype(int), rng


def train_predictor(seed: int = 0, delta: float = 0.6, c: float = 0.01) -> ComplexityPredictor:
    """Fit on half of the non-classifier images, report AUC on the other half."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    imgs, hard, rng = digits_hardness(seed)
    f = np.array([image_features(x) for x in imgs])
    perm = rng.permutation(len(f))
    tr, te = perm[: len(f) // 2], perm[len(f) // 2:]
    mean, std = f[tr].mean(0), f[tr].std(0) + 1e-9
    ztr = _expand((f[tr] - mean) / std)
    lr = LogisticRegression(max_iter=5000, C=c).fit(ztr, hard[tr])
    pred = ComplexityPredictor(mean, std, lr.coef_[0].copy(), float(lr.intercept_[0]), delta)
    q_te = pred.score_features(f[te])
    auc = float(roc_auc_score(hard[te], q_te))
    auc_tr = float(roc_auc_score(hard[tr], pred.score_features(f[tr])))
    pred.meta = {"dataset": "sklearn load_digits", "hardness": "LogReg(pixels) wrong or margin in lowest 25%",
                 "n_train": int(len(tr)), "n_test": int(len(te)), "hard_rate": float(hard.mean()),
                 "auc_holdout": auc, "auc_train": auc_tr, "seed": seed,
                 "frac_q_ge_delta_holdout": float((q_te >= delta).mean()),
                 "q_holdout": [round(float(v), 4) for v in q_te]}
    return pred

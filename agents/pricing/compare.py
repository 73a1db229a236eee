"""Paired comparison of one method's welfare against the others over workload seeds.

A claim "the mechanism is above baseline b" is about the per-seed differences on the same
worlds, not about one seed or two means: for every point (e.g. a number of jobs) this gives
the mean difference and the mean relative difference, how many seeds it won, a two-sided
sign test (exact binomial) and a Wilcoxon signed-rank test of the differences.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def paired_rows(rows: list[dict], keys: list[str], subject: str, others, metric: str = "welfare") -> list[dict]:
    """One row per (point, other method): ``subject`` minus ``other`` on the seeds both ran."""
    by = {}
    for r in rows:
        by.setdefault(tuple(r[k] for k in keys), {}).setdefault(r["method"], {})[r["seed"]] = r[metric]
    out = []
    for point, ms in by.items():
        mine = ms.get(subject, {})
        for other in others:
            theirs = ms.get(other, {})
            seeds = sorted(set(mine) & set(theirs))
            if not seeds or other == subject:
                continue
            a = np.array([mine[s] for s in seeds], dtype=float)
            b = np.array([theirs[s] for s in seeds], dtype=float)
            out.append({**dict(zip(keys, point)), "versus": other, "seeds": len(seeds),
                        **paired_stats(a, b)})
    return out


def paired_stats(a: np.ndarray, b: np.ndarray) -> dict:
    """Differences a - b of paired samples: mean, mean relative (%), wins/ties, p-values."""
    d = a - b
    rel = 100.0 * d / np.where(b != 0, np.abs(b), 1.0)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    sign_p = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    nonzero = d[d != 0]
    wilcoxon_p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else 1.0
    return {"mean_diff": round(float(d.mean()), 2), "mean_rel_pct": round(float(rel.mean()), 3),
            "min_rel_pct": round(float(rel.min()), 3), "max_rel_pct": round(float(rel.max()), 3),
            "wins": wins, "losses": losses, "sign_p": round(float(sign_p), 5),
            "wilcoxon_p": round(wilcoxon_p, 5)}


def parse_seeds(text: str) -> list[int]:
    """'0,1,2,1000-1019' -> [0, 1, 2, 1000, ..., 1019]; ValueError on anything else."""
    seeds = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"bad seed {part!r}: expected N or N-M with N, M >= 0")
        lo_i, hi_i = int(lo), int(hi) if sep else int(lo)
        if hi_i < lo_i:
            raise ValueError(f"bad seed range {part!r}: end before start")
        seeds.extend(range(lo_i, hi_i + 1))
    if not seeds:
        raise ValueError("no seeds given")
    return list(dict.fromkeys(seeds))

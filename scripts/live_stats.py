"""SDN-CEP against another method task by task, in one cell of a live run.

The runner gives every method of a cell the same arrivals (round, device, sequence
number, time), so each SDN-CEP task has a twin under the other method. Which median
is lower says little where the two chose the same plans; the paired differences
do: a one-sided Wilcoxon signed-rank test (scipy) of "SDN-CEP is faster", and a
bootstrap confidence interval of the median difference.
"""

import numpy as np
from scipy import stats

ALPHA = 0.05
DIFFERENT_SHARE = 0.25   # a comparison counts where at least this share of twins got another plan


def twins(rows_a, rows_b):
    """(a, b) pairs of finished tasks with the same (round, device, seq)."""
    def key(r):
        return (r.get("round"), r.get("device"), r.get("seq"))
    b = {key(r): r for r in rows_b if r["status"] == "ok"}
    return [(r, b[key(r)]) for r in sorted(rows_a, key=key) if r["status"] == "ok" and key(r) in b]


def paired(rows_ours, rows_theirs, seed=0):
    """Twins, how many got the same plan, the median difference (ours - theirs) with its
    95% bootstrap interval, and the one-sided Wilcoxon p-value of 'ours is faster'."""
    pairs = twins(rows_ours, rows_theirs)
    if not pairs:
        return None
    diffs = np.array([a["e2e_s"] - b["e2e_s"] for a, b in pairs])
    same = sum(a.get("plan") == b.get("plan") for a, b in pairs)
    low, high = median_interval(diffs, seed)
    return {"pairs": len(pairs), "same_plan": same, "different_share": 1 - same / len(pairs),
            "median_diff_s": float(np.median(diffs)), "ci_low_s": low, "ci_high_s": high,
            "wilcoxon_p": wilcoxon_less(diffs)}


def wilcoxon_less(diffs):
    """One-sided p of 'the differences are centred below 0' (zeros dropped; 1 if all are 0)."""
    diffs = np.asarray(diffs, dtype=float)
    if not np.any(diffs != 0):
        return 1.0
    return float(stats.wilcoxon(diffs, alternative="less", zero_method="wilcox").pvalue)


def median_interval(diffs, seed=0, confidence=0.95):
    """Percentile bootstrap interval of the median of ``diffs``."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) < 2 or np.all(diffs == diffs[0]):
        return float(diffs[0]), float(diffs[0])
    result = stats.bootstrap((diffs,), np.median, confidence_level=confidence, n_resamples=2000,
                             method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def judged(pair):
    """Whether a comparison counts (enough twins got another plan), and if so whether SDN-CEP won."""
    if pair is None or pair["different_share"] < DIFFERENT_SHARE:
        return None
    return pair["wilcoxon_p"] < ALPHA

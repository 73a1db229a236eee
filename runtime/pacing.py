"""Paced compute emulation: a node computes as fast as its host class says, whatever
machine the testbed runs on.

A paced worker runs the real layers of a hop (the tensor it sends on is real) and
measures how long that took, then holds the result until the emulated node's time
for those layers has passed: the profiled time of those segments on that node's
speed (:class:`agents.calibration.ProfileStore`, the same numbers the planner and
the simulator cost plans with), optionally jittered from the profile's measured
spread. The worker computes one task at a time in arrival order, so the hold
queues the tasks behind it as a slower node would.

A hop whose real compute took longer than its emulated time is an *overrun*: the
machine could not keep up with the emulation (too many nodes computing at once on
too few cores). :class:`PaceStats` counts them and by how much; the worker reports
them in its load and heartbeats, and the live benchmark marks a run with too many
as "emulation overloaded". Pacing is per hop (a node's whole range of layers for a
task), not per layer: holding after every sub-millisecond layer adds one wake-up
error per layer.
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass

import numpy as np

from models.host_classes import HOST_CLASSES

Z90 = 1.2815515655446004  # the standard normal's 90th percentile


class PacingError(ValueError):
    """A speed that is neither a host class nor a positive number of cores."""


def parse_speed(text) -> float:
    """A node's speed in cores of the profiling machine: a host class name or a number."""
    if isinstance(text, str) and text in HOST_CLASSES:
        return float(HOST_CLASSES[text])
    try:
        speed = float(text)
    except (TypeError, ValueError):
        raise PacingError(f"speed must be a host class ({', '.join(HOST_CLASSES)}) or a number of cores, "
                          f"got {text!r}") from None
    if not (math.isfinite(speed) and 0.01 <= speed <= 64):
        raise PacingError(f"speed must be in 0.01..64 cores, got {speed}")
    return speed


class Pacer:
    """The emulated compute time of a hop on a node of ``speed`` cores.

    With ``jitter``, each segment's time is drawn from a log-normal with the
    profile's median and 90th percentile (seeded: the same sequence of hops gets the
    same times); without, it is the median, as the planner predicts.
    """

    def __init__(self, speed: float, store=None, jitter: bool = False, seed: int = 0):
        from agents.calibration import ProfileStore  # the profiles the planner costs with
        self.speed = parse_speed(speed)
        self.store = store or ProfileStore()
        self.jitter = jitter
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def emulated_s(self, model: str, start: int, end: int) -> float:
        segments = self.store.get(model, self.speed).segments[start:end]
        median = np.array([s.median_s for s in segments])
        if not self.jitter:
            return float(median.sum())
        sigma = np.log(np.maximum([s.p90_s for s in segments], median) / np.maximum(median, 1e-12)) / Z90
        with self._lock:
            draws = self._rng.standard_normal(len(segments))
        return float((median * np.exp(sigma * draws)).sum())

    def demand(self, model: str) -> float:
        """Cores this node keeps busy while it computes ``model`` without pause: real
        time (the profile at one core) over emulated time."""
        return float(self.store.reference(model).seg_times.sum() / self.store.seg_times(model, self.speed).sum())


@dataclass
class PaceStats:
    """What a paced worker measured of its own fidelity since it started."""
    paced_hops: int = 0
    overruns: int = 0
    overrun_s: float = 0.0        # by how much the overruns exceeded their emulated times, in all
    worst_overrun_s: float = 0.0
    real_s: float = 0.0           # real compute time of all hops
    emulated_s: float = 0.0       # emulated time of all hops
    tcp_retransmits: int = 0      # segments the kernel resent on the worker's outgoing connections

    def record(self, real_s: float, emulated_s: float) -> None:
        self.paced_hops += 1
        self.real_s += real_s
        self.emulated_s += emulated_s
        if real_s > emulated_s:
            self.overruns += 1
            self.overrun_s += real_s - emulated_s
            self.worst_overrun_s = max(self.worst_overrun_s, real_s - emulated_s)

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

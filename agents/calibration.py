"""Per-layer profiles: load the JSON written by the profiler, or synthesise one.

A profile describes one model on one host class (schema 1, see docs/decision_core.md):
``points`` (m+1 entries, point 0 = raw input, point m = output) and ``segments``
(m entries; segment i runs the layers between point i-1 and point i) with measured
median times.  Everything the decision core knows about a model comes from here.

Until real profiles exist under ``profiles/<host_class>/<model>.json``,
:func:`synthetic_profile` builds ones with the same structure from approximate
per-layer FLOPs / tensor sizes of the torchvision models and an assumed effective
compute rate.  :class:`ProfileStore` prefers real files and falls back to synthetic
ones, scaling time by ``1/cpu_share`` between host classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from models import profile as models_profile
from models.host_classes import HOST_CLASSES  # noqa: F401  (re-exported: one source of truth)
from models.zoo import MODEL_NAMES

MODELS: tuple[str, ...] = MODEL_NAMES
KINDS: tuple[str, ...] = ("conv", "pool", "block", "fc", "other")

#: Effective MAC/s of one full core for the synthetic profiles (PyTorch fp32 on a
#: small CPU core).  Only used until measured profiles exist.
SYNTH_MACS_PER_CORE_S = 2.5e10
#: Fixed per-segment overhead (framework dispatch) at one full core, seconds.
SYNTH_OVERHEAD_S = 2e-4
#: ``profiles/`` at the repository root (not the working directory).
DEFAULT_PROFILES = Path(__file__).resolve().parents[1] / "profiles"


@dataclass(frozen=True)
class Point:
    index: int
    name: str
    out_bytes: int
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Segment:
    index: int
    name: str
    kind: str
    flops: float
    params: int
    in_bytes: int
    out_bytes: int
    median_s: float
    p90_s: float
    repeats: int = 0


@dataclass(frozen=True)
class Profile:
    model: str
    host_class: str
    cpu_share: float
    points: tuple[Point, ...]
    segments: tuple[Segment, ...]
    torch_threads: int = 1
    measured_full_s: float | None = None

    def __post_init__(self) -> None:
        if len(self.points) != len(self.segments) + 1:
            raise ValueError(
                f"profile {self.model}/{self.host_class}: need m+1 points for m segments, "
                f"got {len(self.points)} points and {len(self.segments)} segments")
        if self.cpu_share <= 0:
            raise ValueError(f"profile {self.model}: cpu_share must be > 0, got {self.cpu_share}")
        for i, p in enumerate(self.points):
            if p.index != i:
                raise ValueError(f"profile {self.model}: point {i} has index {p.index}")
        for i, s in enumerate(self.segments, start=1):
            if s.index != i:
                raise ValueError(f"profile {self.model}: segment {i} has index {s.index}")
            if s.median_s < 0:
                raise ValueError(f"profile {self.model}: segment {s.name} has negative time")

    @property
    def m(self) -> int:
        return len(self.segments)

    @property
    def seg_times(self) -> np.ndarray:
        """Median time of segments 1..m (array index 0 is segment 1), seconds."""
        return np.array([s.median_s for s in self.segments], dtype=float)

    @property
    def out_bytes(self) -> np.ndarray:
        """Bytes of the tensor at points 0..m (point 0 = raw input)."""
        return np.array([p.out_bytes for p in self.points], dtype=float)

    @property
    def param_bytes(self) -> np.ndarray:
        """fp32 parameter bytes of segments 1..m."""
        return np.array([4.0 * s.params for s in self.segments], dtype=float)

    def scaled(self, cpu_share: float) -> "Profile":
        """The same profile at another CPU share (time proportional to 1/share)."""
        if cpu_share <= 0:
            raise ValueError(f"cpu_share must be > 0, got {cpu_share}")
        f = self.cpu_share / cpu_share
        segs = tuple(
            Segment(s.index, s.name, s.kind, s.flops, s.params, s.in_bytes, s.out_bytes,
                    s.median_s * f, s.p90_s * f, s.repeats)
            for s in self.segments)
        return Profile(self.model, self.host_class, cpu_share, self.points, segs, self.torch_threads,
                       None if self.measured_full_s is None else self.measured_full_s * f)


def _typed(d: Mapping[str, Any]) -> Profile:
    """The :class:`Profile` of a profile models.profile has validated."""
    points = tuple(Point(p["index"], p["name"], p["out_bytes"], tuple(p["shape"])) for p in d["points"])
    segs = tuple(Segment(s["index"], s["name"], s["kind"], float(s["flops"]), s["params"], s["in_bytes"],
                         s["out_bytes"], float(s["median_s"]), float(s["p90_s"]), s["repeats"])
                 for s in d["segments"])
    return Profile(d["model"], d["host_class"], float(d["cpu_share"]), points, segs, d["torch_threads"],
                   float(d["measured_full_s"]))


def profile_from_dict(d: Mapping[str, Any]) -> Profile:
    """The typed :class:`Profile` of a schema-1 profile, checked by the one schema
    validator (models.profile: every key, type and cross-reference)."""
    return _typed(models_profile.load_profile(d))


def load_profile(path: str | Path) -> Profile:
    """The typed :class:`Profile` of a profile file (models.profile.ProfileError, a
    ValueError naming the file and field, if it is unreadable or off the schema)."""
    return _typed(models_profile.load_profile(path))


# --- synthetic profiles --------------------------------------------------------------
# (name, kind, MACs, params, output shape) per segment; approximate torchvision values.
def _a(*xs: int) -> tuple[int, ...]:
    return tuple(xs)


_ARCH: dict[str, tuple[tuple[str, str, float, int, tuple[int, ...]], ...]] = {
    "alexnet": (
        ("conv1", "conv", 70.3e6, 23296, _a(64, 55, 55)),
        ("pool1", "pool", 0.4e6, 0, _a(64, 27, 27)),
        ("conv2", "conv", 224.0e6, 307392, _a(192, 27, 27)),
        ("pool2", "pool", 0.3e6, 0, _a(192, 13, 13)),
        ("conv3", "conv", 112.1e6, 663936, _a(384, 13, 13)),
        ("conv4", "conv", 149.5e6, 884992, _a(256, 13, 13)),
        ("conv5", "conv", 99.7e6, 590080, _a(256, 13, 13)),
        ("pool5", "pool", 0.1e6, 0, _a(256, 6, 6)),
        ("fc6", "fc", 37.7e6, 37752832, _a(4096)),
        ("fc7", "fc", 16.8e6, 16781312, _a(4096)),
        ("fc8", "fc", 4.1e6, 4097000, _a(1000)),
    ),
    "resnet18": (
        ("conv1", "conv", 118.0e6, 9536, _a(64, 112, 112)),
        ("maxpool", "pool", 1.8e6, 0, _a(64, 56, 56)),
        ("layer1", "block", 462.0e6, 147968, _a(64, 56, 56)),
        ("layer2", "block", 411.0e6, 525568, _a(128, 28, 28)),
        ("layer3", "block", 411.0e6, 2099712, _a(256, 14, 14)),
        ("layer4", "block", 411.0e6, 8393728, _a(512, 7, 7)),
        ("avgpool", "pool", 0.03e6, 0, _a(512)),
        ("fc", "fc", 0.5e6, 513000, _a(1000)),
    ),
    "googlenet": (
        ("conv1", "conv", 118.0e6, 9536, _a(64, 112, 112)),
        ("maxpool1", "pool", 1.8e6, 0, _a(64, 56, 56)),
        ("conv2_3", "conv", 360.0e6, 114944, _a(192, 56, 56)),
        ("maxpool2", "pool", 1.4e6, 0, _a(192, 28, 28)),
        ("inc3a", "block", 128.0e6, 163696, _a(256, 28, 28)),
        ("inc3b", "block", 304.0e6, 388736, _a(480, 28, 28)),
        ("maxpool3", "pool", 0.8e6, 0, _a(480, 14, 14)),
        ("inc4a", "block", 73.0e6, 376176, _a(512, 14, 14)),
        ("inc4b", "block", 88.0e6, 449160, _a(512, 14, 14)),
        ("inc4c", "block", 100.0e6, 510104, _a(512, 14, 14)),
        ("inc4d", "block", 119.0e6, 605376, _a(528, 14, 14)),
        ("inc4e", "block", 170.0e6, 868352, _a(832, 14, 14)),
        ("maxpool4", "pool", 0.4e6, 0, _a(832, 7, 7)),
        ("inc5a", "block", 54.0e6, 1043008, _a(832, 7, 7)),
        ("inc5b", "block", 71.0e6, 1444080, _a(1024, 7, 7)),
        ("pool_fc", "fc", 1.1e6, 1025000, _a(1000)),
    ),
    "vgg16": (
        ("block1", "block", 1940.0e6, 38720, _a(64, 224, 224)),
        ("pool1", "pool", 7.2e6, 0, _a(64, 112, 112)),
        ("block2", "block", 2770.0e6, 221440, _a(128, 112, 112)),
        ("pool2", "pool", 3.6e6, 0, _a(128, 56, 56)),
        ("block3", "block", 4620.0e6, 1475328, _a(256, 56, 56)),
        ("pool3", "pool", 1.8e6, 0, _a(256, 28, 28)),
        ("block4", "block", 4620.0e6, 5899776, _a(512, 28, 28)),
        ("pool4", "pool", 0.9e6, 0, _a(512, 14, 14)),
        ("block5", "block", 1390.0e6, 7079424, _a(512, 14, 14)),
        ("pool5", "pool", 0.2e6, 0, _a(512, 7, 7)),
        ("fc6", "fc", 102.8e6, 102764544, _a(4096)),
        ("fc7", "fc", 16.8e6, 16781312, _a(4096)),
        ("fc8", "fc", 4.1e6, 4097000, _a(1000)),
    ),
    "mobilenet_v2": (
        ("stem", "conv", 10.8e6, 928, _a(32, 112, 112)),
        ("ir1", "block", 15.0e6, 896, _a(16, 112, 112)),
        ("ir2_3", "block", 50.0e6, 13968, _a(24, 56, 56)),
        ("ir4_6", "block", 45.0e6, 39696, _a(32, 28, 28)),
        ("ir7_10", "block", 35.0e6, 184704, _a(64, 14, 14)),
        ("ir11_13", "block", 50.0e6, 302400, _a(96, 14, 14)),
        ("ir14_16", "block", 45.0e6, 1134400, _a(160, 7, 7)),
        ("ir17", "block", 15.0e6, 473920, _a(320, 7, 7)),
        ("conv_last", "conv", 20.0e6, 412160, _a(1280, 7, 7)),
        ("pool_fc", "fc", 1.3e6, 1281000, _a(1000)),
    ),
}


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def synthetic_profile(model: str, host_class: str = "cloud", cpu_share: float | None = None,
                      macs_per_core_s: float = SYNTH_MACS_PER_CORE_S,
                      overhead_s: float = SYNTH_OVERHEAD_S) -> Profile:
    """A schema-1 profile built from approximate layer sizes (no torch needed).

    Time of a segment at ``cpu_share`` cores = (MACs / macs_per_core_s + overhead_s) / share.
    """
    if model not in _ARCH:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    if cpu_share is None:
        if host_class not in HOST_CLASSES:
            raise ValueError(f"unknown host class {host_class!r}; known: {', '.join(HOST_CLASSES)}")
        cpu_share = HOST_CLASSES[host_class]
    in_shape = (3, 224, 224)
    points = [Point(0, "input", 4 * _numel(in_shape), in_shape)]
    segs = []
    prev = 4 * _numel(in_shape)
    for i, (name, kind, macs, params, shape) in enumerate(_ARCH[model], start=1):
        out_b = 4 * _numel(shape)
        t = (macs / macs_per_core_s + overhead_s) / cpu_share
        segs.append(Segment(i, name, kind, float(macs), int(params), prev, out_b, t, 1.1 * t, 0))
        points.append(Point(i, name, out_b, shape))
        prev = out_b
    return Profile(model, host_class, float(cpu_share), tuple(points), tuple(segs))


#: Models with a profile file in a ProfileStore made in this process (see known_models).
_PROFILED: set[str] = set()


def profiled_models(root: str | Path | None = DEFAULT_PROFILES) -> tuple[str, ...]:
    """Models with a ``<root>/<host_class>/<model>.json`` file (names from file names)."""
    if root is None or not Path(root).is_dir():
        return ()
    return tuple(sorted({p.stem for p in Path(root).glob("*/*.json")}))


def known_models() -> tuple[str, ...]:
    """Models the simulator can be set up for: the built-in ones (synthetic profiles
    exist for them), those with a profile under ``profiles/``, and those with a
    profile in any :class:`ProfileStore` made in this process (e.g. ``--profiles DIR``).
    A model of your own therefore needs no code here, only a profile
    (docs/howto/add-a-model.md)."""
    return tuple(dict.fromkeys((*MODELS, *sorted(_PROFILED | set(profiled_models())))))


class ProfileStore:
    """Profiles by (model, cpu share): real JSON files first, synthetic fallback.

    ``root=None`` means synthetic profiles only.  ``get(model, cpu_share)`` returns the profile of the host class whose share is
    closest to ``cpu_share`` (measured if a file exists), rescaled to exactly
    ``cpu_share``.  Results are cached; the store is read-only after construction.
    """

    def __init__(self, root: str | Path | None = DEFAULT_PROFILES, allow_synthetic: bool = True):
        self.root = Path(root) if root is not None else None
        self.allow_synthetic = allow_synthetic
        self._files: dict[tuple[str, str], Profile] = {}
        if self.root is not None and self.root.is_dir():
            for p in sorted(self.root.glob("*/*.json")):
                try:
                    prof = load_profile(p)
                except ValueError as e:          # the message names the file and the field
                    raise ValueError(f"bad profile file: {e}") from None
                self._files[(prof.model, prof.host_class)] = prof
        _PROFILED.update(m for m, _ in self._files)
        self._cache: dict[tuple[str, float], Profile] = {}

    @property
    def measured(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self._files))

    def models(self) -> tuple[str, ...]:
        ms = {m for m, _ in self._files}
        if self.allow_synthetic:
            ms |= set(MODELS)
        return tuple(sorted(ms))

    def get(self, model: str, cpu_share: float) -> Profile:
        key = (model, round(float(cpu_share), 6))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        cands = [p for (m, _), p in self._files.items() if m == model]
        if cands:
            base = min(cands, key=lambda p: abs(np.log(p.cpu_share / cpu_share)))
        elif self.allow_synthetic and model in _ARCH:
            cls = min(HOST_CLASSES, key=lambda c: abs(np.log(HOST_CLASSES[c] / cpu_share)))
            base = _synthetic_cached(model, cls)
        else:
            raise ValueError(f"unknown model {model!r}: no profile under {self.root} "
                             f"and no synthetic table; known: {', '.join(self.models())}")
        prof = base if abs(base.cpu_share - cpu_share) < 1e-9 else base.scaled(cpu_share)
        self._cache[key] = prof
        return prof

    def seg_times(self, model: str, cpu_share: float) -> np.ndarray:
        return self.get(model, cpu_share).seg_times

    def reference(self, model: str) -> Profile:
        """Profile at 1.0 core (sizes are share-independent)."""
        return self.get(model, 1.0)


@lru_cache(maxsize=64)
def _synthetic_cached(model: str, host_class: str) -> Profile:
    return synthetic_profile(model, host_class)

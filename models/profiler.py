"""Per-segment execution-time profiler, optionally under a cgroup-v1 CPU quota.

Timing method: torch runs single-threaded. For each segment the input activation is
precomputed (one prefix chain per model); after ``warmup`` calls, each of ``repeats``
samples times a block of back-to-back calls lasting at least ``min_sample_s`` and
records the per-call mean of that block. Sampling rounds are interleaved over the
segments (and the whole model), so load from other processes on a shared machine
spreads evenly. Blocks that span several CFS periods make each sample include its fair
part of throttling, so ``median_s`` under a quota is the expected per-call latency and
not the latency of a lucky unthrottled call.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from models.partitioned import PartitionedModel
from models.profile import SCHEMA_VERSION, validate_profile

CGROUP_CPU_ROOT = "/sys/fs/cgroup/cpu"
DEFAULT_PERIOD_US = 10_000


class CgroupUnavailableError(RuntimeError):
    """The cgroup-v1 cpu controller cannot be used (missing, or not root)."""


# --------------------------------------------------------------------------- cgroup
def _current_cpu_cgroup(pid: int) -> str:
    """Path (relative to the cpu hierarchy root) of the cpu cgroup holding ``pid``."""
    with open(f"/proc/{pid}/cgroup", encoding="ascii") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "cpu" in controllers.split(","):
                return path
    return "/"


def _write(path: str, value: Any) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(f"{value}\n")


@contextlib.contextmanager
def cpu_quota(share: float, period_us: int = DEFAULT_PERIOD_US,
              root: str = CGROUP_CPU_ROOT, pid: int | None = None) -> Iterator[str]:
    """Run the body with process ``pid`` (default: this one) limited to ``share`` cores.

    Creates ``<root>/sdncep-profile-<pid>`` with ``cfs_quota_us = share * period_us``,
    moves the whole process in, and on exit moves it back to its original cpu cgroup
    and removes the group. Yields the group's directory.
    """
    if not share > 0:
        raise ValueError(f"cpu share must be > 0, got {share!r}")
    pid = os.getpid() if pid is None else pid
    if not os.path.isfile(os.path.join(root, "cpu.cfs_quota_us")):
        raise CgroupUnavailableError(
            f"cgroup v1 cpu controller not found at {root} (no cpu.cfs_quota_us); "
            "cannot apply a CPU share")
    if os.geteuid() != 0:
        raise CgroupUnavailableError(
            f"applying a CPU share needs root to create a cgroup under {root}; "
            "run as root or profile without --cpu-share")
    quota_us = max(1000, round(share * period_us))  # the kernel's minimum quota is 1 ms
    original = os.path.join(root, _current_cpu_cgroup(pid).lstrip("/"))
    group = os.path.join(root, f"sdncep-profile-{pid}")
    os.makedirs(group, exist_ok=True)
    try:
        _write(os.path.join(group, "cpu.cfs_period_us"), period_us)
        _write(os.path.join(group, "cpu.cfs_quota_us"), quota_us)
        _write(os.path.join(group, "cgroup.procs"), pid)
        try:
            yield group
        finally:
            _write(os.path.join(original, "cgroup.procs"), pid)
    finally:
        os.rmdir(group)


# --------------------------------------------------------------------------- timing
def _calibrate(fn: Callable[[], Any], warmup: int, min_sample_s: float,
               clock: Callable[[], float], max_inner: int) -> int:
    """Run ``fn`` ``max(warmup, 1)`` times; return how many back-to-back calls make a
    block of at least ``min_sample_s`` (judged from the last call)."""
    single = 0.0
    for _ in range(max(warmup, 1)):
        t0 = clock()
        fn()
        single = clock() - t0
    if min_sample_s <= 0:
        return 1
    return min(max_inner, max(1, math.ceil(min_sample_s / max(single, 1e-9))))


def _sample(fn: Callable[[], Any], inner: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(inner):
        fn()
    return (clock() - t0) / inner


def time_calls(fns: Sequence[Callable[[], Any]], repeats: int, warmup: int = 1,
               min_sample_s: float = 0.05, clock: Callable[[], float] = time.perf_counter,
               max_inner: int = 10_000,
               on_round: Callable[[], None] | None = None) -> list[list[float]]:
    """Per-call seconds of each of ``fns``: ``repeats`` samples each, every sample the
    mean over a block of back-to-back calls lasting at least ``min_sample_s`` (after
    ``warmup`` calls). Rounds are interleaved (fn 1, fn 2, ..., fn n, then again), so a
    burst of load from other processes spreads over all functions instead of
    inflating one of them."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    inner = [_calibrate(fn, warmup, min_sample_s, clock, max_inner) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for j, fn in enumerate(fns):
            samples[j].append(_sample(fn, inner[j], clock))
        if on_round is not None:
            on_round()
    return samples


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1,
              min_sample_s: float = 0.05, clock: Callable[[], float] = time.perf_counter,
              max_inner: int = 10_000) -> list[float]:
    """:func:`time_calls` for one function."""
    return time_calls([fn], repeats, warmup, min_sample_s, clock, max_inner)[0]


def _p90(samples: list[float]) -> float:
    return float(np.percentile(samples, 90))


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{platform.node()} / {cpu} x{os.cpu_count()} / {platform.system()} "
            f"{platform.release()} / torch {torch.__version__}")


def static_profile_parts(model: PartitionedModel) -> tuple[list[dict], list[dict]]:
    """The ``points`` list and the timing-free part of each ``segments`` entry."""
    m = model.num_segments
    points = [{"index": k, "name": model.point_names[k], "out_bytes": model.output_bytes(k),
               "shape": list(model.output_shape(k))} for k in range(m + 1)]
    segments = [{"index": i, "name": model.segment_names[i - 1],
                 "kind": model.segment_kinds[i - 1], "flops": int(model.segment_flops(i)),
                 "params": int(model.segment_params(i)),
                 "in_bytes": model.output_bytes(i - 1), "out_bytes": model.output_bytes(i)}
                for i in range(1, m + 1)]
    return points, segments


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def profile_model(model: PartitionedModel, host_class: str, cpu_share: float,
                  repeats: int = 15, warmup: int = 2, min_sample_s: float = 0.05,
                  progress: bool = True, seed: int = 0, clock: str = "wall") -> dict[str, Any]:
    """Measure every segment and the whole model on this host; return a schema-1 dict.

    ``cpu_share`` is recorded, not applied: wrap the call in :func:`cpu_quota` to
    apply it. Torch is set to one thread for the measurement and restored after.
    Each round samples every segment and then the whole model, so the whole-model
    time (``measured_full_s``) sees the same load as the segments.

    ``clock="cpu"`` times with the thread's CPU clock: on a shared machine it gives
    the latency of a dedicated core, but it cannot see CFS throttling, so it is only
    accepted for ``cpu_share >= 1``.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    if clock == "cpu" and cpu_share < 1:
        raise ValueError("clock='cpu' cannot see CPU-quota throttling; use 'wall' "
                         f"for cpu_share {cpu_share:g} < 1")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = model.num_segments
        x = torch.randn((1, *model.input_shape), generator=torch.Generator().manual_seed(seed))
        acts = [x]
        for k in range(1, m + 1):
            acts.append(model.run(acts[-1], k - 1, k))
        points, segments = static_profile_parts(model)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=repeats, desc=f"{model.name}@{host_class}", unit="round",
                       leave=False)
        fns = [(lambda i=i: model.run(acts[i - 1], i - 1, i)) for i in range(1, m + 1)]
        fns.append(lambda: model.run(x, 0, m))
        *per_seg, full = time_calls(fns, repeats, warmup, min_sample_s, clock=CLOCKS[clock],
                                    on_round=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
        for seg, samples in zip(segments, per_seg):
            seg.update(median_s=float(np.median(samples)), p90_s=_p90(samples),
                       repeats=repeats)
        profile = {
            "schema": SCHEMA_VERSION, "model": model.name, "host_class": host_class,
            "cpu_share": float(cpu_share), "torch_threads": torch.get_num_threads(),
            "points": points, "segments": segments,
            "total_median_s": float(sum(s["median_s"] for s in segments)),
            "measured_full_s": float(np.median(full)),
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": f"{machine_description()} / clock {clock}",
        }
    finally:
        torch.set_num_threads(threads_before)
    validate_profile(profile)
    return profile


def format_profile_table(profile: dict[str, Any]) -> str:
    """A fixed-width table of one profile, for the terminal."""
    rows = [f"{profile['model']} on {profile['host_class']} "
            f"(cpu share {profile['cpu_share']:g} core(s), {profile['torch_threads']} thread(s))",
            f"{'#':>3} {'segment':<13} {'kind':<10} {'MMAC':>9} {'out KB':>9} "
            f"{'median ms':>10} {'p90 ms':>9}"]
    for s in profile["segments"]:
        rows.append(f"{s['index']:>3} {s['name']:<13} {s['kind']:<10} {s['flops'] / 1e6:>9.1f} "
                    f"{s['out_bytes'] / 1024:>9.1f} {s['median_s'] * 1e3:>10.3f} "
                    f"{s['p90_s'] * 1e3:>9.3f}")
    rows.append(f"    sum of segment medians {profile['total_median_s'] * 1e3:.2f} ms, "
                f"whole model {profile['measured_full_s'] * 1e3:.2f} ms")
    return "\n".join(rows)


def default_profiles_dir() -> Path:
    """``profiles/`` at the repository root (next to the ``models`` package)."""
    return Path(__file__).resolve().parent.parent / "profiles"

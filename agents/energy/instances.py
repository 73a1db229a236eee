"""Random instances: D devices with one task each, drawn from an :class:`InstanceDist`."""
from __future__ import annotations

import numpy as np

from .config import InstanceDist, SystemParams
from .model import Instance


def path_gain(distance_m):
    """Channel power gain of the 3GPP macro path loss 128.1 + 37.6 log10(d / km) dB."""
    return 10.0 ** (-(128.1 + 37.6 * np.log10(np.asarray(distance_m, dtype=np.float64) / 1000.0)) / 10.0)


def draw_instance(rng: np.random.Generator, dist: InstanceDist = InstanceDist(),
                  system: SystemParams = SystemParams(), n: int | None = None) -> Instance:
    """One instance; ``n`` devices (default: drawn from ``dist.devices``), round-robin over the APs."""
    if n is None:
        n = int(rng.integers(dist.devices[0], dist.devices[1] + 1))

    def u(lo_hi, scale=1.0):
        return rng.uniform(lo_hi[0], lo_hi[1], size=n) * scale

    e_total = u(dist.battery_j)
    return Instance(
        input_bytes=u(dist.input_kb, 1e3), cycles=u(dist.cycles_g, 1e9), t_max=u(dist.deadline_s),
        f_max=u(dist.f_max_ghz, 1e9), kappa=u(dist.kappa), p_max=u(dist.p_max_w),
        gain=path_gain(u(dist.distance_m)), e_total=e_total, e_remain=e_total * u(dist.battery_ratio),
        ap=np.arange(n) % system.n_aps, system=system)

"""Typed, validating configuration of the energy-aware offloading method.

Frozen dataclasses that check themselves in ``__post_init__`` (the habit of
:mod:`agents.config`, whose :class:`~agents.config.ConfigError` and ``_build`` loader
are reused: unknown keys are refused with the allowed ones listed).  Units inside:
bytes, cycles, seconds, Hz, W, J, bit/s; Mbit/s, MHz and GHz only in YAML fields whose
name says so.  See docs/energy.md for what every parameter means in the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError, _build, _finite, _pos, lists_as_tuples, read_mapping


def _range(name: str, lo_hi: Any, positive: bool = True) -> tuple[float, float]:
    if not isinstance(lo_hi, (tuple, list)) or len(lo_hi) != 2:
        raise ConfigError(f"{name} must be a pair [low, high], got {lo_hi!r}")
    lo, hi = lo_hi
    (_pos if positive else _finite)(f"{name}[0]", lo)
    (_pos if positive else _finite)(f"{name}[1]", hi)
    if lo > hi:
        raise ConfigError(f"{name}: low {lo} > high {hi}")
    return float(lo), float(hi)


@dataclass(frozen=True)
class SystemParams:
    """The network and the edge server (shared by every device)."""
    n_aps: int = 2                  #: wireless access points
    ap_bandwidth_mhz: float = 10.0  #: W: each AP's band, split equally among the devices offloading through it
    noise_dbm_hz: float = -165.0    #: N0: noise power spectral density (thermal -174 dBm/Hz + 9 dB noise figure)
    ap_edge_mbps: float = 1000.0    #: c: each AP's wired link to the edge server, split equally among its offloaders
    edge_ghz: float = 10.0          #: f_EC: edge CPU, split equally among all offloaded tasks
    lambda_t: float = 0.8           #: latency weight at a full battery (energy weight 1 - lambda_t)

    def __post_init__(self) -> None:
        if not isinstance(self.n_aps, int) or isinstance(self.n_aps, bool) or self.n_aps < 1:
            raise ConfigError(f"system.n_aps must be an integer >= 1, got {self.n_aps!r}")
        _pos("system.ap_bandwidth_mhz", self.ap_bandwidth_mhz)
        _finite("system.noise_dbm_hz", self.noise_dbm_hz)
        _pos("system.ap_edge_mbps", self.ap_edge_mbps)
        _pos("system.edge_ghz", self.edge_ghz)
        _finite("system.lambda_t", self.lambda_t)
        if not 0.0 <= self.lambda_t <= 1.0:
            raise ConfigError(f"system.lambda_t must be in [0, 1], got {self.lambda_t}")

    @property
    def bandwidth_hz(self) -> float:
        return self.ap_bandwidth_mhz * 1e6

    @property
    def noise_w_hz(self) -> float:
        return 10.0 ** (self.noise_dbm_hz / 10.0) * 1e-3

    @property
    def ap_edge_bps(self) -> float:
        return self.ap_edge_mbps * 1e6

    @property
    def edge_hz(self) -> float:
        return self.edge_ghz * 1e9


@dataclass(frozen=True)
class InstanceDist:
    """How random instances (devices and their tasks) are drawn; each value uniform in its range
    (``distance_m`` and ``cycles_g`` too), the devices spread round-robin over the APs."""
    devices: tuple[int, int] = (2, 10)           #: number of devices D (each with one task)
    input_kb: tuple[float, float] = (100.0, 1000.0)   #: i_n, kilobytes (1 kB = 1000 bytes)
    cycles_g: tuple[float, float] = (0.1, 1.0)   #: c_n, Gcycles
    deadline_s: tuple[float, float] = (0.6, 2.0)  #: t_n^max
    f_max_ghz: tuple[float, float] = (0.8, 1.5)  #: device CPU's highest frequency
    kappa: tuple[float, float] = (5e-28, 1e-27)  #: effective switched capacitance (J / cycle / Hz^2)
    p_max_w: tuple[float, float] = (0.1, 0.5)    #: highest transmit power
    distance_m: tuple[float, float] = (50.0, 200.0)  #: device-AP distance; gain from 3GPP path loss 128.1 + 37.6 log10(d_km) dB
    battery_j: tuple[float, float] = (1.0, 5.0)  #: P_total: energy budget of the device for this decision epoch
    battery_ratio: tuple[float, float] = (0.1, 1.0)  #: r^p = P_remain / P_total

    def __post_init__(self) -> None:
        lo, hi = self.devices
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 64):
            raise ConfigError(f"instances.devices must be integers 1 <= low <= high <= 64, got {self.devices!r}")
        object.__setattr__(self, "devices", (int(lo), int(hi)))
        for f in fields(self):
            if f.name != "devices":
                object.__setattr__(self, f.name, _range(f"instances.{f.name}", getattr(self, f.name)))
        if self.battery_ratio[1] > 1.0:
            raise ConfigError(f"instances.battery_ratio must lie in (0, 1], got {self.battery_ratio}")


@dataclass(frozen=True)
class TrainArgs:
    """DQN training of the energy-aware offloading model (docs/energy.md, "Training")."""
    seed: int = 1                 #: seed of numpy, torch and the instance draws
    torch_threads: int = 1        #: torch.set_num_threads; the machine is shared
    episodes: int = 6000          #: one episode = one instance, one step per device
    hidden: int = 64              #: width of the two hidden layers of agents.dqn.QNetwork
    learning_rate: float = 1e-3   #: Adam
    gamma: float = 0.9            #: discount of later devices' rewards
    reward_a: float = 2.0         #: A of the reward A - cost (keeps the reward positive)
    buffer_size: int = 20000      #: replay memory
    batch_size: int = 64
    learning_starts: int = 500    #: env steps before the first gradient step
    target_every: int = 250       #: env steps between copies of the online net into the target net
    beta_start: float = 0.1       #: probability of taking the network's action at the start
    beta_end: float = 0.95        #: ... raised linearly to this
    beta_fraction: float = 0.6    #: fraction of the episodes over which beta rises
    penalty: float = 5.0          #: extra cost of a constraint violation in the reward

    def __post_init__(self) -> None:
        for name in ("episodes", "hidden", "buffer_size", "batch_size", "target_every", "torch_threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"train.{name} must be an integer >= 1, got {v!r}")
        if self.buffer_size < self.batch_size:
            raise ConfigError(f"train.buffer_size {self.buffer_size} < batch_size {self.batch_size}")
        _pos("train.learning_rate", self.learning_rate)
        _pos("train.reward_a", self.reward_a)
        _pos("train.penalty", self.penalty)
        for name in ("gamma", "beta_start", "beta_end", "beta_fraction"):
            _finite(f"train.{name}", getattr(self, name))
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"train.gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 <= self.beta_start <= self.beta_end <= 1.0:
            raise ConfigError("train: need 0 <= beta_start <= beta_end <= 1 (beta rises)")
        if not 0.0 < self.beta_fraction <= 1.0:
            raise ConfigError(f"train.beta_fraction must be in (0, 1], got {self.beta_fraction}")


@dataclass(frozen=True)
class EnergyConfig:
    system: SystemParams = field(default_factory=SystemParams)
    instances: InstanceDist = field(default_factory=InstanceDist)
    train: TrainArgs = field(default_factory=TrainArgs)

    def replace(self, **kw: Any) -> EnergyConfig:
        return replace(self, **kw)


SECTIONS = {"system": SystemParams, "instances": InstanceDist, "train": TrainArgs}


def energy_config_from_dict(data: Mapping[str, Any]) -> EnergyConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("energy config root must be a mapping")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(SECTIONS)}")
    parts = {}
    for name, cls in SECTIONS.items():
        section = data.get(name) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{name} must be a mapping, got {type(section).__name__}")
        parts[name] = _build(cls, lists_as_tuples(section), name)
    return EnergyConfig(**parts)


def load_energy_config(path: str | Path) -> EnergyConfig:
    """Read a JSON or YAML file with the sections ``system``, ``instances``, ``train``."""
    return energy_config_from_dict(read_mapping(path))

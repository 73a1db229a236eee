"""The pricing experiments' config: sections ``workload`` and ``prices`` (YAML or JSON),
validated like agents/config.py (unknown keys refused, frozen dataclasses)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.config import ConfigError, _build, read_mapping

from .prices import PriceConfig
from .workload import WorkloadConfig, workload_from_dict


@dataclass(frozen=True)
class PricingConfig:
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    prices: PriceConfig = field(default_factory=PriceConfig)


def pricing_config_from_dict(data: Mapping[str, Any]) -> PricingConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("config root must be a mapping")
    unknown = sorted(set(data) - {"workload", "prices"})
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: workload, prices")
    return PricingConfig(workload_from_dict(data.get("workload", {})), _build(PriceConfig, data.get("prices", {}),
                                                                             "prices"))


def load_pricing_config(path: str | Path) -> PricingConfig:
    return pricing_config_from_dict(read_mapping(path))

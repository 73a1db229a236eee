"""A tiny stand-in for ``models.build_model`` objects, for fast tests and demos.

It has the same surface the runtime uses (``num_segments``, ``input_shape``,
``output_shape(k)``, ``output_bytes(k)``, ``run(x, start, end)``) but runs in
microseconds on 3x8x8 inputs.
"""
from __future__ import annotations

import math

import torch
from torch import nn

TINY_NAME = "tiny"


class TinyModel(nn.Module):
    """Four segments: conv+relu, maxpool, flatten+linear+relu, linear (10 classes)."""

    def __init__(self, seed: int = 0, name: str = TINY_NAME):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.name = name
        self.input_shape = (3, 8, 8)
        self.segs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
            nn.MaxPool2d(2),
            nn.Sequential(nn.Flatten(1), nn.Linear(64, 16), nn.ReLU()),
            nn.Linear(16, 10),
        ])
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self._shapes = [(3, 8, 8), (4, 8, 8), (4, 4, 4), (16,), (10,)]
        self.eval()

    @property
    def num_segments(self) -> int:
        return len(self.segs)

    def output_shape(self, k: int) -> tuple[int, ...]:
        return self._shapes[k]

    def output_bytes(self, k: int) -> int:
        return 4 * math.prod(self._shapes[k])

    def run(self, x: torch.Tensor, start: int, end: int) -> torch.Tensor:
        if not 0 <= start <= end <= self.num_segments:
            raise ValueError(f"bad range {start}..{end}")
        with torch.no_grad():
            for seg in self.segs[start:end]:
                x = seg(x)
        return x


def tiny_factory(seed: int = 0):
    """``model_factory`` for :class:`runtime.worker.Worker` that knows only ``tiny``."""

    def factory(name: str):
        if name != TINY_NAME:
            raise ValueError(f"unknown model {name!r}")
        return TinyModel(seed)

    return factory

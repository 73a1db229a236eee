"""A DNN as an ordered chain of named segments, cut only where one tensor crosses.

Point numbering follows docs/CONVENTIONS.md: a model with ``m`` segments has points
``0..m``; point 0 is the raw input, point ``m`` the output, and segment ``i``
(1-based) maps the tensor at point ``i-1`` to the tensor at point ``i``.

Shapes, byte sizes and per-segment multiply-adds are measured once, lazily, by one
batch-1 forward pass with hooks (see :meth:`PartitionedModel._analyse`).
"""

from __future__ import annotations

import math
import operator
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class Segment:
    """One cut-free piece of a model: its name, its layer kind and its module."""

    name: str
    kind: str
    module: nn.Module


def _layer_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-adds of one leaf layer for the batch in ``inp`` (divided out later).

    Conv: one MAC per output element per weight tap; Linear: in*out per row;
    pooling: one op per window element read. Activations, BN and residual adds are
    not counted (they are cheap and folded into the preceding conv).
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                           nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        k = module.kernel_size
        dims = {nn.MaxPool1d: 1, nn.AvgPool1d: 1, nn.MaxPool3d: 3, nn.AvgPool3d: 3}.get(type(module), 2)
        return out.numel() * (k ** dims if isinstance(k, int) else math.prod(k))
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        return inp.numel()
    return 0


class PartitionedModel(nn.Module):
    """A model that can be run from any partition point to any later one.

    Args:
        name: model name, e.g. ``"alexnet"``.
        segments: the ordered segments; exactly one tensor crosses each boundary.
        input_shape: shape of one input sample, without the batch dimension.
        num_classes: size of the output vector.
    """

    def __init__(
        self,
        name: str,
        segments: Sequence[Segment],
        input_shape: tuple[int, ...] = (3, 224, 224),
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if not segments:
            raise ValueError("a PartitionedModel needs at least one segment")
        names = [s.name for s in segments]
        if len(set(names)) != len(names) or {"input", "output"} & set(names):
            raise ValueError(f"segment names must be unique and not input/output: {names}")
        self.name = name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.segment_names: list[str] = names
        self.segment_kinds: list[str] = [s.kind for s in segments]
        self.segments = nn.ModuleList(s.module for s in segments)
        self._shapes: list[tuple[int, ...]] | None = None
        self._flops: list[int] | None = None
        self._analyse_lock = threading.Lock()
        self.eval()

    # ----------------------------------------------------------------- structure
    @property
    def num_segments(self) -> int:
        return len(self.segments)

    @property
    def point_names(self) -> list[str]:
        """``m+1`` names: ``"input"``, the names of segments 1..m-1, ``"output"``."""
        return ["input", *self.segment_names[:-1], "output"]

    @staticmethod
    def _as_index(v: Any, lo: int, hi: int, what: str) -> int:
        """``v`` as a Python int in ``lo..hi`` (numpy/torch integers accepted, bools not)."""
        try:
            if isinstance(v, bool):
                raise TypeError
            i = operator.index(v)
        except TypeError:
            raise ValueError(f"{what} must be an int in {lo}..{hi}, got {v!r}") from None
        if not lo <= i <= hi:
            raise ValueError(f"{what} must be an int in {lo}..{hi}, got {v!r}")
        return i

    def _check_point(self, k: Any) -> int:
        return self._as_index(k, 0, self.num_segments, "point")

    def _check_segment(self, i: Any) -> int:
        return self._as_index(i, 1, self.num_segments, "segment")

    # ----------------------------------------------------------------- analysis
    def _analyse(self) -> None:
        """One batch-1 forward pass recording each point's shape and each segment's MACs.

        Safe while other threads call :meth:`run`: the hooks count only this thread."""
        with self._analyse_lock:
            if self._shapes is None:
                self._analyse_locked()

    def _analyse_locked(self) -> None:
        me = threading.get_ident()
        shapes = [self.input_shape]
        flops: list[int] = []
        x = torch.zeros((1, *self.input_shape))
        with torch.no_grad():
            for seg in self.segments:
                counted = [0]

                def hook(mod, args, out, counted=counted):
                    if threading.get_ident() == me:
                        counted[0] += _layer_flops(mod, args[0], out)

                handles = [
                    m.register_forward_hook(hook)
                    for m in seg.modules()
                    if not list(m.children())
                ]
                try:
                    x = seg(x)
                finally:
                    for h in handles:
                        h.remove()
                k = len(shapes)
                if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
                    what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
                    raise ValueError(
                        f"{self.name}: segment {k} ({self.segment_names[k - 1]}) returns {what}; "
                        "every point must be one float32 tensor (profiles and the wire count "
                        "float32 bytes)")
                shapes.append(tuple(x.shape[1:]))
                flops.append(counted[0])
        self._flops, self._shapes = flops, shapes  # _shapes last: it marks "done"

    def output_shape(self, k: int) -> tuple[int, ...]:
        """Shape of the tensor at point ``k`` without the batch dimension."""
        k = self._check_point(k)
        if self._shapes is None:
            self._analyse()
        return self._shapes[k]

    def output_bytes(self, k: int) -> int:
        """Bytes (float32, batch 1) of the tensor at point ``k``; ``k=0`` is the input."""
        return FLOAT32_BYTES * math.prod(self.output_shape(k))

    def segment_flops(self, i: int) -> int:
        """Multiply-adds of segment ``i`` (1-based) for batch 1, measured with hooks."""
        i = self._check_segment(i)
        if self._flops is None:
            self._analyse()
        return self._flops[i - 1]

    def segment_params(self, i: int) -> int:
        i = self._check_segment(i)
        return sum(p.numel() for p in self.segments[i - 1].parameters())

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------- execution
    def run(self, x: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """Run segments ``start+1..end``: map the (batched) tensor at point ``start``
        to the tensor at point ``end``. ``start == end`` returns ``x`` unchanged."""
        start, end = self._check_point(start), self._check_point(end)
        if start > end:
            raise ValueError(f"start point {start} is after end point {end}")
        if self.training:
            self.eval()
        with torch.no_grad():
            for seg in self.segments[start:end]:
                x = seg(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, 0, self.num_segments)

    def __repr__(self) -> str:  # short: the nn.Module repr of VGG is pages long
        return f"PartitionedModel({self.name!r}, segments={self.num_segments})"

"""Execution plan of one split-inference task: which host runs which segments.

A :class:`WirePlan` is a model name plus an ordered tuple of :class:`Hop`; hop ``i`` runs
partition points ``start``..``end`` (segments ``start+1``..``end``).  A valid plan's hops
are contiguous and cover ``0..m`` where ``m`` is the model's number of segments.  The
controller produces plans; the client sends them inside TASK frames.

Text form (CLI ``--plan``): comma-separated hops ``HOST:PORT:START-END``; ``END`` may
be ``m`` (the model's last point), e.g. ``10.0.0.3:9000:0-4,10.0.0.9:9000:4-m``.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from protocol import wire
from protocol.wire import Hop

__all__ = ("Hop", "WirePlan", "PlanError", "parse_addr", "split_plan")


class PlanError(ValueError):
    """A plan is malformed or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class WirePlan:
    """A model name and its hops, in execution order."""

    model: str
    hops: tuple[Hop, ...]

    def __post_init__(self):
        object.__setattr__(self, "hops", tuple(self.hops))

    @property
    def cuts(self) -> tuple[int, ...]:
        """Interior partition points where the tensor changes host."""
        return tuple(h.end for h in self.hops[:-1])

    def validate(self, num_segments: int | None = None,
                 known_models: Iterable[str] | None = None, max_hops: int = 8) -> "WirePlan":
        """Raise :class:`PlanError` unless hops are contiguous from 0 (to ``num_segments``)."""
        if known_models is not None and self.model not in set(known_models):
            raise PlanError(f"unknown model {self.model!r}")
        if not self.hops:
            raise PlanError("plan has no hops")
        if len(self.hops) > max_hops:
            raise PlanError(f"{len(self.hops)} hops > {max_hops}")
        if self.hops[0].start != 0:
            raise PlanError("first hop must start at point 0")
        for a, b in zip(self.hops, self.hops[1:]):
            if a.end != b.start:
                raise PlanError(f"hops not contiguous: {a} then {b}")
        for h in self.hops:
            if not isinstance(h.port, int) or not 0 < h.port < 65536:
                raise PlanError(f"bad port in {h}")
            if not isinstance(h.host, str) or not wire._HOST_RE.match(h.host):
                raise PlanError(f"bad host in {h}")
            if not 0 <= h.start < h.end:
                raise PlanError(f"empty or reversed range in {h}")
            if h.end > 65535:
                raise PlanError(f"point out of range in {h}")
        if num_segments is not None and self.hops[-1].end != num_segments:
            raise PlanError(f"last hop ends at {self.hops[-1].end}, model has {num_segments} segments")
        return self

    def to_wire(self) -> tuple[Hop, ...]:
        return self.hops

    @classmethod
    def from_wire(cls, model: str, hops: Sequence[Hop]) -> "WirePlan":
        return cls(model, tuple(hops))

    @classmethod
    def parse(cls, model: str, spec: str, num_segments: int | None = None,
              default_addr: tuple[str, int] | None = None) -> "WirePlan":
        """Parse ``HOST:PORT:START-END,...``; a hop given as bare ``START-END`` uses
        ``default_addr``; ``END`` ``m`` means ``num_segments``."""
        hops = []
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                raise PlanError(f"empty hop in {spec!r}")
            addr, _, rng = item.rpartition(":")
            if addr:
                host, _, port_s = addr.rpartition(":")
                if not host:
                    raise PlanError(f"hop {item!r}: expected HOST:PORT:START-END")
            elif default_addr is not None:
                host, port_s = default_addr[0], str(default_addr[1])
            else:
                raise PlanError(f"hop {item!r} has no address")
            lo, sep, hi = rng.partition("-")
            if not sep:
                raise PlanError(f"hop {item!r}: range must be START-END")
            try:
                port = int(port_s)
                start = int(lo)
                if hi == "m":
                    if num_segments is None:
                        raise PlanError("'m' needs the model's number of segments")
                    end = num_segments
                else:
                    end = int(hi)
            except ValueError as e:
                raise PlanError(f"hop {item!r}: {e}") from None
            hops.append(Hop(host, port, start, end))
        return cls(model, tuple(hops)).validate(num_segments)

    def __str__(self) -> str:
        return ",".join(str(h) for h in self.hops)


def split_plan(model: str, num_segments: int, addrs: Sequence[tuple[str, int]],
               cuts: Sequence[int]) -> WirePlan:
    """WirePlan running ``0..cuts[0]`` on ``addrs[0]``, ``cuts[0]..cuts[1]`` on ``addrs[1]``, ...,
    the rest on ``addrs[-1]``; ``len(addrs) == len(cuts) + 1``.  Hosts whose range is
    empty (cut at 0 or m) are left out."""
    if len(addrs) != len(cuts) + 1:
        raise PlanError("need one more address than cuts")
    points = [0, *cuts, num_segments]
    hops = tuple(Hop(a[0], int(a[1]), s, e) for a, s, e in zip(addrs, points, points[1:])
                 if s != e)  # a cut at 0 or m leaves that host with nothing to run
    return WirePlan(model, hops).validate(num_segments)


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)

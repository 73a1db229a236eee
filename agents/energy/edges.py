"""Which edge server a decision may offload to, and which devices it can serve.

The model has one edge server per decision (docs/energy.md). The controller's global view
says which edge hosts are alive (fresh heartbeats, port up, not reported unreachable) and
whether a path joins a device's access switch to each; :func:`choose_edge` turns that into
the edge server the decision uses and, for every device it cannot serve, the reason that
device must run locally. Pure: plain records in, an :class:`EdgeChoice` out.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EdgeServer:
    name: str
    ip: str | None
    alive: bool
    why_down: str = ""          #: the view's reason when not alive


@dataclass(frozen=True)
class EdgeChoice:
    edge: EdgeServer | None                               #: the server offloaders use (None: none usable)
    blocked: dict[str, str] = field(default_factory=dict)  #: device -> why it must run locally
    masked: dict[str, str] = field(default_factory=dict)   #: edge server -> why it is not used

    def reply(self) -> dict:
        """The part of a decision reply that says where offloading goes and why not elsewhere."""
        return {"edge": None if self.edge is None else {"name": self.edge.name, "ip": self.edge.ip},
                "masked_edges": dict(self.masked)}


def choose_edge(edges: Sequence[EdgeServer], devices: Sequence[str],
                reachable: Callable[[str, str], bool]) -> EdgeChoice:
    """The live edge server reachable from most of ``devices`` (ties: by name), the
    devices it cannot reach, and why every other server is left out.

    ``reachable(device, edge)``: a path joins the device's access switch to the edge host.
    """
    masked = {e.name: e.why_down or "not alive in the controller's view" for e in edges if not e.alive}
    alive = sorted((e for e in edges if e.alive), key=lambda e: e.name)
    if not alive:
        why = "no edge server alive" + (f" ({'; '.join(f'{n}: {w}' for n, w in sorted(masked.items()))})"
                                        if masked else " in the controller's view")
        return EdgeChoice(None, {d: why for d in devices}, masked)
    reach = {e.name: {d for d in devices if reachable(d, e.name)} for e in alive}
    best = max(alive, key=lambda e: len(reach[e.name]))     # the first by name among equals
    for e in alive:
        if e is not best:
            masked[e.name] = f"spare: one edge server per decision, {best.name} reaches more devices"
    blocked = {d: f"no path from its access switch to {best.name}" for d in devices if d not in reach[best.name]}
    return EdgeChoice(best, blocked, masked)


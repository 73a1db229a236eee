"""Host classes of the testbed: name -> CPU share, in cores (fraction of ONE core).

Single source of truth: the profiler, the latency predictor and the topology builder
all read :data:`HOST_CLASSES`. Inference runs with one torch thread, so ``cloud`` at
1.0 core is an unthrottled core even on a host with more cores.
"""

from __future__ import annotations

from types import MappingProxyType

HOST_CLASSES = MappingProxyType({
    "cloud": 1.0,
    "edge-large": 0.5,
    "edge-medium": 0.35,
    "edge-small": 0.2,
})


class UnknownHostClassError(ValueError):
    """Raised for a host class name not in :data:`HOST_CLASSES`."""


def cpu_share(host_class: str) -> float:
    """CPU share (cores) of ``host_class``."""
    try:
        return HOST_CLASSES[host_class]
    except KeyError:
        raise UnknownHostClassError(
            f"unknown host class {host_class!r}; valid: {', '.join(HOST_CLASSES)}") from None

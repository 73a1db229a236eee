"""Turn cumulative OpenFlow port counters into rates.

Rates use the counters' own clock (the port's ``duration_sec``/``duration_nsec``),
not the time a reply reached the controller, so polling jitter and controller load
do not bend the figures. Counter resets (port re-created, duration going backwards)
restart the series instead of producing a negative rate.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PortSample:
    """One port-stats entry: cumulative counters and the port's age in seconds."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    tx_dropped: int
    duration: float

    @classmethod
    def from_counters(cls, rx_bytes, tx_bytes, rx_packets, tx_packets, tx_dropped,
                      duration_sec, duration_nsec):
        return cls(rx_bytes, tx_bytes, rx_packets, tx_packets, tx_dropped,
                   duration_sec + duration_nsec * 1e-9)


@dataclass(frozen=True)
class PortRate:
    """Rates over the interval between two samples, in bits/s and packets/s."""

    rx_bps: float
    tx_bps: float
    rx_pps: float
    tx_pps: float
    tx_dropped_ps: float
    interval: float


def rate_between(old, new, tx_discount_bytes=0):
    """(PortRate, unused discount) between two samples of one port, or (None, 0).

    ``tx_discount_bytes`` is traffic the controller itself injected through the port
    (capacity probes); it is removed so utilisation shows user traffic. A train can
    straddle two polls, so what this interval cannot absorb is handed back for the
    next one.
    """
    interval = new.duration - old.duration
    if interval <= 0 or new.tx_bytes < old.tx_bytes or new.rx_bytes < old.rx_bytes:
        return None, 0
    sent = new.tx_bytes - old.tx_bytes
    absorbed = min(sent, tx_discount_bytes)
    rate = PortRate(
        rx_bps=(new.rx_bytes - old.rx_bytes) * 8 / interval,
        tx_bps=(sent - absorbed) * 8 / interval,
        rx_pps=(new.rx_packets - old.rx_packets) / interval,
        tx_pps=(new.tx_packets - old.tx_packets) / interval,
        tx_dropped_ps=max(new.tx_dropped - old.tx_dropped, 0) / interval,
        interval=interval,
    )
    return rate, tx_discount_bytes - absorbed


class PortRateTracker:
    """Keeps the last sample per (dpid, port) and yields the newest rate."""

    def __init__(self):
        self._last = {}
        self._pending_discount = {}

    def discount_tx(self, dpid, port_no, nbytes):
        """Record controller-injected bytes to subtract from the next tx rate."""
        key = (dpid, port_no)
        self._pending_discount[key] = self._pending_discount.get(key, 0) + nbytes

    def update(self, dpid, port_no, sample):
        """Store ``sample``; return the PortRate since the previous one (or None)."""
        key = (dpid, port_no)
        old = self._last.get(key)
        self._last[key] = sample
        if old is None:
            return None
        rate, unused = rate_between(old, sample, self._pending_discount.pop(key, 0))
        if unused:
            self._pending_discount[key] = unused
        return rate

    def forget(self, dpid, port_no=None):
        for key in [k for k in self._last if k[0] == dpid and port_no in (None, k[1])]:
            del self._last[key]
            self._pending_discount.pop(key, None)

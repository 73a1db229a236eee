"""Active link-capacity measurement with packet trains injected by the controller.

For a directed switch-to-switch link (u, port) -> (v, port) the controller sends,
through one packet-out per group of frames on u:

1. a *pre-train* of bulk frames that empties the shaper's token bucket, so that
   what follows leaves at the link's sustained rate, not at its burst rate;
2. a *first marker*; 3. the *train* of bulk frames; 4. a *last marker*.

Switch v drops bulk frames and sends markers to the controller. The whole train is
handed to u's output queue at once, so it occupies that FIFO contiguously: user
traffic arriving meanwhile queues behind it. The time between the markers'
packet-ins is therefore the time the link needed to carry ``train + last marker``
bytes:

    capacity = 8 * (train_bytes + marker_bytes) / (t_last - t_first)

Traffic that shares the queue while the train runs takes its part of that time, so
a loaded link reads low; :func:`corrected_capacity` adds the cross traffic back, and
:class:`CapacityEstimator` accepts a change only once two trains agree on it.

Bulk copies of one frame are produced by repeating the output action in a single
packet-out, so a 1 MB train costs a handful of OpenFlow messages. Train size
adapts to the last estimate (about ``target_duration`` of link time), bounded so
that it fits the interface queue (1000 frames) and is never lost to drops.
"""

import statistics
import struct
from collections import deque
from dataclasses import dataclass, field

PROBE_ETHERTYPE = 0x88B5          # IEEE local experimental ethertype 1
PROBE_SRC_MAC = "02:5d:ce:00:00:00"
MARKER_DST_MAC = "02:5d:ce:00:00:01"
BULK_DST_MAC = "02:5d:ce:00:00:02"
FRAME_BYTES = 1500                # bytes the shaper counts per bulk frame
MARKER_MAGIC = b"SDNCEPPR"
MARKER_FIRST, MARKER_LAST = 1, 2
MAX_COPIES_PER_MESSAGE = 64
_MARKER_STRUCT = struct.Struct("!8sIB")


def _mac_bytes(mac):
    return bytes(int(part, 16) for part in mac.split(":"))


def ethernet_frame(dst_mac, payload, size):
    """An Ethernet II frame of ``size`` bytes (no FCS) with the probe ethertype."""
    header = _mac_bytes(dst_mac) + _mac_bytes(PROBE_SRC_MAC) + struct.pack("!H", PROBE_ETHERTYPE)
    return (header + payload).ljust(size, b"\0")


BULK_FRAME = ethernet_frame(BULK_DST_MAC, b"", FRAME_BYTES)


def marker_frame(probe_id, kind):
    return ethernet_frame(MARKER_DST_MAC, _MARKER_STRUCT.pack(MARKER_MAGIC, probe_id, kind), 64)


def parse_marker(frame):
    """Return (probe_id, kind) from a marker frame, or None if it is not one."""
    payload = frame[14:14 + _MARKER_STRUCT.size]
    if len(payload) < _MARKER_STRUCT.size:
        return None
    magic, probe_id, kind = _MARKER_STRUCT.unpack(payload)
    if magic != MARKER_MAGIC or kind not in (MARKER_FIRST, MARKER_LAST):
        return None
    return probe_id, kind


@dataclass(frozen=True)
class LinkKey:
    """A directed switch-to-switch link."""

    src_dpid: int
    src_port: int
    dst_dpid: int
    dst_port: int


@dataclass
class Probe:
    probe_id: int
    link: LinkKey
    train_bytes: int
    sent_at: float
    first_at: float = None
    # (frame, copies) in send order, each becoming one packet-out on link.src_dpid
    messages: list = field(default_factory=list)

    @property
    def injected_bytes(self):
        return sum(len(frame) * copies for frame, copies in self.messages)


@dataclass(frozen=True)
class ProbeResult:
    link: LinkKey
    capacity_bps: float
    duration: float
    train_bytes: int


class CapacityProber:
    """Plans packet trains and turns marker arrival times into link rates."""

    def __init__(self, target_duration=0.05, min_train_bytes=60_000, max_train_bytes=1_200_000,
                 pretrain_bytes=30_000, timeout=3.0):
        self.target_duration = target_duration
        self.min_train = min_train_bytes
        self.max_train = max_train_bytes
        self.pretrain = pretrain_bytes
        self.timeout = timeout
        self._next_id = 1
        self._outstanding = {}
        self._last_rate = {}

    def busy(self, link):
        return any(p.link == link for p in self._outstanding.values())

    def plan(self, link, now):
        """A new Probe for ``link``; the caller sends ``probe.messages`` in order."""
        last = self._last_rate.get(link)
        # no estimate yet: a long train (at 200 Mbit/s a 12 ms one read 30% high when its first
        # marker waited behind the train in ovs-vswitchd; at 10 Mbit/s 600 kB take 0.5 s, once)
        wanted = last / 8 * self.target_duration if last else self.max_train / 2
        train = int(min(max(wanted, self.min_train), self.max_train))
        probe = Probe(self._next_id, link, train - train % FRAME_BYTES, now)
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        probe.messages = (
            self._bulk(self.pretrain)
            + [(marker_frame(probe.probe_id, MARKER_FIRST), 1)]
            + self._bulk(probe.train_bytes)
            + [(marker_frame(probe.probe_id, MARKER_LAST), 1)])
        self._outstanding[probe.probe_id] = probe
        return probe

    @staticmethod
    def _bulk(nbytes):
        frames = nbytes // FRAME_BYTES
        messages = []
        while frames > 0:
            copies = min(frames, MAX_COPIES_PER_MESSAGE)
            messages.append((BULK_FRAME, copies))
            frames -= copies
        return messages

    def on_marker(self, probe_id, kind, dst_dpid, timestamp):
        """Feed a marker packet-in; return a ProbeResult when a train completes."""
        probe = self._outstanding.get(probe_id)
        if probe is None or probe.link.dst_dpid != dst_dpid:
            return None
        if kind == MARKER_FIRST:
            probe.first_at = timestamp
            return None
        del self._outstanding[probe_id]
        if probe.first_at is None or timestamp <= probe.first_at:
            return None
        duration = timestamp - probe.first_at
        rate = 8 * (probe.train_bytes + 64) / duration
        self._last_rate[probe.link] = rate
        return ProbeResult(probe.link, rate, duration, probe.train_bytes)

    def expire(self, now):
        """Drop probes whose markers never came back (lost); return their links."""
        lost = [p for p in self._outstanding.values() if now - p.sent_at > self.timeout]
        for probe in lost:
            del self._outstanding[probe.probe_id]
            # A lost marker usually means the queue overflowed: next train shorter.
            if probe.link in self._last_rate:
                self._last_rate[probe.link] /= 2
        return [p.link for p in lost]

    def forget(self, link):
        self._last_rate.pop(link, None)
        for probe_id in [i for i, p in self._outstanding.items() if p.link == link]:
            del self._outstanding[probe_id]


def corrected_capacity(measured_bps, cross_bps, previous_bps):
    """A train's rate, corrected for traffic that shared the link while it ran.

    Behind a FIFO shaper a train that keeps the queue full gets the capacity minus
    the cross traffic's rate, so on a link carrying 20 Mbit/s of other traffic a
    50 Mbit/s link reads 30. Adding the cross rate (the port counters' rate, probe
    bytes discounted) restores the capacity; but elastic (TCP) traffic backs off
    while the train runs and its average overstates what it took, so the correction
    may only bring a low reading back up to the estimate so far, never above it.
    A first reading, or one at or above the estimate, is taken as it is.
    """
    if previous_bps is None or measured_bps >= previous_bps or not cross_bps or cross_bps <= 0:
        return measured_bps
    return min(measured_bps + cross_bps, previous_bps)


class CapacityEstimator:
    """Median of the last few agreeing probes per link; a change must be seen twice.

    One train can read 40% high or low when a marker's packet-in waits behind other
    work at the controller (seen at 200 Mbit/s, where a first train lasts ~12 ms). So a
    result that disagrees with the estimate (by more than ``jump``, relative) is held
    as a candidate: when the next result agrees with it, the link's capacity really
    changed and the two start a new history; when the next result agrees with the
    estimate, the candidate was an outlier and is dropped. A link's first estimate
    likewise needs two agreeing probes; after ``window`` candidates none of which agree,
    their median is taken, so a noisy link still gets an estimate. :meth:`unsettled`
    tells the schedule to probe again soon, so a change costs one extra short probe.
    """

    def __init__(self, window=3, jump=0.25):
        self.window, self.jump = window, jump
        self._history = {}
        self._candidates = {}

    def current(self, link):
        history = self._history.get(link)
        return statistics.median(history) if history else None

    def unsettled(self, link):
        """True while a result awaits confirmation."""
        return bool(self._candidates.get(link))

    def _agree(self, a, b):
        return abs(a - b) <= self.jump * b

    def update(self, link, capacity_bps):
        """Feed one probe result; return the estimate (None until a first one holds)."""
        history = self._history.setdefault(link, deque(maxlen=self.window))
        candidates = self._candidates.setdefault(link, deque(maxlen=self.window))
        current = self.current(link)
        if current is not None and self._agree(capacity_bps, current):
            history.append(capacity_bps)
            candidates.clear()
        else:
            candidates.append(capacity_bps)
            if len(candidates) >= 2 and self._agree(candidates[-1], candidates[-2]):
                history.clear()
                history.extend(list(candidates)[-2:])
                candidates.clear()
            elif len(candidates) == self.window:
                history.clear()
                history.extend(candidates)
                candidates.clear()
        return self.current(link)

    def forget(self, link):
        self._history.pop(link, None)
        self._candidates.pop(link, None)


class ProbeSchedule:
    """When each link is probed next: often while its capacity moves, rarely once it holds.

    Every train costs link time and, on the userspace datapath, CPU of ovs-vswitchd's
    one forwarding thread (measured: with every link probed each 2 s, the idle
    testbed's ovs-vswitchd used 0.45 cores, and iperf through a 50 Mbit/s path got
    41 Mbit/s instead of 48). So a link whose probes agree with its estimate (within
    ``stable``) is probed half as often each time, down to once per ``max_interval``;
    a new link, one whose probe disagreed or got lost, and every link after
    :meth:`hurry` (someone changed rates) go back to ``min_interval``.
    """

    def __init__(self, min_interval=2.0, max_interval=30.0, stable=0.1, confirm_interval=0.25):
        if max_interval < min_interval:
            raise ValueError("max_interval must be >= min_interval")
        self.min_interval, self.max_interval, self.stable = min_interval, max_interval, stable
        self.confirm_interval = min(confirm_interval, min_interval)
        self._interval = {}
        self._next = {}

    def due(self, links, now):
        """The links among ``links`` whose probe is due, most overdue first."""
        for link in links:
            self._next.setdefault(link, now)
        return sorted((link for link in links if self._next[link] <= now), key=lambda link: self._next[link])

    def sent(self, link, now):
        """A train went out: not due again before its result or its loss."""
        self._next[link] = now + self.max_interval

    def result(self, link, now, previous_bps, measured_bps, unconfirmed=False):
        """A probe came back; ``previous_bps`` is the estimate before it (None: first).

        ``unconfirmed``: the estimator waits for a second look (CapacityEstimator), so
        the next train goes out after ``confirm_interval``.
        """
        held = previous_bps is not None and abs(measured_bps - previous_bps) <= self.stable * previous_bps
        interval = min(2 * self._interval.get(link, self.min_interval), self.max_interval) if held \
            else self.min_interval
        self._interval[link] = interval
        self._next[link] = now + (self.confirm_interval if unconfirmed else interval)

    def lost(self, link, now):
        self._interval[link] = self.min_interval
        self._next[link] = now + self.min_interval

    def hurry(self, now, links=None):
        """Probe ``links`` (default: every link) again soon, at the shortest interval."""
        for link in list(self._next) if links is None else links:
            self._interval.pop(link, None)
            self._next[link] = now

    def forget(self, link):
        self._interval.pop(link, None)
        self._next.pop(link, None)

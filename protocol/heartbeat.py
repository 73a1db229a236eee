"""Heartbeat datagrams: how hosts report their load to the controller via OpenFlow.

A host agent broadcasts a small UDP datagram to ``HEARTBEAT_PORT`` every half
second; every switch has a flow sending such datagrams to the controller, which
decodes them here. The payload is ``MAGIC`` followed by a JSON object of at most
``MAX_PAYLOAD`` bytes. Anything else is rejected with ``HeartbeatError``.
"""

import json
import math
from dataclasses import asdict, dataclass

HEARTBEAT_PORT = 47474
INTERVAL_S = 0.5          # a host's heartbeat period (runtime.host_agent)
BUSY_WINDOW_S = 1.0       # a worker's busy fraction is over the last this many seconds
MAGIC = b"SDNCEP-HB1"
MAX_PAYLOAD = 1024
ROLES = ("device", "edge", "cloud")
# A paced worker's fidelity counters since it started (runtime.pacing.PaceStats)
PACING_FIELDS = ("paced_hops", "overruns", "overrun_s", "worst_overrun_s", "real_s", "emulated_s",
                 "tcp_retransmits")


class HeartbeatError(ValueError):
    """A datagram that is not a valid heartbeat."""


@dataclass(frozen=True)
class Heartbeat:
    name: str
    role: str
    ip: str
    seq: int
    cpu_share: float      # CPU cores this host may use
    busy: float           # fraction of cpu_share used over the last report interval
    queue_len: int        # runnable tasks (or queued inference tasks when a worker reports)
    mem_free_bytes: int
    pacing: dict = None   # a paced worker's PACING_FIELDS (its cpu_share is then its emulated speed)

    def __post_init__(self):
        if not self.name or len(self.name) > 32 or not self.name.isprintable():
            raise HeartbeatError("name must be 1-32 printable characters")
        if self.role not in ROLES:
            raise HeartbeatError(f"role must be one of {ROLES}, got {self.role!r}")
        for field in ("cpu_share", "busy"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise HeartbeatError(f"{field} must be a finite number >= 0")
        for field in ("seq", "queue_len", "mem_free_bytes"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise HeartbeatError(f"{field} must be an integer >= 0")
        if self.pacing is not None:
            if not isinstance(self.pacing, dict) or set(self.pacing) != set(PACING_FIELDS):
                raise HeartbeatError(f"pacing must be an object with exactly {list(PACING_FIELDS)}")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                       for v in self.pacing.values()):
                raise HeartbeatError("pacing values must be finite numbers >= 0")


def encode(heartbeat):
    body = json.dumps(asdict(heartbeat), separators=(",", ":")).encode()
    if len(body) > MAX_PAYLOAD:
        raise HeartbeatError("heartbeat too large")
    return MAGIC + body


def decode(payload):
    """Parse a UDP payload into a Heartbeat, or raise HeartbeatError."""
    if not payload.startswith(MAGIC):
        raise HeartbeatError("bad magic")
    body = payload[len(MAGIC):]
    if len(body) > MAX_PAYLOAD:
        raise HeartbeatError("payload too large")
    try:
        fields = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeartbeatError(f"not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise HeartbeatError("payload must be a JSON object")
    known = set(Heartbeat.__dataclass_fields__)
    required = known - {"pacing"}
    if not required <= set(fields) <= known:
        raise HeartbeatError(f"fields must be {sorted(required)}, and optionally 'pacing'")
    if not all(isinstance(fields[k], str) for k in ("name", "role", "ip")):
        raise HeartbeatError("name, role and ip must be strings")
    return Heartbeat(**fields)

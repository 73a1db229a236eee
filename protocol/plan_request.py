"""Plan requests and replies between end devices and the controller.

A device asks for a plan with a UDP datagram to ``PLAN_PORT`` (broadcast on its
subnet, like heartbeats): the access switch hands it to the controller as a
packet-in and the controller answers with a packet-out datagram to the device's
source port. The same JSON bodies are accepted by ``POST /sdncep/v1/plan``.
Payload: ``MAGIC`` + a JSON object, at most ``MAX_BODY`` bytes; anything else is
refused with ``PlanProtocolError``.
"""

import ipaddress
import json
import math
import re
from dataclasses import asdict, dataclass

from agents.registry import METHODS as REGISTERED, valid_method_name

PLAN_PORT = 47475
MAGIC = b"SDNCEP-PLAN1"
MAX_BODY = 1400            # fits one Ethernet frame with headers
MAX_FEATURES = 32
METHODS = tuple(REGISTERED)
MAX_HOPS = 8
MAX_IN_FLIGHT = 100_000
MAX_ATTEMPTS = 8
RETRY_KINDS = ("late", "failed")
_TASK_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MODEL = re.compile(r"^[a-z0-9_]{1,24}$")


class PlanProtocolError(ValueError):
    """A malformed plan request or reply."""


def _is_ipv4(text):
    try:
        ipaddress.IPv4Address(text)
    except (ipaddress.AddressValueError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class PlanRequest:
    task_id: str
    model: str
    method: str = "sdn-cep"
    device_ip: str = ""
    features: tuple = ()         # cheap image features for the complexity predictor
    q: float = None              # complexity score, if the device computed it
    reply_port: int = None       # the device's result listener, to pin the result path too
    hops: tuple = ()             # method "fixed" only: ((node, start, end), ...) chosen by the device
    in_flight: int = None        # the device's planned tasks without a result yet; 0 frees what the
                                 # controller still holds for it (its predicted ends may be late)
    # A retry (runtime.device): ``retry`` says why -- "late" (no result when expected:
    # the controller answers keep_waiting while every node in ``previous`` is alive,
    # else plans anew) or "failed" (an error came back, or the connection to a node
    # closed: always a new plan); ``avoid``: nodes the device found unreachable.
    retry: str = None
    attempt: int = 0
    previous: tuple = ()
    avoid: tuple = ()

    def __post_init__(self):
        if not isinstance(self.task_id, str) or not _TASK_ID.match(self.task_id):
            raise PlanProtocolError("task_id must be 1-64 characters of [A-Za-z0-9_.:-]")
        if not isinstance(self.model, str) or not _MODEL.match(self.model):
            raise PlanProtocolError("model must be 1-24 characters of [a-z0-9_]")
        if not valid_method_name(self.method):
            raise PlanProtocolError(f"method must be one of {list(METHODS)} or a plug-in "
                                    f"('package.module:attr' or an entry point name), got {self.method!r}")
        if not isinstance(self.device_ip, str) or not _is_ipv4(self.device_ip):
            raise PlanProtocolError(f"device_ip must be an IPv4 address, got {self.device_ip!r}")
        for name in ("features", "hops", "previous", "avoid"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, ())
            elif not isinstance(getattr(self, name), (list, tuple)):
                raise PlanProtocolError(f"{name} must be a list")
        features = tuple(self.features)
        if len(features) > MAX_FEATURES or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) for f in features):
            raise PlanProtocolError(f"features must be at most {MAX_FEATURES} finite numbers")
        object.__setattr__(self, "features", features)
        if self.q is not None and not (isinstance(self.q, (int, float)) and not isinstance(self.q, bool)
                                       and 0.0 <= self.q <= 1.0):
            raise PlanProtocolError("q must be a number in [0, 1]")
        if self.reply_port is not None and not (isinstance(self.reply_port, int) and not isinstance(self.reply_port, bool)
                                                and 0 < self.reply_port < 65536):
            raise PlanProtocolError("reply_port must be a TCP port number")
        hops = tuple(tuple(h) for h in self.hops if isinstance(h, (list, tuple)))
        if len(hops) != len(self.hops) or len(hops) > MAX_HOPS or not all(
                len(h) == 3 and isinstance(h[0], str) and len(h[0]) <= 64
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in h[1:])
                for h in hops):
            raise PlanProtocolError(f"hops must be at most {MAX_HOPS} [node, start, end] triples")
        if (self.method == "fixed") != bool(hops):
            raise PlanProtocolError("hops are required with method 'fixed' and only with it")
        object.__setattr__(self, "hops", hops)
        if self.in_flight is not None and not (isinstance(self.in_flight, int) and not isinstance(self.in_flight, bool)
                                               and 0 <= self.in_flight <= MAX_IN_FLIGHT):
            raise PlanProtocolError(f"in_flight must be an integer in 0..{MAX_IN_FLIGHT}")
        if self.retry is not None and self.retry not in RETRY_KINDS:
            raise PlanProtocolError(f"retry must be one of {list(RETRY_KINDS)} or null")
        if not (isinstance(self.attempt, int) and not isinstance(self.attempt, bool)
                and 0 <= self.attempt <= MAX_ATTEMPTS) or (self.attempt > 0) != (self.retry is not None):
            raise PlanProtocolError(f"attempt must be an integer in 0..{MAX_ATTEMPTS}, above 0 exactly "
                                    "when retry is given")
        for name in ("previous", "avoid"):
            ips = tuple(getattr(self, name))
            if len(ips) > MAX_HOPS or not all(isinstance(ip, str) and _is_ipv4(ip) for ip in ips):
                raise PlanProtocolError(f"{name} must be at most {MAX_HOPS} IPv4 addresses")
            object.__setattr__(self, name, ips)

    @classmethod
    def from_mapping(cls, fields):
        if not isinstance(fields, dict):
            raise PlanProtocolError("a plan request must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(fields) - known
        if unknown:
            raise PlanProtocolError(f"unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        missing = {"task_id", "model", "device_ip"} - set(fields)
        if missing:
            raise PlanProtocolError(f"missing field(s) {sorted(missing)}")
        return cls(**fields)


def _frame(body):
    data = json.dumps(body, separators=(",", ":")).encode()
    if len(data) > MAX_BODY:
        raise PlanProtocolError(f"message of {len(data)} bytes exceeds {MAX_BODY}")
    return MAGIC + data


def _unframe(payload):
    if not isinstance(payload, (bytes, bytearray)) or not payload.startswith(MAGIC):
        raise PlanProtocolError("bad magic")
    body = bytes(payload[len(MAGIC):])
    if len(body) > MAX_BODY:
        raise PlanProtocolError("message too large")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PlanProtocolError(f"not JSON: {exc}") from None


def encode_request(request):
    fields = asdict(request)
    fields["features"] = list(request.features)
    fields["hops"] = [list(h) for h in request.hops]
    fields["previous"], fields["avoid"] = list(request.previous), list(request.avoid)
    return _frame(fields)


def decode_request(payload):
    return PlanRequest.from_mapping(_unframe(payload))


def encode_reply(reply):
    """``reply`` is a JSON-able dict: {'task_id', 'ok', ...} (see controller.planner)."""
    return _frame(reply)


def decode_reply(payload):
    reply = _unframe(payload)
    if not isinstance(reply, dict) or "task_id" not in reply or "ok" not in reply:
        raise PlanProtocolError("a reply needs task_id and ok")
    return reply

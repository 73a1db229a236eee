"""The energy policy behind the controller's northbound API, without the web framework.

``decide(payload, attachment, policies)`` takes a JSON-like request (the devices' states
and tasks), the controller's global view of which access switch (AP) each device hangs
off (``attachment``: device name -> switch name), and returns the decisions with the
chosen transmit power, CPU frequency, the model's latency, energy and cost per device.
``controller/energy_rest.py`` only maps ``POST /sdncep/v1/energy/decide`` onto it.

Request::

    {"method": "dqn",                      # or any name in `policies` (optimum, greedy, ...)
     "system": {"edge_ghz": 10, ...},      # optional SystemParams overrides
     "aps": ["a1", "a2"],                  # optional: AP order (default: sorted names in use)
     "devices": [{"name": "d1", "input_bytes": 4e5, "cycles": 5e8, "t_max": 1.0,
                  "f_max": 1.2e9, "kappa": 1e-27, "p_max": 0.3, "gain": 1e-10,
                  "e_total": 3.0, "e_remain": 1.5, "ap": "a1"}, ...],  # "ap": optional
     "unreachable": ["e1"]}                # optional: edge servers a device just failed to reach

Faults: with ``edges`` (agents.energy.edges.choose_edge's input, from the controller's
view), a device whose edge server is not alive or not reachable from its AP is decided
local and its reply says why (``why_local``); the policy decides the other devices among
themselves (a local device shares no band or edge CPU). Every device's reply carries
``local_s``, the time of its task run locally: an offloaded task whose edge fails falls
back to that.

Errors are :class:`RequestError` (a 400); :class:`NotReady` (a device the view does not
place yet, e.g. just after a controller restart) is a refusal that goes away (a 503).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..config import ConfigError, _build
from .config import SystemParams
from .edges import EdgeServer, choose_edge
from .model import Instance, build_tables, evaluate

DEVICE_FIELDS = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")
MAX_DEVICES = 64
MAX_UNREACHABLE = 16
NOT_READY_RETRY_S = 0.5     # a view being rebuilt places a device within a heartbeat or two


class RequestError(ValueError):
    """A decision request the service refuses (HTTP 400)."""


class NotReady(RequestError):
    """A request the controller's view cannot serve yet (HTTP 503 with ``retry_after_s``)."""

    retry_after_s = NOT_READY_RETRY_S


def _system(data: Any) -> SystemParams:
    if data is None:
        return SystemParams()
    if not isinstance(data, Mapping):
        raise RequestError("system must be an object")
    try:
        return _build(SystemParams, data, "system")
    except ConfigError as exc:       # unknown keys come worded "system: ...", bad values not
        text = str(exc)
        raise RequestError(text if text.startswith("system") else f"system: {text}") from None


def instance_of(payload: Mapping, attachment: Mapping[str, str]) -> tuple[Instance, list[str], list[str]]:
    """(Instance, device names, AP names) of a request."""
    if not isinstance(payload, Mapping):
        raise RequestError("the request must be a JSON object")
    unknown = sorted(set(payload) - {"method", "system", "aps", "devices", "unreachable"})
    if unknown:
        raise RequestError(f"unknown key(s) {unknown}; allowed: aps, devices, method, system, unreachable")
    devices = payload.get("devices")
    if not isinstance(devices, list) or not 1 <= len(devices) <= MAX_DEVICES:
        raise RequestError(f"devices must be a list of 1..{MAX_DEVICES} objects")
    names, aps_of, values = [], [], {f: [] for f in DEVICE_FIELDS}
    for k, dev in enumerate(devices):
        if not isinstance(dev, Mapping):
            raise RequestError(f"devices[{k}] must be an object")
        extra = sorted(set(dev) - set(DEVICE_FIELDS) - {"name", "ap"})
        if extra:
            raise RequestError(f"devices[{k}]: unknown key(s) {extra}")
        name = dev.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise RequestError(f"devices[{k}]: name must be a unique non-empty string")
        ap = dev.get("ap", attachment.get(name))
        if not isinstance(ap, str):
            raise NotReady(f"device {name}: no AP given and the controller's view does not know where it is (yet)")
        names.append(name)
        aps_of.append(ap)
        for f in DEVICE_FIELDS:
            v = dev.get(f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise RequestError(f"device {name}: {f} must be a positive number, got {v!r}")
            values[f].append(float(v))
    aps = payload.get("aps") or sorted(set(aps_of))
    if not isinstance(aps, list) or not all(isinstance(a, str) for a in aps) or len(set(aps)) != len(aps):
        raise RequestError("aps must be a list of distinct names")
    missing = sorted(set(aps_of) - set(aps))
    if missing:
        raise RequestError(f"devices attached to {missing}, which are not in aps {aps}")
    system = _system({**(payload.get("system") or {}), "n_aps": len(aps)})
    try:
        inst = Instance(**{f: np.array(values[f]) for f in DEVICE_FIELDS},
                        ap=np.array([aps.index(a) for a in aps_of]), system=system)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    return inst, names, aps


def reported_unreachable(payload: Any) -> list[str]:
    """The edge servers the request says a device could not reach (validated)."""
    names = payload.get("unreachable", []) if isinstance(payload, Mapping) else []
    if (not isinstance(names, list) or len(names) > MAX_UNREACHABLE
            or not all(isinstance(n, str) and n for n in names)):
        raise RequestError(f"unreachable must be a list of at most {MAX_UNREACHABLE} edge server names")
    return names


def _decide_allowed(policy, inst: Instance, tab, allowed: list[int]):
    """(decision vector, repaired): the policy over the devices that may offload, the rest local."""
    if len(allowed) == inst.n:
        d = policy.decide(tab)
        return d.x, d.repaired
    x = np.zeros(inst.n, bool)
    if not allowed:
        return x, 0
    d = policy.decide(build_tables(inst.subset(allowed)))
    x[allowed] = d.x
    return x, d.repaired


def validate(payload: Any, attachment: Mapping[str, str], policies: Mapping[str, Any]):
    """(method, Instance, device names, AP names) of a request, every part of it checked
    (its ``unreachable`` list too); RequestError / NotReady otherwise."""
    method = payload.get("method", "dqn") if isinstance(payload, Mapping) else None
    if method not in policies:
        raise RequestError(f"method must be one of {sorted(policies)}, got {method!r}")
    inst, names, aps = instance_of(payload, attachment)
    reported_unreachable(payload)
    return method, inst, names, aps


def decide(payload: Mapping, attachment: Mapping[str, str], policies: Mapping[str, Any],
           edges: Sequence[EdgeServer] | None = None,
           reachable: Callable[[str, str], bool] | None = None) -> dict:
    """The decisions for a request. ``edges``/``reachable``: the view's edge servers and
    whether a device reaches one (agents.energy.edges.choose_edge); None: no view, the one
    edge server of the model is assumed up."""
    method, inst, names, aps = validate(payload, attachment, policies)
    choice = None if edges is None else choose_edge(edges, names, reachable or (lambda _d, _e: True))
    blocked = {} if choice is None else choice.blocked
    t0 = time.perf_counter()
    tab = build_tables(inst)
    x, repaired = _decide_allowed(policies[method], inst, tab, [i for i, n in enumerate(names) if n not in blocked])
    ms = (time.perf_counter() - t0) * 1e3
    out = evaluate(tab, x)
    k = (out.decisions[0].astype(float) @ tab.ap_onehot)[inst.ap]
    w = inst.system.bandwidth_hz / np.maximum(k, 1)
    rate = np.where(x, w * np.log2(1 + inst.gain * out.power[0] / (inst.system.noise_w_hz * w)), 0.0)
    lt, le = inst.weights()
    return {
        "method": method, "aps": aps, "decide_ms": round(ms, 4), "repaired": repaired,
        "total_cost": float(out.total[0]), "feasible": bool(out.all_feasible[0]),
        **({} if choice is None else choice.reply()),
        "devices": [{"name": n, "ap": aps[inst.ap[i]], "offload": bool(x[i]),
                     "power_w": float(out.power[0, i]), "freq_hz": float(out.freq[0, i]),
                     "rate_bps": float(rate[i]), "latency_s": float(out.latency[0, i]),
                     "energy_j": float(out.energy[0, i]), "cost": float(out.cost[0, i]),
                     "lambda_t": float(lt[i]), "lambda_e": float(le[i]),
                     "feasible": bool(out.feasible[0, i]),
                     "local_s": float(tab.t_loc[i]), "local_feasible": bool(tab.ok_loc[i]),
                     "why_local": blocked.get(n)} for i, n in enumerate(names)],
    }


def default_policies(checkpoint=None) -> dict:
    from .baselines import AllLocal, AllOffload, Exhaustive, GreedyCost
    from .policy import DEFAULT_CHECKPOINT, DqnPolicy
    dqn = DqnPolicy.load(checkpoint or DEFAULT_CHECKPOINT)
    return {p.name: p for p in (dqn, Exhaustive(), GreedyCost(), AllLocal(), AllOffload())}

"""A device's side of the energy-aware offloading live mode: its decision, its task.

Every task ends with a record, and a fault is noticed promptly, as in the SDN-CEP loop
(runtime/retries.py, docs/faults.md):

- :func:`ask_decision`: while the controller refuses connections, drops one, or answers a
  refusal that goes away (503 with ``retry_after_s``: overloaded, view not ready), the
  request is asked again after a backoff (0.1 s doubling to 1 s, or the server's
  ``retry_after_s``, clamped and jittered), for at most ``DECISION_BUDGET_S``; then
  :class:`DecisionUnavailable`. Another 5xx (a fault of the controller's, or a proxy's) is
  retried the same way. A 4xx is bad input: :class:`DecisionRefused` at once, never retried.
- :func:`offload`: one task to the edge worker (runtime.energy_worker). A refused, reset
  or closed connection, a refusal (``overloaded``), a send with no progress for
  ``STALL_S`` (the standard of protocol.wire.SendStalled), an input still not sent or no
  answer by the task's check time (``LATE_FACTOR`` x its model latency + ``LATE_SLACK_S``),
  or an answer that is not the worker's is an :class:`EdgeFailure`.
- :func:`run_task`: an offloaded task whose edge fails runs on the device (which can
  always compute) once, counted as retried with the reason; a task that cannot run at all
  ends with an explicit error code.
"""
from __future__ import annotations

import http.client
import json
import math
import random
import socket
import struct
import time
import urllib.error
import urllib.request

from runtime.energy_worker import paced_kernel

DECISION_BUDGET_S = 20.0           # as a device's plan requests in the SDN-CEP loop
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.1, 1.0
STALL_S = 2.0
LATE_FACTOR, LATE_SLACK_S = 2.0, 1.0
CHUNK = 1 << 16


class Temporary(Exception):
    """A refusal that goes away: ask again after ``retry_after_s``."""

    def __init__(self, message, retry_after_s):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DecisionRefused(Exception):
    """The controller refused the request as bad input (a 4xx): asking again cannot help."""


class DecisionUnavailable(Exception):
    """No decision within the retry budget; ``reasons`` says what each attempt met."""

    def __init__(self, message, reasons):
        super().__init__(message)
        self.reasons = reasons


class EdgeFailure(Exception):
    """The edge server did not run the task; ``code`` names why."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


# -- the decision ------------------------------------------------------------------
def http_post(url, timeout=5.0):
    """post(payload) -> reply dict for :func:`ask_decision`: a 503 is :class:`Temporary`,
    another 4xx/5xx :class:`DecisionRefused`; connection faults raise OSError."""
    def post(payload):
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return json.loads(reply.read().decode())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read().decode())
            except (ValueError, OSError):
                body = {}
            body = body if isinstance(body, dict) else {}
            message = f"HTTP {exc.code}: {body.get('error', exc.reason)}"
            if exc.code >= 500:
                raise Temporary(message, retry_wait(body.get("retry_after_s"))) from None
            raise DecisionRefused(message) from None
    return post


def retry_wait(advised):
    """The server's ``retry_after_s`` if it is a sane number (else the first backoff),
    clamped to [FIRST_BACKOFF_S, MAX_BACKOFF_S], with up to 20 % jitter so that devices
    refused together do not all ask again at the same instant."""
    wait = advised if isinstance(advised, (int, float)) and not isinstance(advised, bool) \
        and math.isfinite(advised) else FIRST_BACKOFF_S
    return min(max(wait, FIRST_BACKOFF_S), MAX_BACKOFF_S) * (1 + 0.2 * random.random())


def ask_decision(post, payload, budget_s=DECISION_BUDGET_S, sleep=time.sleep, clock=time.monotonic):
    """(reply, {"attempts", "waited_s", "reasons"}): ``post(payload)`` until it answers."""
    start, backoff, reasons = clock(), FIRST_BACKOFF_S, []
    while True:
        try:
            reply = post(payload)
            return reply, {"attempts": len(reasons) + 1, "waited_s": clock() - start, "reasons": reasons}
        except DecisionRefused:
            raise
        except Temporary as exc:
            reasons.append(str(exc))
            wait = exc.retry_after_s
        except (OSError, http.client.HTTPException, ValueError) as exc:   # refused, reset, cut short
            reasons.append(f"{type(exc).__name__}: {exc}")
            wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF_S)
        if clock() - start + wait > budget_s:
            raise DecisionUnavailable(f"no decision within {budget_s:g} s after {len(reasons)} attempts "
                                      f"(last: {reasons[-1]})", reasons)
        sleep(wait)


# -- the task ------------------------------------------------------------------------
def check_after(model_s):
    """Seconds after its start by which an offloaded task must have its answer."""
    return LATE_FACTOR * max(model_s or 0.0, 0.0) + LATE_SLACK_S


def _send_progressing(sock, data, deadline):
    """Send ``data``; an EdgeFailure on no progress for STALL_S, or past ``deadline``
    (a path slower than the model is noticed at the task's check time, not at the end)."""
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        left = deadline - time.time()
        if left <= 0:
            raise EdgeFailure("no_reply", f"input not sent by the task's check time ({sent} of {len(view)} bytes)")
        sock.settimeout(min(STALL_S, left))       # each send() returns once some bytes went out
        try:
            sent += sock.send(view[sent:sent + CHUNK])
        except TimeoutError:
            if left <= STALL_S:
                continue                          # the deadline, checked above
            raise EdgeFailure("send_stalled", f"no progress for {STALL_S:g} s after {sent} bytes") from None


def _answer(lines, sock, deadline):
    sock.settimeout(max(deadline - time.time(), 0.01))
    try:
        line = lines.readline()
    except TimeoutError:
        raise EdgeFailure("no_reply", "no answer by the task's check time") from None
    if not line:
        raise EdgeFailure("closed", "the edge worker closed the connection")
    try:
        reply = json.loads(line)
    except ValueError:
        raise EdgeFailure("bad_reply", f"not JSON: {line[:80]!r}") from None
    if not isinstance(reply, dict):
        raise EdgeFailure("bad_reply", f"not an object: {line[:80]!r}")
    if not reply.get("ok"):
        raise EdgeFailure(reply.get("error") or "refused", reply.get("message") or "refused")
    return reply


def offload(edge, payload, edge_s, model_s, started):
    """Send one task to ``edge`` ("ip:port"); its answer, or :class:`EdgeFailure`."""
    host, port = edge.rsplit(":", 1)
    deadline = started + check_after(model_s)
    try:
        sock = socket.create_connection((host, int(port)), timeout=STALL_S)
    except OSError as exc:
        raise EdgeFailure("connect_failed", str(exc)) from None
    try:
        with sock, sock.makefile("rb") as lines:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = json.dumps({"bytes": len(payload), "edge_s": edge_s}).encode()
            _send_progressing(sock, struct.pack("!I", len(head)) + head, deadline)
            _answer(lines, sock, deadline)            # go on, or a refusal (overloaded)
            _send_progressing(sock, payload, deadline)
            reply = _answer(lines, sock, deadline)
    except OSError as exc:                            # reset, broken pipe
        raise EdgeFailure("connection_lost", str(exc)) from None
    times = [reply.get("received"), reply.get("done")]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times):
        raise EdgeFailure("bad_reply", f"no received/done times in {str(reply)[:80]}")
    return reply


def run_task(job, send=offload, local=paced_kernel, clock=time.time):
    """Run one task as decided (``job["mode"]``: local or offload) and return its record;
    an edge failure runs it locally (``job["local_s"]``) instead."""
    payload = bytes(int(job.get("bytes", 0))) if job["mode"] == "offload" else b""
    while clock() < job["start_at"]:
        time.sleep(min(0.01, max(0.0, job["start_at"] - clock())))
    t0 = clock()
    record = {"name": job["name"], "mode": job["mode"], "ran": job["mode"], "status": "ok", "retries": 0,
              "retry_reason": None, "error_code": None, "started_at": t0}
    if job["mode"] == "offload":
        try:
            reply = send(job["edge"], payload, job["edge_s"], job.get("model_s"), t0)
            done = clock()
            return {**record, "latency_s": done - t0, "done_at": done, "upload_s": reply["received"] - t0,
                    "edge_s_measured": reply["done"] - reply["received"]}
        except EdgeFailure as exc:
            record.update(ran="local", retries=1, retry_reason=str(exc), edge_failed_after_s=clock() - t0)
    local_s = job.get("local_s")
    if not isinstance(local_s, (int, float)) or not math.isfinite(local_s) or local_s < 0:
        return _failed(record, t0, clock, "no_local_run", f"no local run time for this task ({local_s!r})")
    try:
        local(local_s)
    except Exception as exc:  # noqa: BLE001 - the task must end with a record, whatever broke
        return _failed(record, t0, clock, "local_failed", f"{type(exc).__name__}: {exc}")
    done = clock()
    return {**record, "latency_s": done - t0, "done_at": done}


def _failed(record, t0, clock, code, message):
    done = clock()
    return {**record, "status": "error", "error_code": code, "error": message, "latency_s": done - t0,
            "done_at": done}

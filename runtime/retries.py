"""A device's tasks once sent: their results, their deadlines and their retries.

Every task ends with a result or an explicit error, and a node that fails under a
task is noticed promptly, not at the task's full timeout:

- an ERROR frame whose code is a failure of the path (``RETRYABLE``), or the
  device's connection to the node its last copy went to closing (the worker
  died): the task is planned again at once, avoiding that node if it is gone
  (closed, or refusing connections);
- no result by its check time (``LATE_FACTOR`` x the predicted latency +
  ``LATE_SLACK_S``): the device asks the controller, which answers keep_waiting
  while every node of the plan is alive (a slow task is not copied onto a loaded
  network) and plans anew otherwise (a host link down, a node gone quiet).

A task is planned again at most ``MAX_RETRIES`` times, then fails with
``retries_exhausted`` (a late one at the limit is still asked about, and kept while
its nodes live). The first result of any of its copies wins; the others are
dropped when they come.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from protocol.plan_request import PlanProtocolError
from runtime.client import OK

log = logging.getLogger("runtime.device")

RETRYABLE = frozenset({"send_failed", "next_hop_unreachable", "overloaded"})
MAX_RETRIES = 3
LATE_FACTOR, LATE_SLACK_S = 2.0, 1.0
POLL_S = 0.05


def check_after(predicted_s):
    """Seconds after sending at which a task with no result is looked into."""
    return LATE_FACTOR * max(predicted_s or 0.0, 0.0) + LATE_SLACK_S


@dataclass
class SentTask:
    """One task after it was sent: its record so far and the copies in flight."""

    base: dict           # the record: task, plan, predictions (runtime.device)
    arrived: float       # when it arose (epoch s); its timeout counts from here
    x: object            # its input, kept for a retry
    plan: object         # protocol.task_plan.WirePlan it was last sent on
    predicted_s: float
    ids: list            # wire task ids of its copies
    check_at: float = 0.0
    retries: int = 0
    reasons: list = field(default_factory=list)
    avoid: set = field(default_factory=set)     # nodes found unreachable: never planned again for it
    backoff_until: float = 0.0


def plan_ips(plan):
    return [hop.host for hop in plan.hops]


class Watcher:
    """Watches the sent tasks of one run on its own thread (:meth:`run`).

    ``replan(task, kind, avoid)`` asks the controller again (kind "late" or
    "failed") and returns its reply dict; ``resend(task, reply)`` sends the task on
    the reply's plan and returns (that plan, the copy's wire id); ``record(task, result)`` and
    ``failed(task, code, message)`` make the task's final record.
    """

    def __init__(self, client, replan, resend, record, failed, timeout):
        self.client, self.replan, self.resend = client, replan, resend
        self.record, self.failed, self.timeout = record, failed, timeout
        self.records = []
        self._live = []
        self._lock = threading.Lock()
        self.sending_done = threading.Event()
        self._quiet_until = 0.0   # the controller did not answer: ask again for no task before this

    def watching(self):
        """Tasks sent and not ended yet."""
        with self._lock:
            return len(self._live)

    def add(self, task):
        task.check_at = time.time() + check_after(task.predicted_s)
        with self._lock:
            self._live.append(task)

    def run(self):
        while True:
            with self._lock:
                live = list(self._live)
            if not live and self.sending_done.is_set():
                return self.records
            dead = self.client.closed_peers()
            for task in live:
                try:
                    ended = self._step(task, dead, time.time())
                except Exception as exc:  # noqa: BLE001 - one bad reply must not strand every task
                    log.exception("task %s: watcher error", task.base["task_id"])
                    ended = self._finish(task, self.failed(task, "internal", f"{type(exc).__name__}: {exc}"))
                if ended:
                    with self._lock:
                        self._live.remove(task)
            time.sleep(POLL_S)

    def _finish(self, task, record):
        for task_id in task.ids:
            self.client.discard(task_id)
        record.update(retries=task.retries, retry_reasons=";".join(task.reasons) or None)
        self.records.append(record)
        return True

    def _step(self, task, dead, now):
        """Move one task on; True once it has its final record."""
        results = [r for r in map(self.client.result, task.ids) if r is not None]
        ok = next((r for r in results if r.status == OK), None)
        if ok is not None:
            return self._finish(task, self.record(task, ok))
        if now - task.arrived >= self.timeout:
            last = results[-1] if results else None
            return self._finish(task, self.record(task, last) if last else
                                self.failed(task, "timeout", f"no reply within {self.timeout:.1f}s"))
        first = task.plan.hops[0]
        lost = (first.host, first.port) in dead     # the connection its last copy went out on
        if lost:
            task.avoid.add(first.host)
        if now < self._quiet_until:
            return False
        error = results[-1] if len(results) == len(task.ids) else None   # every copy failed
        if error is not None and error.error_code not in RETRYABLE:
            return self._finish(task, self.record(task, error))
        if (error is not None or lost) and now >= task.backoff_until:
            if error is not None and error.error_code == "send_failed" and "refused" in (error.error_message or ""):
                task.avoid.add(first.host)          # nothing listens there: the worker is gone
            why = error.error_code if error is not None else f"connection to {first.host} closed"
            return self._retry(task, "failed", why, error)
        if error is None and now >= task.check_at:
            return self._retry(task, "late", "late", None)
        return False

    def _retry(self, task, kind, why, error):
        exhausted = task.retries >= MAX_RETRIES
        if exhausted and kind == "failed":
            return self._exhausted(task, why)
        # a late task at the limit is still asked about: while its copy's nodes live it
        # may yet come back (keep_waiting costs no retry), and it is given up otherwise
        try:
            reply = self.replan(task, kind, sorted(task.avoid))
        except (OSError, RuntimeError, ValueError, PlanProtocolError) as exc:   # no answer: look again later
            log.warning("task %s: no new plan (%s)", task.base["task_id"], exc)
            reply = None
            self._quiet_until = time.time() + 1.0
        if reply is None or not reply.get("ok"):
            if kind == "late":     # nothing has failed yet: the controller may be restarting
                task.check_at = time.time() + check_after(task.predicted_s)
                return False
            task.retries += 1
            task.reasons.append(f"{why}->no_plan")
            task.backoff_until = task.check_at = time.time() + 0.5
            if error is not None and task.retries >= MAX_RETRIES:
                return self._finish(task, self.record(task, error))
            return False
        if reply.get("keep_waiting"):
            task.check_at = time.time() + check_after(task.predicted_s)
            return False
        if exhausted:
            return self._exhausted(task, why)
        plan, task_id = self.resend(task, reply)
        task.retries += 1
        task.reasons.append(why)
        task.plan = plan
        task.base["plan"] = str(plan)
        task.ids.append(task_id)
        task.check_at = time.time() + check_after((reply.get("predicted") or {}).get("latency_s"))
        return False

    def _exhausted(self, task, why):
        message = f"gave up after {task.retries} retries ({';'.join(task.reasons + [why])})"
        return self._finish(task, self.failed(task, "retries_exhausted", message))

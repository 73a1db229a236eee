"""A device's watcher (runtime.retries): every task ends with a record, a failed node
is retried around at once, a late task on live nodes is not copied, and retries are
bounded."""
import threading
import time

import pytest

from runtime import retries
from runtime.client import FAILED, OK, TaskResult
from protocol.task_plan import Hop, WirePlan
from tests.polling import wait_until

EDGE = WirePlan("alexnet", (Hop("10.0.0.3", 9000, 0, 5), Hop("10.0.0.6", 9000, 5, 11)))
CLOUD = WirePlan("alexnet", (Hop("10.0.0.6", 9000, 0, 11),))


class FakeClient:
    def __init__(self):
        self.results, self.closed, self.discarded = {}, set(), set()

    def result(self, task_id):
        return self.results.get(task_id)

    def discard(self, task_id):
        self.discarded.add(task_id)

    def closed_peers(self):
        closed, self.closed = self.closed, set()
        return closed


def ok(task_id):
    return TaskResult(task_id, OK, 0.0, time.time(), classes=(1,))


def error(task_id, code, message=None):
    return TaskResult(task_id, FAILED, 0.0, time.time(), error_code=code, error_message=message or code)


class Harness:
    """A watcher over one task, with the controller's answers scripted."""

    def __init__(self, answers, timeout=30.0, predicted=0.05):
        self.client = FakeClient()
        self.asked, self.sent = [], []
        self.answers = list(answers)

        def replan(task, kind, avoid):
            self.asked.append((kind, tuple(avoid), tuple(retries.plan_ips(task.plan))))
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        def resend(task, reply):
            if "hops" not in reply:
                raise KeyError("hops")
            task_id = f"copy{len(self.sent) + 1}"
            self.sent.append(task_id)
            return CLOUD, task_id

        self.watcher = retries.Watcher(self.client, replan, resend,
                                       record=lambda t, r: {"status": r.status, "code": r.error_code,
                                                            "plan": t.base["plan"]},
                                       failed=lambda t, code, msg: {"status": "error", "code": code, "msg": msg},
                                       timeout=timeout)
        self.task = retries.SentTask({"task_id": "t", "plan": str(EDGE)}, time.time(), None, EDGE, predicted,
                                     ["first"])
        self.watcher.add(self.task)
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)
        self.thread.start()
        self.watcher.sending_done.set()

    def until(self, predicate, timeout=5.0):
        wait_until(predicate, timeout, interval=0.01)

    def record(self):
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        (record,) = self.watcher.records
        return record


NEW_PLAN = {"ok": True, "hops": [], "predicted": {"latency_s": 0.05}}


def test_a_closed_connection_to_a_node_replans_at_once_avoiding_it():
    h = Harness([NEW_PLAN])
    h.client.closed.add(("10.0.0.3", 9000))
    h.until(lambda: h.sent)
    assert h.asked == [("failed", ("10.0.0.3",), ("10.0.0.3", "10.0.0.6"))]
    h.client.results["copy1"] = ok("copy1")
    record = h.record()
    assert record["status"] == OK and record["plan"] == str(CLOUD)
    assert record["retries"] == 1 and "closed" in record["retry_reasons"]
    assert {"first", "copy1"} <= h.client.discarded


def test_a_path_error_is_retried_and_a_task_error_is_not():
    h = Harness([NEW_PLAN])
    h.client.results["first"] = error("first", "next_hop_unreachable")
    h.until(lambda: h.sent)
    h.client.results["copy1"] = ok("copy1")
    assert h.record()["retries"] == 1
    h = Harness([])
    h.client.results["first"] = error("first", "bad_shape")
    assert h.record() == {"status": FAILED, "code": "bad_shape", "plan": str(EDGE), "retries": 0,
                          "retry_reasons": None}


def test_a_late_task_on_live_nodes_is_not_copied():
    h = Harness([{"ok": True, "keep_waiting": True}] * 3, predicted=0.0)
    retries_at = retries.LATE_SLACK_S
    h.until(lambda: h.asked, timeout=retries_at + 2)
    assert h.asked[0][0] == "late" and not h.sent
    h.client.results["first"] = ok("first")
    assert h.record()["retries"] == 0


def test_retries_are_bounded_and_the_end_is_explicit():
    h = Harness([NEW_PLAN] * retries.MAX_RETRIES)
    refused = "[Errno 111] Connection refused"
    h.client.results["first"] = error("first", "send_failed", refused)
    for n in range(1, retries.MAX_RETRIES + 1):
        h.until(lambda n=n: len(h.sent) == n)
        h.client.results[f"copy{n}"] = error(f"copy{n}", "send_failed", refused)
    record = h.record()
    assert record["code"] == "retries_exhausted" and record["retries"] == retries.MAX_RETRIES
    assert h.asked[0][1] == ("10.0.0.3",)        # refused: nothing listens on the first hop, avoided


def test_a_stalled_send_is_retried_without_blaming_the_node():
    h = Harness([NEW_PLAN])
    h.client.results["first"] = error("first", "send_failed", "send stalled: no progress for 2.0 s")
    h.until(lambda: h.sent)
    assert h.asked == [("failed", (), ("10.0.0.3", "10.0.0.6"))]


def test_a_late_copy_at_the_retry_limit_is_kept_while_its_nodes_live():
    h = Harness([NEW_PLAN] * retries.MAX_RETRIES + [{"ok": True, "keep_waiting": True}] * 5, predicted=0.0)
    for n in range(1, retries.MAX_RETRIES + 1):
        h.client.results[f"copy{n - 1}" if n > 1 else "first"] = error("x", "overloaded")
        h.until(lambda n=n: len(h.sent) == n)
    h.until(lambda: h.asked[-1][0] == "late", timeout=retries.LATE_SLACK_S + 3)     # asked, not given up
    h.client.results[f"copy{retries.MAX_RETRIES}"] = ok("last")
    assert h.record()["status"] == OK


def test_a_watcher_error_ends_the_task_with_an_explicit_record():
    h = Harness([{"ok": True}])                  # a plan reply without hops: resend raises
    h.client.results["first"] = error("first", "next_hop_unreachable")
    assert h.record()["code"] == "internal"


def test_a_task_that_never_answers_times_out_with_a_record():
    h = Harness([OSError("controller away")] * 5, timeout=retries.LATE_SLACK_S + 0.6, predicted=0.0)
    assert h.record()["code"] == "timeout"
    assert h.asked and h.asked[0][0] == "late"   # it asked, got no answer, and waited


def test_the_first_result_of_any_copy_wins():
    h = Harness([NEW_PLAN])
    h.client.closed.add(("10.0.0.6", 9000))
    h.until(lambda: h.sent)
    h.client.results["first"] = ok("first")          # the original came back after all
    assert h.record()["status"] == OK


@pytest.mark.parametrize("predicted", [None, 0.0, 0.4])
def test_a_task_is_looked_into_after_its_predicted_time_and_some_slack(predicted):
    assert retries.check_after(predicted) >= retries.LATE_SLACK_S
    assert retries.check_after(0.4) > retries.check_after(0.0)


def test_the_plan_channel_answers_with_the_reply_to_this_attempt_and_waits_out_refusals():
    import socket

    from protocol.plan_request import PLAN_PORT, PlanRequest, decode_request, encode_reply
    from runtime.device import MIN_RETRY_AFTER_S, PlanChannel

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server.bind(("127.0.0.1", PLAN_PORT))
    except OSError:
        pytest.skip("the plan port is taken on this machine")
    seen = []

    def controller():
        with server:
            for _ in range(2):
                data, peer = server.recvfrom(4096)
                request = decode_request(data)
                seen.append(time.monotonic())
                if len(seen) == 1:     # a stale answer to attempt 0, then "not yet"
                    server.sendto(encode_reply({"task_id": request.task_id, "attempt": 0, "ok": True}), peer)
                    server.sendto(encode_reply({"task_id": request.task_id, "attempt": request.attempt,
                                                "ok": False, "error": "not ready", "retry_after_s": 0}), peer)
                else:
                    server.sendto(encode_reply({"task_id": request.task_id, "attempt": request.attempt,
                                                "ok": True, "hops": []}), peer)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    channel = PlanChannel("127.0.0.1", prefixlen=32, timeout=2.0, give_up_s=5.0)
    try:
        reply = channel.request(PlanRequest("t1", "alexnet", "dpto", "127.0.0.1", retry="late", attempt=2))
    finally:
        channel.close()
    thread.join(timeout=5)
    assert reply == {"task_id": "t1", "attempt": 2, "ok": True, "hops": []}
    assert seen[1] - seen[0] >= MIN_RETRY_AFTER_S            # a 0 s retry_after is not a resend storm


def test_a_client_hears_when_a_worker_closes_its_pooled_connection():
    import socket

    from runtime.client import Client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    addr = listener.getsockname()
    with listener, Client(listen=("127.0.0.1", 0)) as client:
        client.connect(addr)
        conn, _ = listener.accept()
        assert client.closed_peers() == set()
        conn.close()                                              # the worker died
        deadline = time.monotonic() + 5
        while not (closed := client.closed_peers()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert closed == {addr} and client.closed_peers() == set()

"""The fault table of the pricing live run (scripts.pricing_live.fault_rows): recovery times
and what counts as recovered."""
import numpy as np

from scripts.pricing_live import fault_rows, fault_targets


def test_a_controller_restart_recovers_at_the_first_request_the_new_controller_accepts():
    events = [{"fault": "controller-restart", "at_s": 24.3, "jobs": [4], "restarted_at_s": 29.0}]
    records = {4: {"outcome": "finished"}}
    # job 4 ended before the new controller was up: only the delete of its network was accepted
    (row,) = fault_rows(events, records, {4: [16.3, 31.5]})
    assert row["recovery_s_max"] == 7.2 and row["unrecovered_events"] == 0
    (row,) = fault_rows(events, records, {4: [16.3]})          # nothing accepted after the restart
    assert row["recovery_s_max"] is None and row["unrecovered_events"] == 1


def test_a_worker_fault_recovers_at_the_replacements_first_push():
    events = [{"fault": "worker-kill", "at_s": 6.0, "jobs": [0]}]
    records = {0: {"outcome": "finished", "recoveries": [{"at_s": 6.1, "first_push_s": 6.4}]}}
    (row,) = fault_rows(events, records, {})
    assert row["recovery_s_max"] == 0.4 and (row["finished"], row["failed"], row["lost"]) == (1, 0, 0)


def test_a_fault_the_job_finished_through_without_a_replacement_recovers_at_its_end():
    events = [{"fault": "host-link", "at_s": 20.0, "jobs": [4]}]
    (row,) = fault_rows(events, {4: {"outcome": "finished", "finished_at_s": 21.5, "recoveries": []}}, {})
    assert row["recovery_s_max"] == 1.5 and row["unrecovered_events"] == 0
    (row,) = fault_rows(events, {4: {"outcome": "failed", "recoveries": []}}, {})
    assert row["unrecovered_events"] == 1 and row["failed"] == 1


class _Job:
    def __init__(self, jid, tau):
        self.jid, self.tau_s = jid, np.full((1, 1), tau)


class _LiveJob:
    def __init__(self, jid, kind, iterations, tau=0.05):
        self.job, self.iterations = _Job(jid, tau), iterations
        self.sched = type("Sched", (), {"kind": kind, "w": 0, "p": 0})()


class _Driver:
    def __init__(self, now, started, jobs):
        self._now, self.running = now, {lj.job.jid: lj for lj in jobs}
        self.records = {jid: {"started_at_s": t} for jid, t in started.items()}

    def now(self):
        return self._now


def test_faults_hit_jobs_that_run_not_yet_hit_distributed_with_the_most_time_left_first():
    jobs = [_LiveJob(0, "distributed", 40), _LiveJob(1, "distributed", 200), _LiveJob(2, "centralised", 400),
            _LiveJob(3, "distributed", 400)]
    driver = _Driver(10.0, {0: 6.0, 1: 6.0, 2: 6.0, 3: 9.0}, jobs)     # job 3 started 1 s ago: not yet
    assert [lj.job.jid for lj in fault_targets(driver, [])] == [1, 0, 2]
    assert [lj.job.jid for lj in fault_targets(driver, [{"jobs": [1]}])] == [0, 2, 1]

"""The fault table of the pricing live run (scripts.pricing_live.fault_rows): recovery times
and what counts as recovered."""
from scripts.pricing_live import fault_rows


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

"""The chaos run's tables (scripts.chaos_live): outcomes per fault, lost tasks and
recovery times from the records and the fault log."""
import pytest

from scripts import chaos_live
from scripts.chaos_live import event_rows, fault_table, outage_plans


def task(event, device, arrived, e2e=0.2, status="ok", retries=0, method="sdn-cep", plan="10.0.0.5:9000:0-11",
         predicted=0.2, code=None):
    return {"event": event, "device": device, "arrived_at": arrived, "e2e_s": e2e if status == "ok" else None,
            "status": status, "retries": retries, "method": method, "plan": plan,
            "predicted_latency_s": predicted, "error_code": code}


EVENTS = [{"id": 0, "fault": "worker-kill", "method": "sdn-cep", "at": 10.0, "undone_at": 14.0},
          {"id": 1, "fault": "controller-restart", "method": "oracle", "at": 30.0, "undone_at": 36.0},
          {"id": 2, "fault": "overload", "method": "sdn-cep", "at": 50.0, "undone_at": 50.0}]


E2 = "10.0.0.5"


def test_lost_tasks_failures_and_recovery_per_event():
    on_e2 = f"{E2}:9000:0-8,10.0.0.1:9000:8-11"
    records = [task(0, "d2", 9.0), task(0, "d2", 9.9, e2e=0.9, retries=1, plan="10.0.0.4:9000:0-11"),
               task(0, "d1", 10.05, plan=on_e2),                                   # still on e2: not a new plan
               task(0, "d1", 10.3, e2e=0.2, plan="10.0.0.4:9000:0-11"),
               task(0, "d2", 11.0, status="error", code="retries_exhausted"),
               task(1, "d1", 31.0, e2e=6.0), task(1, "d2", 37.0),
               task(2, "d1", 50.0, e2e=3.0), task(2, "d2", 50.0, e2e=4.5)]
    records[1]["first_plan"] = on_e2                                               # in flight on e2 at the fault
    rows = event_rows(records, EVENTS, {0: 6, 1: 2, 2: 2}, E2)
    kill, restart, burst = rows
    assert (kill["completed"], kill["retried"], kill["failed"], kill["lost"]) == (4, 1, 1, 1)
    assert kill["recovery_s"] == pytest.approx(0.5)       # d1's task at 10.3, done at 10.5
    assert kill["affected"] == 1 and kill["affected_worst_s"] == pytest.approx(0.8)
    assert kill["errors"] == "retries_exhausted"
    assert restart["recovery_s"] == pytest.approx(7.0)    # from the kill: the task that waited out the restart
    assert burst["recovery_s"] == pytest.approx(4.5)      # the burst drained
    table = {row["fault"]: row for row in fault_table(rows)}
    assert table["worker-kill"]["completed_pct"] == pytest.approx(400 / 6) and table["worker-kill"]["lost"] == 1
    assert list(table) == ["worker-kill", "controller-restart", "overload"]


def test_an_event_without_a_completed_task_after_the_fault_is_unrecovered():
    rows = event_rows([task(0, "d2", 9.0)], EVENTS[:1], {0: 1}, E2)
    assert rows[0]["recovery_s"] is None and fault_table(rows)[0]["unrecovered"] == 1


def test_a_fabric_fault_is_judged_by_the_transfers_paths():
    event = {"id": 0, "fault": "fabric-link", "method": "sdn-cep", "at": 10.0, "undone_at": 14.0}
    a, b = chaos_live.FABRIC_LINK
    over = task(0, "d2", 10.1, e2e=2.0)
    over["paths"] = [{"switches": ["a2", a, b, "g1"]}]
    around = task(0, "d2", 10.2, e2e=0.4)
    around["paths"] = [{"switches": ["a2", a, "c2", "l1", "c1", "g1"]}]
    row = event_rows([over, around], [event], {0: 2}, E2)[0]
    assert row["recovery_s"] == pytest.approx(0.6) and row["affected"] == 1


def test_plans_during_the_outage_compare_sdn_cep_with_the_oracle():
    events = [dict(EVENTS[0]), dict(EVENTS[0], id=5, method="oracle", at=100.0, undone_at=104.0)]
    records = [task(0, "d1", 11.0, e2e=0.30, predicted=0.25), task(0, "d2", 15.0, e2e=9.0),   # after: not counted
               task(5, "d1", 101.0, e2e=0.25, method="oracle", predicted=0.20,
                    plan="10.0.0.4:9000:0-11")]
    records[-1]["first_plan"] = "10.0.0.5:9000:0-5,10.0.0.1:9000:5-11"
    out = outage_plans(records, events, "10.0.0.5")
    assert out["sdn-cep"]["tasks"] == 1 and out["ratio_median_e2e"] == pytest.approx(1.2)
    assert out["oracle"]["on_failed_node"] == 1 and out["sdn-cep"]["on_failed_node"] == 0
    assert out["ratio_predicted"] == pytest.approx(1.25)


def test_events_interleave_faults_and_alternate_methods():
    plan = chaos_live.schedule(2)
    assert [f for _, f, _ in plan] == list(chaos_live.FAULTS) * 2
    assert {m for _, _, m in plan[:5]} == {"sdn-cep"} and {m for _, _, m in plan[5:]} == {"oracle"}

"""The live report: cells, paired comparisons, the fidelity monitor, verdicts, files."""
import statistics

import numpy as np
import pytest

from runtime.client import record_hops
from scripts import live_fidelity, live_report, live_sim, live_stats

CELL = {"phase": "load", "wan_mbit": 10, "rate": 6, "seed": 0, "model": "alexnet"}


def record(method, e2e, predicted=None, status="ok", seq=0, device="d1", plan="e1:0-11", round=0, **extra):
    return dict(CELL, method=method, status=status, e2e_s=e2e if status == "ok" else None,
                predicted_latency_s=predicted or e2e, predicted_cost=0.01, controller_overhead_s=0.004,
                seq=seq, device=device, round=round, plan=plan, **extra)


def cell_records(ours=0.20, theirs=0.25, n=12, theirs_plan="cloud:0-11"):
    rows = []
    for seq in range(n):
        for device in ("d1", "d2"):
            noise = 0.001 * ((seq * 7 + len(device)) % 5)
            rows += [record("sdn-cep", ours + noise, seq=seq, device=device),
                     record("dpto", theirs + noise, seq=seq, device=device, plan=theirs_plan),
                     record("oracle", ours + noise, seq=seq, device=device)]
    return rows


def test_paired_comparison_twins_tasks_and_tests_the_difference():
    rows = cell_records()
    rows.append(record("dpto", 9.0, seq=0, device="d1", round=1))  # no twin: left out
    pair = live_stats.paired([r for r in rows if r["method"] == "sdn-cep"], [r for r in rows if r["method"] == "dpto"])
    assert pair["pairs"] == 24 and pair["same_plan"] == 0 and pair["different_share"] == 1.0
    assert pair["median_diff_s"] == pytest.approx(-0.05)
    assert pair["ci_low_s"] == pytest.approx(-0.05) == pair["ci_high_s"] and pair["wilcoxon_p"] < 1e-4
    assert live_stats.judged(pair) is True


def test_same_plans_are_not_counted_and_a_slower_sdn_cep_is_not_a_win():
    same = cell_records(theirs_plan="e1:0-11")
    ours = [r for r in same if r["method"] == "sdn-cep"]
    assert live_stats.judged(live_stats.paired(ours, [r for r in same if r["method"] == "dpto"])) is None
    slower = cell_records(ours=0.30)
    pair = live_stats.paired([r for r in slower if r["method"] == "sdn-cep"],
                             [r for r in slower if r["method"] == "dpto"])
    assert pair["wilcoxon_p"] > 0.5 and live_stats.judged(pair) is False
    assert live_stats.wilcoxon_less([0.0, 0.0]) == 1.0


def test_summary_verdict_fidelity_and_files(tmp_path):
    records = cell_records() + [dict(record("dpto", 0.0, status="timeout"), seq=99),
                                dict(record("oracle", 0.1), phase="warmup")]
    runs = [dict(CELL, method="sdn-cep", round=0, node="e1", paced_hops=50, overruns=0, overrun_s=0.0, real_s=1.0,
                 emulated_s=5.0),
            dict(CELL, method="dpto", round=0, node="e2", paced_hops=50, overruns=2, overrun_s=0.01, real_s=1.0,
                 emulated_s=5.0)]
    summary = live_report.write_all(records, tmp_path, fidelity_runs=runs)
    (cell,) = summary["cells"]
    assert cell["fidelity"]["overloaded"]
    assert "2 of 100 paced hops overran (2.0%): e2 2/50" in cell["fidelity"]["reasons"][0]
    (seed,) = summary["verdict"]
    assert seed["baselines"]["dpto"] == {"cells": 1, "won": 1, "ok": True}
    assert seed["baselines"]["only-cloud"]["cells"] == 0 and seed["near_oracle"] == 1
    assert seed["overloaded"] == [cell["name"]]
    assert summary["failed_tasks"] == 1 and summary["lost_tasks"] == 0
    for name in ("latency_vs_load.png", "paired_diffs.png", "fidelity.png", "records.csv", "summary.json"):
        assert (tmp_path / name).exists(), name
    text = live_report.latency_table(summary)
    assert "EMULATION OVERLOADED" in text and "SDN-CEP faster" in text


def test_link_fidelity_charges_transfers_to_their_bottleneck_while_busy():
    rates = live_fidelity.link_rates([("a1", "l1", 100.0, "access"), ("l1", "c1", 100.0, "fabric"),
                                      ("c1", "g1", 50.0, "wan")], wan_mbit=10)
    bits = 8 * 602112 * live_fidelity.WIRE_PER_PAYLOAD
    rows = []
    for i, start in enumerate((0.0, 0.2, 2.0)):   # two overlap: the WAN is busy from 0 to 2 * T + 0.2
        rows.append(record("only-cloud", 1.0, seq=i, paths=[{"switches": ["a1", "l1", "c1", "g1"]}],
                           h0_name="cloud", h0_range="0-11", h0_first_byte_at=start,
                           h0_arrived_at=start + (2 * bits / 10e6 if i < 2 else bits / 10e6)))
    links = live_fidelity.link_fidelity(rows, rates)
    assert set(links) == {"c1-g1"}                    # not the faster links on the way
    wan = links["c1-g1"]
    assert wan["transfers"] == 3 and wan["ratio"] == pytest.approx(3 * bits / 10e6 / wan["busy_s"] / 1, rel=1e-9)
    assert wan["busy_s"] == pytest.approx(0.2 + 2 * bits / 10e6 + bits / 10e6)
    slow = [dict(r, h0_arrived_at=r["h0_first_byte_at"] + 3 * bits / 10e6) for r in rows[2:]]
    verdict = live_fidelity.cell_fidelity(slow, [], rates)
    assert verdict["overloaded"] and "link c1-g1" in verdict["reasons"][0]


def test_busy_time_is_the_union_of_intervals():
    assert live_fidelity.busy_time([(0, 1), (0.5, 2), (3, 4)]) == 3
    assert live_fidelity.busy_time([]) == 0


def test_bootstrap_interval_brackets_the_median():
    diffs = np.random.default_rng(0).normal(-0.02, 0.01, 60)
    low, high = live_stats.median_interval(diffs)
    assert low < np.median(diffs) < high and high < 0


def test_the_simulator_replays_each_cell_with_its_arrivals():
    from topologies.spec import TopologySpec
    rows = []
    for seq, arrival in enumerate((0.1, 0.15, 0.2)):
        for method in ("only-edge", "dpto"):
            rows.append(record(method, 0.3, seq=seq, arrival_s=arrival))
    run = {"topology": dict(TopologySpec().__dict__), "calibration": {"compute": {}, "network": 1.0,
                                                                      "overhead_s": 0.01}}
    summary = live_report.summarize(rows, run)
    (cell,) = summary["cells"]
    # three tasks of d1 on e1 (its nearest), whole AlexNet at 0.15 cores (214 ms) each, back to back
    only_edge = cell["methods"]["only-edge"]["sim_median_s"]
    assert only_edge == pytest.approx(0.01 + 0.0485 + 0.214 + 0.214 - 0.05, abs=0.03)
    assert cell["methods"]["dpto"]["sim_median_s"] < only_edge
    assert summary["verdict"] == []       # no SDN-CEP in the cell: nothing to judge


def test_the_simulator_also_executes_the_plans_the_live_run_chose():
    from topologies.spec import TopologySpec
    spec, cal = dict(TopologySpec().__dict__), {"compute": {}, "network": 1.0, "overhead_s": 0.01}
    rows = [record("only-edge", 0.3, seq=seq, arrival_s=arrival, h0_name=node, h0_range="0-11")
            for seq, (arrival, node) in enumerate(((0.1, "e1"), (0.15, "e1"), (0.2, "e1")))]
    (sim,) = live_sim.replay_cell(rows, spec, 10.0, cal).values()
    assert sim["live_plans_median_s"] == pytest.approx(sim["median_s"])        # the same plans: the same
    for r in rows[1:]:      # live, the later two went to other nodes: no queue behind the first
        r["h0_name"] = "e2" if r["seq"] == 1 else "e3"
    (moved,) = live_sim.replay_cell(rows, spec, 10.0, cal).values()
    assert moved["median_s"] == pytest.approx(sim["median_s"])
    assert moved["live_plans_median_s"] < sim["live_plans_median_s"] - 0.05
    assert record_hops({"h0_name": "e2", "h0_range": "0-8", "h1_name": "cloud", "h1_range": "8-11"}) == (
        ("e2", 0, 8), ("cloud", 8, 11))


def test_markdown_table_bolds_the_comparisons_sdn_cep_won(tmp_path):
    summary = live_report.summarize(cell_records())
    table = live_report.markdown_table(summary)
    header, rule, row = table.split("\n")
    assert header.startswith("| cell | Only-Cloud") and row.count("|") == header.count("|")
    assert "**24/24, p=" in row and "| 252 | 202 | 202 |" in row   # vs DPTO won; DPTO, SDN-CEP, Oracle medians


def test_a_transfer_waiting_for_its_first_byte_on_an_idle_link_is_a_stall():
    rates = live_fidelity.link_rates([("l1", "c1", 100.0, "fabric"), ("c1", "g1", 50.0, "wan")], wan_mbit=20)
    path = [{"switches": ["l1", "c1", "g1"]}, {"switches": ["l1", "c1", "g1"]}]

    def task(seq, sent, first, end, device="d1", edge="e1"):   # edge -> cloud is hop 1
        return record("sdn-cep", 1.0, seq=seq, device=device, plan=f"{edge}:0-8,cloud:8-11", paths=path,
                      h0_name=edge, h0_range="0-8", h1_name="cloud", h1_range="8-11",
                      h1_sent_at=sent, h1_first_byte_at=first, h1_arrived_at=end)
    rows = [task(0, 0.00, 0.01, 0.05),
            task(1, 0.02, 0.05, 0.09),            # behind task 0 on the same connection: no wait of its own
            task(2, 1.00, 1.01, 3.00),            # a long transfer keeps the link busy ...
            task(3, 1.10, 2.50, 2.60, "d2", "e2"),   # ... so this one's wait (another connection) is queueing
            task(4, 4.00, 5.40, 5.45),            # 1.4 s with the link idle: a stall
            task(5, 4.10, 5.45, 5.50, "d2")]      # behind task 4 on e1's connection: the same stall
    (stall,) = live_fidelity.stalls(rows, rates)["c1-g1"]
    assert stall["connection"] == "e1->cloud" and stall["task"] == "sdn-cep d1#4 hop 1"
    assert stall["wait_s"] == pytest.approx(1.4) and stall["idle_s"] == pytest.approx(1.4)
    fidelity = live_fidelity.cell_fidelity(rows, [], rates)
    assert "waited 1.40 s" in fidelity["stall_notes"][0]
    assert not any("first byte" in reason for reason in fidelity["reasons"])   # reported, not counted as overload
    assert live_fidelity.stalls(rows[:4], rates) == {}


def test_repeats_of_a_scenario_are_pooled_and_their_spread_reported():
    from topologies.spec import TopologySpec
    from scripts import live_repeats
    meta = {"topology": dict(TopologySpec().__dict__), "calibration": {"compute": {}, "network": 1.0,
                                                                       "overhead_s": 0.01}}

    def run(ours, theirs):
        rows = cell_records(ours, theirs, n=6)
        for r in rows:
            r["arrival_s"] = 0.2 * r["seq"] + (0.1 if r["device"] == "d2" else 0.0)
        return rows
    first, second = run(0.20, 0.25), run(0.26, 0.27)      # SDN-CEP 30 % slower in the second repeat, DPTO 8 %
    single = live_report.summarize(first, meta)
    pooled = live_repeats.pooled_summary([("a", first, meta, ()), ("b", second, meta, ())])
    (cell,) = pooled["cells"]
    ours = cell["methods"]["sdn-cep"]
    assert ours["repeat_medians_s"] == [pytest.approx(0.202), pytest.approx(0.262)]
    assert ours["repeat_spread"] == pytest.approx(0.262 / 0.202 - 1)
    assert ours["n"] == 24 and ours["median_s"] == pytest.approx(statistics.median(
        [r["e2e_s"] for r in first + second if r["method"] == "sdn-cep"]))
    pair = cell["compare"]["dpto"]           # twins pair within each repeat (-0.05 and -0.01), not across
    assert pair["pairs"] == 24 and pair["median_diff_s"] == pytest.approx(-0.03)
    # the same arrivals give the same simulated tasks in each repeat: the pooled median is one repeat's
    alone = single["cells"][0]["methods"]["dpto"]["sim_median_s"]
    assert cell["methods"]["dpto"]["sim_median_s"] == pytest.approx(alone)
    (verdict,) = pooled["verdict"]
    assert verdict["repeats_apart"] == 2 and verdict["repeat_pairs"] == 3    # SDN-CEP and the Oracle; DPTO agrees
    assert "seed 0: 2/3" in live_report.repeats_table(pooled)
    other_seed = [dict(r, seed=1) for r in first]          # a cell the others lack: left out, not pooled
    three = live_repeats.pooled_summary([("a", first, meta, ()), ("b", second, meta, ()), ("c", other_seed, meta, ())])
    assert [c["name"] for c in three["cells"]] == [cell["name"]] and three["left_out"] == ["load, WAN 10 Mbit/s, "
                                                                                          "6/s per device, seed 1"]
    assert three["cells"][0]["methods"]["sdn-cep"]["repeat_medians_s"][2] is None
    moved = [dict(r, arrival_s=r["arrival_s"] + 0.05) if r["method"] == "dpto" else r for r in second]
    with pytest.raises(live_repeats.NotRepeats, match="DPTO got other arrivals"):
        live_repeats.pooled_summary([("a", first, meta, ()), ("b", moved, meta, ())])
    fewer_edges = dict(meta, topology=dict(meta["topology"], edges=2))
    with pytest.raises(live_repeats.NotRepeats, match="topology differs in edges"):
        live_repeats.pooled_summary([("a", first, meta, ()), ("b", second, fewer_edges, ())])
    with pytest.raises(live_repeats.NotRepeats, match="no run.json"):
        live_repeats.pooled_summary([("a", first, meta, ()), ("b", second, None, ())])


def test_what_tcp_resent_is_summed_per_node_and_shown_beside_the_cell():
    def counted(node, resent=None):
        run = dict(CELL, method="sdn-cep", round=0, node=node, paced_hops=5, overruns=0, overrun_s=0.0)
        return run if resent is None else dict(run, tcp_retransmits=resent)
    runs = [counted("e2", 4), counted("e2", 2), counted("e1", 0), counted("e3")]     # e3: a run before the count
    assert live_fidelity.cell_fidelity([], runs, None)["resent"] == {"e2": 6}
    table = live_report.fidelity_table(live_report.summarize(cell_records(), fidelity_runs=runs))
    assert "TCP resent: e2 6" in table and "e1 0" not in table

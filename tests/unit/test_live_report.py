from scripts import live_report


def record(method, tag, e2e, predicted, status="ok", overhead=0.004):
    return {"phase": tag.split(":")[0], "tag": tag, "method": method, "model": "alexnet", "status": status,
            "e2e_s": e2e if status == "ok" else None, "latency_s": e2e, "predicted_latency_s": predicted,
            "predicted_cost": 0.01, "controller_overhead_s": overhead, "seq": 0}


def test_summary_verdict_and_files(tmp_path):
    records = [record("sdn-cep", "bandwidth:5.0", 0.30, 0.33), record("only-edge", "bandwidth:5.0", 0.40, 0.40),
               record("oracle", "bandwidth:5.0", 0.29, 0.29), record("sdn-cep", "bandwidth:20.0", 0.50, 0.5),
               record("only-cloud", "bandwidth:20.0", 0.45, 0.45), record("oracle", "bandwidth:20.0", 0.44, 0.44),
               record("dpto", "bandwidth:20.0", 0, 0, status="timeout"),
               dict(record("oracle", "warmup", 0.1, 0.1), phase="warmup")]
    summary = live_report.write_all(records, tmp_path)
    verdict = {v["level"]: v for v in summary["verdict"]}
    assert verdict["bandwidth:5.0"]["no_worse_than_best"] and verdict["bandwidth:5.0"]["within_10pct_of_oracle"]
    assert not verdict["bandwidth:20.0"]["no_worse_than_best"]
    assert abs(summary["methods"]["sdn-cep"]["mape"] - (0.03 / 0.30 + 0) / 2) < 1e-9
    assert summary["failed_tasks"] == 1 and summary["lost_tasks"] == 0
    assert "warmup" not in {c["phase"] for c in summary["cells"]}
    assert (tmp_path / "latency_vs_bandwidth.png").exists() and (tmp_path / "records.csv").exists()
    assert "sdn-cep" in live_report.latency_table(summary)


def test_paired_comparison_twins_tasks_by_device_and_sequence():
    records = []
    for seq in range(10):
        for device in ("d1", "d2"):
            ours = dict(record("sdn-cep", "bandwidth:5.0", 0.20, 0.2), seq=seq, device=device, plan="e1:0-11")
            theirs = dict(record("dpto", "bandwidth:5.0", 0.25, 0.2), seq=seq, device=device,
                          plan="e1:0-11" if seq < 4 else "cloud:0-11")
            records += [ours, theirs]
    records.append(dict(record("dpto", "bandwidth:5.0", 9.0, 0.2), seq=0, device="d1", round=1))  # no twin
    pair = live_report.paired(records, "bandwidth:5.0", "sdn-cep", "dpto")
    assert pair["pairs"] == 20 and pair["same_plan"] == 8
    assert abs(pair["median_diff_s"] + 0.05) < 1e-9 and pair["sign_test_p"] < 1e-5
    assert live_report.paired(records, "bandwidth:5.0", "sdn-cep", "oracle") is None


def test_sign_test():
    assert live_report.sign_test([0.0, 0.0]) == 1.0
    assert live_report.sign_test([1, -1, 1, -1]) == 1.0
    assert abs(live_report.sign_test([1] * 6) - 2 / 64) < 1e-12
    assert abs(live_report.sign_test([1, 1, 1, 1, 1, -1]) - 2 * 7 / 64) < 1e-12

"""scripts.bench_live: starting several devices at one instant (its side and the
device's), the rounds, the calibration from warm-up tasks, and its command line."""

import io
import json
import subprocess
import sys
import time

import pytest

from scripts import bench_live

from runtime.device import start_on_stdin
from scripts.bench_live import calibration_of, main, rounds_of, start_together

ECHO_START = "print('ready', flush=True); import sys; print(sys.stdin.readline().strip())"


def _device(code):
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def test_ready_devices_get_one_start_time():
    slow = _device("import time; time.sleep(0.5); " + ECHO_START)
    fast = _device(ECHO_START)
    before = time.time()
    start_together([slow, fast], timeout=10)
    starts = [float(p.communicate(timeout=10)[0].split()[-1]) for p in (slow, fast)]
    assert starts[0] == starts[1] and starts[0] >= before + 0.5  # waited for the slow one


def test_a_device_that_dies_gets_no_start_and_does_not_block_the_others():
    dead = _device("raise SystemExit(3)")
    alive = _device(ECHO_START)
    start_together([dead, alive], timeout=10)
    assert dead.wait(timeout=10) == 3
    assert float(alive.communicate(timeout=10)[0].split()[-1]) > 0


def test_a_silent_device_times_out():
    silent = _device("import sys; sys.stdin.readline()")
    began = time.monotonic()
    start_together([silent], timeout=0.5)
    assert time.monotonic() - began < 5
    silent.communicate(timeout=10)  # closing stdin ends it: it got no start time


def test_device_reads_its_start_time(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("1234.5\n"))
    assert start_on_stdin() == 1234.5
    assert capsys.readouterr().out == "ready\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # the runner closed stdin: no start
    with pytest.raises(SystemExit, match="start time"):
        start_on_stdin()


def test_rounds_alternate_the_order_of_methods_and_split_the_tasks():
    runs = rounds_of(("a", "b", "c"), per_cell=5, rounds=2)
    assert [(r, m) for r, m, _ in runs] == [(0, "a"), (0, "b"), (0, "c"), (1, "c"), (1, "b"), (1, "a")]
    assert [n for _, m, n in runs if m == "a"] == [3, 2]
    assert rounds_of(("a",), per_cell=1, rounds=2) == [(0, "a", 1)]  # no empty runs


def test_bad_levels_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--bandwidths", "5,fast"])
    assert exited.value.code == 2 and "comma-separated numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--repeats", "0"])
    assert exited.value.code == 2 and "--repeats must be at least 1" in capsys.readouterr().err


def test_repeats_run_the_benchmark_again_into_their_own_folders_and_are_judged_pooled(tmp_path, monkeypatch, capsys):
    from topologies.spec import TopologySpec
    ran = []

    def run_once(args, plan, out, argv=None):      # stands in for a testbed run: one cell, two methods
        out.mkdir(parents=True)
        slower = 0.05 * len(ran)
        records = [{"phase": "load", "wan_mbit": 10, "rate": 6, "seed": 0, "model": "alexnet", "method": method,
                    "status": "ok", "e2e_s": base + slower + 0.001 * seq, "predicted_latency_s": base,
                    "predicted_cost": 0.0, "controller_overhead_s": 0.004, "device": "d1", "seq": seq, "round": 0,
                    "arrival_s": 0.3 * seq, "plan": method}
                   for seq in range(5) for method, base in (("only-edge", 0.3), ("dpto", 0.25))]
        (out / "records.json").write_text(json.dumps(records))
        (out / "run.json").write_text(json.dumps({"topology": dict(TopologySpec().__dict__), "calibration": {
            "compute": {}, "network": 1.0, "overhead_s": 0.01}}))
        ran.append(out)
        return 0
    monkeypatch.setattr(bench_live, "run_once", run_once)
    assert main(["--repeats", "2", "--out", str(tmp_path), "--methods", "only-edge,dpto"]) == 0
    assert ran == [tmp_path / "repeat-1", tmp_path / "repeat-2"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    (cell,) = summary["cells"]
    assert cell["methods"]["dpto"]["repeat_medians_s"] == [pytest.approx(0.252), pytest.approx(0.302)]
    assert cell["methods"]["dpto"]["n"] == 10
    assert "Repeats pooled" in (tmp_path / "report.txt").read_text() and "Repeats pooled" in capsys.readouterr().out
    assert json.loads((tmp_path / "manifest.json").read_text())["kind"] == "live-repeats"


def _warmup(compute_s, queue_s=0.0, status="ok", node="edge"):
    return {"status": status, "predicted_compute_s": 0.1 if node == "edge" else 0.05, "predicted_trans_s": 0.1,
            "h0_net_s": 0.12, "h0_recv_s": 0.11, "h0_queue_s": queue_s, "h0_compute_s": compute_s,
            "result_net_s": 0.001,
            "e2e_s": 0.12 + queue_s + compute_s + 0.001 + 0.005}


def test_calibration_compares_measured_with_predicted_and_leaves_waits_out():
    samples = [("e1", _warmup(0.2, queue_s=0.1)), ("e1", _warmup(0.2, queue_s=0.3)),  # a slow node: they queued
               ("cloud", _warmup(0.05, node="cloud")), ("cloud", _warmup(0.05, node="cloud")),
               ("e2", _warmup(9.0, status="timeout"))]
    calibration = calibration_of(samples)
    assert calibration["compute"] == {"e1": pytest.approx(2.0), "cloud": pytest.approx(1.0)}
    assert calibration["network"] == pytest.approx(1.1)     # the bytes' arrival, not the send's set-up
    assert calibration["overhead_s"] == pytest.approx(0.016)  # set-up and the result's way back, not the queue
    assert calibration_of([]) == {"compute": {}, "network": 1.0, "overhead_s": 0.0}

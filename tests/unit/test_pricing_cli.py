"""`sdncep pricing`: help, a tiny run writing its run folder, and the shipped config."""

import json
import subprocess
import sys
from pathlib import Path

from agents.pricing.config import load_pricing_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_loads():
    cfg = load_pricing_config(REPO / "configs" / "pricing.yaml")
    assert cfg.workload.servers == 50 and cfg.prices.kind == "exp"


def test_tiny_run_writes_tables_results_and_manifest(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "sdncep", "pricing", "--parts", "ratio", "--instances", "2",
                           "--methods", "pricing,fcfs", "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "competitive ratio" in done.stdout
    res = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in res["competitive_ratio"]}
    assert set(rows) == {"pricing", "fcfs"} and all(r["worst"] >= 1.0 - 1e-9 for r in rows.values())
    assert (out / "competitive_ratio.csv").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "pricing" and "workload" in manifest["config"]
    bad = subprocess.run([sys.executable, "-m", "sdncep", "pricing", "--parts", "nope"], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert bad.returncode == 2


def test_bench_part_times_both_searches_and_records_the_machine_load(tmp_path):
    out = tmp_path / "bench"
    done = subprocess.run([sys.executable, "-m", "sdncep", "pricing", "--parts", "bench", "--decisions", "4",
                           "--stream-jobs", "6", "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((out / "results.json").read_text())["bench"]
    assert [r["part"] for r in rows] == ["stream", "search", "search", "search", "stream"]
    for r in rows:
        assert 0 < r["wall_ms_p50"] <= r["wall_ms_p99"] <= r["wall_ms_max"] and r["load_1min"] >= 0
    assert all(r["same_as_numpy"] == r["decisions"] == 4 for r in rows if r["part"] == "search")
    assert (out / "bench_decision.csv").is_file() and "one admission decision" in done.stdout

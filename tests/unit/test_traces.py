"""One trace format for simulator, testbed and benchmark; one WiFi-like generator.
The steps of docs/howto/use-your-own-trace.md, run as written."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.config import ConfigError, SimConfig
from agents.sim_env import BandwidthTrace
from agents.traces import LinkRate, TraceError, parse_trace, wifi_trace, write_trace
from topologies import schedule

REPO = Path(__file__).resolve().parents[2]


def test_the_testbed_schedules_the_shared_format_and_generator():
    assert schedule.load_trace is not None and schedule.RateChange is parse_trace.__globals__["RateChange"]
    changes = wifi_trace("c1-g1", 10, seed=3, mean_mbit=20, high_mbit=50)
    buffer = io.StringIO()
    write_trace(changes, buffer)
    buffer.seek(0)
    assert schedule.parse_trace(buffer) == changes


def test_the_simulator_follows_a_trace_file_as_recorded(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("time_s,link,mbit\n0,c1-g1,10\n0,a1-l1,99\n5,g1-c1,2\n")
    trace = BandwidthTrace(str(path), 50.0, 10.0, np.random.default_rng(0))
    assert trace.at(1.0) == 10e6 and trace.at(6.0) == 2e6                  # the WAN rows only, either direction
    assert LinkRate(parse_trace(io.StringIO(path.read_text())), "a1-l1").at(3.0) == 99e6


def test_a_trace_without_the_wan_is_refused_by_the_sim_config(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("time_s,link,mbit\n0,a1-l1,10\n")
    with pytest.raises(ConfigError, match="no rows for link c1-g1"):
        SimConfig(bw_trace=str(path))
    with pytest.raises(TraceError, match="header"):
        parse_trace(io.StringIO("t,link,rate\n"))


def test_howto_use_your_own_trace(tmp_path):
    guide = (REPO / "docs" / "howto" / "use-your-own-trace.md").read_text()
    trace = tmp_path / "my-trace.csv"
    make = [sys.executable, "-m", "topologies.schedule", "wifi", "--link", "c1-g1", "--duration", "30",
            "--mean", "20", "--out", str(trace)]
    assert "python -m topologies.schedule wifi --link c1-g1 --duration 30 --mean 20 --out my-trace.csv" in guide
    subprocess.run(make, check=True, cwd=REPO, timeout=60)
    assert "sdncep sim --trace my-trace.csv --cells 20,50" in guide
    done = subprocess.run([sys.executable, "-m", "sdncep", "sim", "--trace", str(trace), "--cells", "20,50",
                           "--seeds", "1", "--methods", "oracle,dpto", "--out", str(tmp_path / "run")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "run" / "records.json").read_text())
    assert {r["tasks"] for r in rows} == {20, 50}

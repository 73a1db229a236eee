"""The live benchmark runs a policy from outside the repository, named on its command
line alone: the controller loads it from its config and serves it to the devices."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import plugin_policy
from tests.system.conftest import leftovers

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_runs_a_plugin_policy_by_name(tmp_path):
    (tmp_path / "userpolicy.py").write_text(plugin_policy.SOURCE)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "sdncep", "bench", "--methods", f"only-edge,{plugin_policy.NAME}",
         "--skip", "bandwidth,wifi,models", "--loads", "2", "--bandwidths", "20", "--per-cell", "3",
         "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [r for r in json.loads((out / "records.json").read_text()) if r.get("phase") == "load"]
    mine = [r for r in records if r["method"] == plugin_policy.NAME]
    assert len(mine) == 6 and all(r["status"] == "ok" for r in mine)       # 3 tasks from each of 2 devices
    assert all(r.get("policy", plugin_policy.NAME) == plugin_policy.NAME for r in mine)
    assert "NearestCloud" in done.stdout                                     # labelled in the table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["controller"]["policies"] == plugin_policy.NAME
    assert leftovers() == {"interfaces": [], "bridges": [], "processes": []}

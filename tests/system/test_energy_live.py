"""Energy-aware offloading live (issue 14): 8 devices on 2 APs, decisions from the
controller's northbound API, tasks run for real (scripts/energy_live.py, one repeat).
The measured latencies follow the model, the DQN's live cost is near the optimum's, and
offloading through one AP slows as more devices share it."""
import json
from types import SimpleNamespace

from scripts.energy_live import orchestrate


def test_a_live_energy_run_follows_the_model(tmp_path):
    assert orchestrate(SimpleNamespace(seed=3, repeats=1, bandwidth_mhz=5.0, out=str(tmp_path))) == 0
    summary = json.loads((tmp_path / "latest" / "live.json").read_text())
    assert summary["tasks"] >= 8 + 8 + 10
    assert summary["mape_offloaded"] < 0.20 and summary["mape_all"] < 0.20
    assert summary["dqn_live_over_optimum_live"] < 1.10
    measured = [s["measured_mean_s"] for s in summary["share"]]
    assert len(measured) == 4 and all(a < b for a, b in zip(measured, measured[1:]))

"""examples/sb3_maskable_ppo.py at a tiny size: MaskablePPO, a pickle-free export, the plug-in policy."""
import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

from agents.calibration import ProfileStore  # noqa: E402
from agents.config import CostConfig  # noqa: E402
from agents.cost import check_plan  # noqa: E402
from agents.decision import DecisionError, NodeState, Snapshot, Task, decide, view_from_snapshot  # noqa: E402
from agents.features import SlotError  # noqa: E402
from examples import sb3_maskable_ppo, sb3_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STORE = ProfileStore()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("sb3")
    rc = sb3_maskable_ppo.main(["--config", str(ROOT / "configs" / "testbed_sim.yaml"), "--timesteps", "256",
                                "--n-steps", "128", "--batch-size", "64", "--n-epochs", "2", "--bws", "10",
                                "--tasks", "20", "--eval-seeds", "1", "--out", str(out),
                                "--agents", str(ROOT / "checkpoints" / "sdncep-*.pt")])
    assert rc == 0
    return out / "maskable_ppo"


def _snapshot(names=("e1", "e2", "e3"), bw=10e6):
    edges = tuple(NodeState(n, "edge", 0.15 + 0.05 * i, 0.0, i, 4e9, bw, 100e6) for i, n in enumerate(names))
    return Snapshot(edges + (NodeState("cloud", "cloud", 0.35, 0.0, 0, None, 0.0, bw),), now=3.0)


def test_export_has_no_pickle(export):
    npz, meta_path = sb3_policy.export_paths(export)
    with np.load(npz, allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)   # reading an object array would raise
        keys = set(arrays.files)
    with zipfile.ZipFile(npz) as z:                                    # only .npy members
        assert all(n.endswith(".npy") for n in z.namelist())
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == sb3_policy.FORMAT and meta["algorithm"] == "MaskablePPO"
    assert meta["model"] == "alexnet" and meta["edge_names"] == ["e1", "e2", "e3"] and meta["n_edge"] == 3
    assert meta["two_hop"] is False and meta["obs_dim"] == 50 and meta["n_actions"] == 34
    assert {layer["weight"] for layer in meta["actor"]} <= keys and meta["actor"][-1]["weight"] == "action_net.weight"
    assert meta["training"]["timesteps"] >= 256


def test_evaluation_csv(export):
    with open(export.parent / "maskable_ppo_eval.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"maskable-ppo", "sdn-cep-dqn", "sdn-cep", "oracle"}
    assert all(r["bw_mbps"] == "10.0" and r["tasks"] == "20" for r in rows)
    oracle = next(r for r in rows if r["method"] == "oracle")
    assert float(oracle["ratio_to_oracle"]) == 1.0
    assert all(float(r["ratio_to_oracle"]) > 0 for r in rows)


def test_exported_policy_decides_a_feasible_plan(export):
    policy = sb3_policy.SB3Policy(export)
    assert policy.supports("alexnet") and not policy.supports("resnet18")
    cost = CostConfig()
    for names in (("e1", "e2", "e3"), ("e2",), ("x9", "e1")):          # fewer nodes, an unknown name
        for bw in (1e6, 100e6):
            snap = _snapshot(names, bw)
            plan = decide(policy, snap, Task("alexnet"), STORE, cost)
            assert plan.policy == "maskable-ppo" and plan.fallback is None
            assert check_plan(plan, view_from_snapshot(snap, "alexnet", STORE), STORE, cost) == ()
            assert set(plan.nodes) <= set(names) | {"cloud"}
    # the numpy forward pass is a masked argmax
    obs = np.zeros(policy.obs_dim, np.float32)
    z = policy.logits(obs)
    mask = np.zeros(policy.n_actions, bool)
    mask[[0, 5]] = True
    assert policy.act(obs, mask) == (0 if z[0] >= z[5] else 5)


def test_exported_policy_refuses_what_does_not_fit(export):
    policy = sb3_policy.SB3Policy(export)
    with pytest.raises(sb3_policy.WrongModel):
        decide(policy, _snapshot(), Task("resnet18"), STORE)
    with pytest.raises(SlotError):                                     # four edge nodes, three slots
        decide(policy, _snapshot(("e1", "e2", "e3", "e4")), Task("alexnet"), STORE)
    assert issubclass(sb3_policy.WrongModel, DecisionError) and issubclass(sb3_policy.ExportMismatch, DecisionError)
    with pytest.raises(sb3_policy.ExportMismatch):
        policy.logits(np.zeros(7, np.float32))


def test_plugin_factory_reads_the_environment(export, monkeypatch, tmp_path):
    from agents.registry import load_plugin
    monkeypatch.setenv(sb3_policy.ENV_VAR, str(export))
    policy = load_plugin("examples.sb3_policy:from_env", STORE, seed=3)
    assert policy.name == "examples.sb3_policy:from_env" and policy.supports("alexnet")
    plan = decide(policy, _snapshot(), Task("alexnet"), STORE)
    assert plan.policy == "examples.sb3_policy:from_env" and plan.fallback is None
    monkeypatch.setenv(sb3_policy.ENV_VAR, str(tmp_path / "nothing"))
    with pytest.raises(sb3_policy.ExportError, match="no SB3 policy export"):
        sb3_policy.from_env()


def test_a_changed_weights_file_is_refused(export, tmp_path):
    npz, meta = sb3_policy.export_paths(export)
    other = tmp_path / "copy"
    (tmp_path / "copy.json").write_text(meta.read_text())
    with np.load(npz, allow_pickle=False) as arrays:
        weights = {k: arrays[k] for k in arrays.files}
    weights["action_net.bias"] = weights["action_net.bias"] + 1.0
    np.savez(tmp_path / "copy.npz", **weights)
    with pytest.raises(sb3_policy.ExportError, match="sha256"):
        sb3_policy.SB3Policy(other)

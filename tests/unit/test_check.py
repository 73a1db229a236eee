"""`sdncep check`: every problem of every file, each naming the file and the field."""

import json
from pathlib import Path

from sdncep.check import check_files, consistency, main

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "checkpoints" / "sdncep-alexnet"


def problems_of(*paths):
    checked = check_files([str(p) for p in paths])
    return [str(p) for c in checked for p in c.problems] + [str(p) for p in consistency(checked)]


def copy_agent(folder, stem="agent", model=None, truncate=None):
    meta = json.loads(AGENT.with_suffix(".json").read_text())
    if model:
        meta["model"] = model
    (folder / f"{stem}.json").write_text(json.dumps(meta))
    weights = AGENT.with_suffix(".pt").read_bytes()
    (folder / f"{stem}.pt").write_bytes(weights[:truncate] if truncate else weights)
    return folder / f"{stem}.pt"


def test_topology_unknown_key_and_out_of_range_values_all_reported_with_lines(tmp_path):
    topo = tmp_path / "topo.yaml"
    topo.write_text("edges: 3\nwan_mbit: 5000\ncolour: red\ncompute: fast\n")
    found = problems_of(topo)
    assert f"{topo}:2: wan_mbit: wan_mbit must be in 0.1..1000" in found[0]
    assert any(f"{topo}:3: colour: unknown key" in p for p in found)
    assert any(f"{topo}:4: compute:" in p for p in found)


def test_sim_config_problems_name_section_and_key(tmp_path):
    sim = tmp_path / "sim.yaml"
    sim.write_text("sim:\n  n_tasks: -3\n  colour: red\ncost: {}\n")
    found = problems_of(sim)
    assert any(f"{sim}:2: sim.n_tasks:" in p for p in found)
    assert any(f"{sim}:3: sim.colour: unknown key" in p for p in found)


def test_controller_config_bad_values_unknown_options_and_truncated_checkpoint(tmp_path):
    agent = copy_agent(tmp_path, truncate=2000)
    conf = tmp_path / "ctl.conf"
    conf.write_text(f"[sdncep]\npoll_interval = 0\nfoo = 1\nagent_checkpoint = {agent}\n")
    found = problems_of(conf)
    assert any(f"{conf}:2: sdncep.poll_interval:" in p for p in found)
    assert any(f"{conf}:3: sdncep.foo: unknown option" in p for p in found)
    assert any(f"{conf}:4: sdncep.agent_checkpoint: {agent}:" in p and "truncated" in p for p in found)


def test_agent_slots_against_the_topology_and_a_missing_profile(tmp_path):
    topo = tmp_path / "topo.yaml"
    topo.write_text("edges: 4\n")
    agent = copy_agent(tmp_path, model="tinynet")
    found = problems_of(topo, agent)
    assert any(f"{agent}: edge_names: the agent has slots for ['e1', 'e2', 'e3']" in p and "e4" in p
               for p in found)
    assert any(f"{agent}: model: no profile for model 'tinynet'" in p for p in found)


def test_exit_status_is_one_on_errors_and_zero_on_the_shipped_files(tmp_path, capsys):
    bad = tmp_path / "topo.yaml"
    bad.write_bytes(b"edges: \xff\n")
    assert main([str(bad)]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    assert main([str(REPO / "configs" / "testbed_sim.yaml"), str(AGENT.with_suffix(".pt"))]) == 0


def test_an_agent_trained_on_another_observation_is_refused(tmp_path):
    agent = copy_agent(tmp_path)
    meta = json.loads(agent.with_suffix(".json").read_text())
    meta["obs_dim"] -= 1
    agent.with_suffix(".json").write_text(json.dumps(meta))
    found = problems_of(agent)
    assert any("obs_dim, n_actions: the agent sees 49 features" in p and "retrain" in p for p in found)

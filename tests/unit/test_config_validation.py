import json

import pytest

from agents.config import ConfigError, CostConfig, EdgeSpec, SimConfig, config_from_dict, load_config
from agents.decision import NodeState


def test_defaults_are_valid():
    cfg = config_from_dict({})
    assert cfg.sim.model == "alexnet" and 0 <= cfg.cost.weight <= 1


@pytest.mark.parametrize("kw, msg", [
    ({"bw_mbps": -1.0}, "bandwidth"),
    ({"bw_range_mbps": (-5.0, 10.0)}, "bandwidth"),
    ({"lan_mbps": 0.0}, "bandwidth"),
    ({"model": "lenet"}, "unknown model"),
    ({"delta": 1.5}, r"delta must be in \[0, 1\]"),
    ({"delta": -0.1}, r"delta must be in \[0, 1\]"),
    ({"bw_trace": "lte"}, "constant|stepped|wifi"),
    ({"n_tasks": 0}, "n_tasks"),
])
def test_bad_sim_values(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        SimConfig(**kw)


def test_bad_weight():
    with pytest.raises(ConfigError, match="w must be >= 0"):
        CostConfig(w=-0.1)
    with pytest.raises(ConfigError, match="<= 1"):
        CostConfig(w=1.5)
    with pytest.raises(ConfigError, match="Tu/Cu"):
        CostConfig(t_upper_s=5.0, c_upper=1.0)


def test_bad_edge():
    with pytest.raises(ConfigError, match="unknown edge host class"):
        EdgeSpec("x", "edge-huge")
    with pytest.raises(ConfigError, match="access_mbps"):
        EdgeSpec("x", "edge-small", access_mbps=-3)


def test_load_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"sim": {"modle": "alexnet"}}))
    with pytest.raises(ConfigError, match="unknown key.*'modle'"):
        load_config(p)
    p.write_text(json.dumps({"simulation": {}}))
    with pytest.raises(ConfigError, match="top-level"):
        load_config(p)
    p.write_text(json.dumps({"cost": {"prices": {"gpu_per_s": 1}}}))
    with pytest.raises(ConfigError, match="gpu_per_s"):
        load_config(p)


def test_load_yaml_ok_and_bad(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sim:\n  model: resnet18\n  bw_mbps: 20\n  bw_range_mbps: null\n"
                 "  edges:\n    - {name: a, host_class: edge-large}\n"
                 "cost:\n  w: 0.2\n  prices: {wan_per_byte: 2.0e-7}\n")
    cfg = load_config(p)
    assert cfg.sim.model == "resnet18" and cfg.sim.edges[0].name == "a"
    assert cfg.cost.prices.wan_per_byte == 2e-7 and cfg.cost.weight == 0.2
    p.write_text("sim:\n  bw_mbps: -10\n")
    with pytest.raises(ConfigError, match="bandwidth"):
        load_config(p)


def test_frozen():
    cfg = SimConfig()
    with pytest.raises(Exception):
        cfg.model = "vgg16"  # type: ignore[misc]


def test_dqn_args_and_node_state_refuse_bad_values():
    from agents.dqn import Args
    with pytest.raises(ValueError, match="delta"):
        Args(delta=2.0)
    with pytest.raises(ValueError, match="bandwidth"):
        Args(bw_min_mbps=-1.0)
    with pytest.raises(ValueError, match="negative bandwidth"):
        NodeState("e", "edge", 0.5, 0.0, 0, None, -1.0, 1e6)

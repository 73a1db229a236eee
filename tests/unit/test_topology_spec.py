import io

import pytest

from controller.config import ConfigError, ControllerConfig
from topologies import schedule
from topologies.spec import SpecError, TopologySpec, dpid_of


def test_default_layout_has_two_disjoint_paths_between_edges():
    import networkx as nx
    spec = TopologySpec()
    graph = nx.Graph([(a, b) for a, b, *_ in spec.links()])
    assert nx.node_connectivity(graph, "l1", "l2") == 2
    assert [h for h, role, _ in spec.hosts() if role == "edge"] == ["e1", "e2", "e3"]
    assert [cores for _, role, cores in spec.hosts() if role == "edge"] == [0.15, 0.2, 0.1]
    assert spec.compute == "paced" and spec.cloud_cores == 0.35
    assert ("c1", "g1", 50.0, "wan") in spec.links()


def test_dpids_are_unique_and_named():
    spec = TopologySpec(edges=16, access_switches=16)
    dpids = [dpid_of(s) for s in spec.switches()]
    assert len(set(dpids)) == len(dpids)
    assert dpid_of("l2") == "0000000000000022"


@pytest.mark.parametrize("mapping,needle", [
    ({"delay": "5ms"}, "netem"), ({"loss": 1}, "netem"), ({"edges": 0}, "edges"),
    ({"wan_mbit": -5}, "wan_mbit"), ({"edge_cores": []}, "edge_cores"), ({"colour": 1}, "unknown"),
    ({"hosts_first": "yes"}, "hosts_first"),
])
def test_bad_specs_refused_with_message(mapping, needle):
    with pytest.raises(SpecError, match=needle):
        TopologySpec.from_mapping(mapping)


def test_yaml_loading(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("edges: 2\nwan_mbit: 20\nedge_cores: [0.4, 0.2]\n")
    spec = TopologySpec.from_yaml(path)
    assert spec.edges == 2 and spec.wan_mbit == 20 and spec.cores_of_edge(1) == 0.2
    path.write_text("- 1\n")
    with pytest.raises(SpecError, match="mapping"):
        TopologySpec.from_yaml(path)


def test_edge_cloud_cli_refuses_delay_cleanly(tmp_path, capsys):
    from topologies import edge_cloud
    path = tmp_path / "t.yaml"
    path.write_text("delay: 10ms\n")
    assert edge_cloud.main(["--config", str(path)]) == 2
    assert "netem" in capsys.readouterr().err


def test_trace_round_trip_and_wifi_bounds():
    changes = schedule.wifi_trace("c1-g1", 30, seed=1, low_mbit=2, high_mbit=60)
    assert len(changes) == 30 and all(2 <= c.mbit <= 60 for c in changes)
    assert len({c.mbit for c in changes}) > 10
    buffer = io.StringIO()
    schedule.write_trace(changes, buffer)
    buffer.seek(0)
    assert schedule.parse_trace(buffer) == changes


@pytest.mark.parametrize("text", [
    "t,link,mbit\n0,c1-g1,5\n", "time_s,link,mbit\nx,c1-g1,5\n", "time_s,link,mbit\n0,c1g1,5\n",
    "time_s,link,mbit\n0,c1-g1,0\n", "time_s,link,mbit\n-1,c1-g1,5\n",
])
def test_bad_traces_refused(text):
    with pytest.raises(schedule.TraceError):
        schedule.parse_trace(io.StringIO(text))


def test_schedule_runner_applies_in_order_with_fake_clock():
    applied = []
    changes = schedule.parse_trace(io.StringIO("time_s,link,mbit\n0,c1-g1,10\n0,a1-l1,20\n"))
    runner = schedule.ScheduleRunner(changes, lambda ends, mbit: applied.append((ends, mbit)))
    runner.start()
    runner.join(timeout=5)
    assert applied == [(("a1", "l1"), 20.0), (("c1", "g1"), 10.0)]


@pytest.mark.parametrize("kwargs", [{"poll_interval": 0}, {"probe_interval": 0.1}, {"probe_duration": 5},
                                    {"agent_top_k": 0}])
def test_controller_config_validation(kwargs):
    with pytest.raises(ConfigError):
        ControllerConfig(**kwargs)
    assert ControllerConfig(probe_interval=0).probe_interval == 0


def test_host_cpu_period_matches_profiler():
    from models.profiler import DEFAULT_PERIOD_US
    from topologies.spec import CPU_PERIOD_US
    assert CPU_PERIOD_US == DEFAULT_PERIOD_US


def test_host_class_cores_are_the_profiled_host_classes():
    # topologies/ cannot import models/ (torch) under `mn --custom`: keep them equal here.
    from models.host_classes import HOST_CLASSES
    from topologies.spec import HOST_CLASS_CORES
    assert HOST_CLASS_CORES == dict(HOST_CLASSES)
    spec = TopologySpec(edge_cores=["edge-small", 0.15], cloud_cores="edge-large")
    assert spec.edge_cores == (0.2, 0.15) and spec.cloud_cores == 0.5


@pytest.mark.parametrize("mapping,needle", [
    ({"compute": "fast"}, "compute must be one of"), ({"edge_cores": ["edge-huge"]}, "host class"),
    ({"cloud_cores": True}, "cloud_cores"), ({"compute_budget": 2}, "compute_budget"),
    ({"compute_jitter": 1}, "compute_jitter"),
])
def test_bad_compute_keys_refused(mapping, needle):
    with pytest.raises(SpecError, match=needle):
        TopologySpec.from_mapping(mapping)


def test_budget_check_refuses_what_this_machine_cannot_pace():
    default = TopologySpec(worker_port=9000, worker_models="alexnet")
    demand = default.check_budget(machine_cores=2)
    assert set(demand) == {"e1", "e2", "e3", "cloud"} and sum(demand.values()) < 1.0
    # a cloud of a full core keeps a full core busy: refused on two cores at a budget of half
    big = TopologySpec(worker_port=9000, worker_models="alexnet", cloud_cores=1.0)
    with pytest.raises(SpecError, match=r"keep 1\.\d\d cores busy .* cloud 1\.00"):
        big.check_budget(machine_cores=2)
    assert big.check_budget(machine_cores=32)               # a server has room for it
    assert TopologySpec(worker_port=9000, cloud_cores=1.0, compute="cgroup").check_budget(2) == {}
    assert TopologySpec(cloud_cores=1.0).check_budget(2) == {}   # no workers: nothing is paced


def test_cpu_split_gives_the_paced_workers_the_last_cores():
    spec = TopologySpec(worker_port=9000, worker_models="alexnet")
    assert spec.cpu_sets(machine_cores=2) == ((1,), (0,))
    assert spec.cpu_sets(machine_cores=32) == ((31,), tuple(range(31)))   # 0.6 cores of work: one core
    assert TopologySpec(worker_port=9000, worker_models="alexnet", edge_cores=(0.5, 0.5, 0.5),
                        compute_budget=1.0).cpu_sets(machine_cores=8) == ((6, 7), tuple(range(6)))
    assert spec.cpu_sets(machine_cores=1) == (None, None)
    assert TopologySpec(worker_port=9000, cpu_split=False).cpu_sets(machine_cores=2) == (None, None)
    assert TopologySpec(worker_port=9000, compute="cgroup").cpu_sets(machine_cores=2) == (None, None)


def test_sim_config_mirrors_the_testbed():
    spec = TopologySpec(wan_mbit=20.0)
    sim = spec.sim_config("resnet18")
    assert sim.model == "resnet18" and sim.bw_mbps == 20.0 and sim.devices == 2 and sim.uplink_mbps == 100.0
    assert [(e.name, e.share) for e in sim.edges] == [("e1", 0.15), ("e2", 0.2), ("e3", 0.1)]
    assert sim.cloud_share == 0.35 and sim.lan_mbps == 200.0
    assert ("d1", "e1", 2) in sim.distances and ("d2", "e1", 4) in sim.distances
    with pytest.raises(SpecError, match="uplink of its own"):
        TopologySpec(devices=3).sim_config()

"""Regression tests for bad files (issue 16): each used to give a traceback, be
accepted, or end a bandwidth schedule silently."""

import pytest

from agents.traces import RateChange
from topologies.schedule import ScheduleRunner
from topologies.spec import SpecError, TopologySpec


@pytest.mark.parametrize("mapping", [{"edges": True}, {"wan_mbit": True}, {"access_switches": False},
                                     {"worker_port": True}, {"edge_cores": 0.5}, {"cloud_cores": True},
                                     {"edge_cores": [True]}])
def test_booleans_and_scalars_where_numbers_and_lists_belong_are_refused(mapping):
    with pytest.raises(SpecError):
        TopologySpec.from_mapping(mapping)


def test_a_topology_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "topo.yaml"
    path.write_bytes(b"edges: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        TopologySpec.from_yaml(path)


def test_a_trace_naming_a_missing_link_is_refused_before_the_run():
    spec = TopologySpec()
    spec.check_trace([RateChange(0, "c1-g1", 10), RateChange(1, "g1-c1", 5)])
    with pytest.raises(SpecError, match="no link c1-x9"):
        spec.check_trace([RateChange(0, "c1-g1", 10), RateChange(1, "c1-x9", 5)], "my.csv")


def test_the_schedule_goes_on_past_a_row_it_cannot_apply():
    applied = []

    def set_rate(ends, mbit):
        if ends == ("c1", "x9"):
            raise RuntimeError("no such link")
        applied.append((ends, mbit))
    runner = ScheduleRunner([RateChange(0, "c1-g1", 10), RateChange(0, "c1-x9", 5), RateChange(0, "c1-g1", 20)],
                            set_rate)
    runner.start()
    runner.join(timeout=5)
    assert applied == [(("c1", "g1"), 10), (("c1", "g1"), 20)]
    assert [(c.link, reason) for c, reason in runner.failed] == [("c1-x9", "no such link")]

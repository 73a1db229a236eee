"""The controller serves a plug-in policy by name and refuses to start on bad settings."""

import pytest
from ryu import cfg

from protocol.plan_request import PlanRequest
from tests import plugin_policy
from tests.app.conftest import make_app
from tests.app.test_metrics_app import _planning_view


@pytest.fixture
def sdncep_settings(monkeypatch):
    """cfg.CONF.sdncep with overrides that are undone after the test."""
    try:
        cfg.CONF([], project="ryu")
    except cfg.Error:
        pass
    import controller.app  # noqa: F401 -- registers the [sdncep] options
    overridden = []

    def override(**settings):
        for key, value in settings.items():
            cfg.CONF.set_override(key, value, group="sdncep")
            overridden.append(key)
    yield override
    for key in overridden:
        cfg.CONF.clear_override(key, group="sdncep")


def test_a_plugin_policy_named_in_the_config_plans_live(tmp_path, monkeypatch, sdncep_settings):
    name = plugin_policy.install(tmp_path, monkeypatch)
    sdncep_settings(policies=name)
    app = make_app()
    try:
        _planning_view(app)
        reply = app.plan(PlanRequest("t1", "alexnet", name, "10.0.0.1"), app.clock())
        assert reply["ok"] and reply["policy"] == name and reply["fallback"] is None
        assert [hop["node"] for hop in reply["hops"]] == ["cloud"]
        assert app.planner.policies[name].inner.calls == 1
    finally:
        for thread in app._threads:
            thread.kill()


@pytest.mark.parametrize("setting, value, says", [
    ("policies", "nosuchmodule:Policy", "cannot import 'nosuchmodule'"),
    ("agent_checkpoint", "/nonexistent/agent.pt", "agent metadata unreadable"),
])
def test_the_controller_refuses_to_start_on_settings_it_cannot_use(sdncep_settings, setting, value, says):
    sdncep_settings(**{setting: value})
    with pytest.raises(SystemExit, match="refusing to start") as stopped:
        make_app()
    assert says in str(stopped.value) and setting in str(stopped.value)


def test_a_truncated_checkpoint_stops_the_controller_naming_the_file(tmp_path, sdncep_settings):
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet"
    (tmp_path / "agent.json").write_bytes(shipped.with_suffix(".json").read_bytes())
    (tmp_path / "agent.pt").write_bytes(shipped.with_suffix(".pt").read_bytes()[:2000])
    sdncep_settings(agent_checkpoint=str(tmp_path / "agent.pt"))
    with pytest.raises(SystemExit) as stopped:
        make_app()
    assert str(tmp_path / "agent.pt") in str(stopped.value) and "truncated" in str(stopped.value)


def test_an_unknown_option_in_the_config_file_stops_the_controller(tmp_path, monkeypatch, sdncep_settings):
    conf = tmp_path / "ctl.conf"
    conf.write_text("[sdncep]\nprobe_intervall = 5\n")
    monkeypatch.setattr(cfg.CONF, "config_file", [str(conf)], raising=False)
    with pytest.raises(SystemExit) as stopped:
        make_app()
    assert f"{conf}:2: sdncep.probe_intervall: unknown option" in str(stopped.value)


@pytest.mark.parametrize("weights", [b"", b"not a checkpoint\n", bytes(range(256)) * 40, None])
def test_serve_baselines_keeps_the_baselines_and_names_the_bad_file(tmp_path, sdncep_settings, weights):
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "sdncep-alexnet"
    (tmp_path / "agent.json").write_bytes(shipped.with_suffix(".json").read_bytes())
    data = shipped.with_suffix(".pt").read_bytes()
    (tmp_path / "agent.pt").write_bytes(data[: len(data) // 2] if weights is None else weights)   # None: truncated
    sdncep_settings(agent_checkpoint=str(tmp_path / "agent.pt"), on_bad_settings="serve_baselines")
    app = make_app()
    try:
        _planning_view(app)
        assert app.plan(PlanRequest("t1", "alexnet", "dpto", "10.0.0.1"), app.clock())["ok"]
        reply = app.plan(PlanRequest("t2", "alexnet", "sdn-cep", "10.0.0.1"), app.clock())
        assert not reply["ok"] and str(tmp_path / "agent.pt") in reply["error"] and "unavailable" in reply["error"]
    finally:
        for thread in app._threads:
            thread.kill()

"""Plug-in methods: found by module path or entry point, built with what they ask for,
refused with a reason when they cannot serve."""

from importlib.metadata import EntryPoint

import pytest

from agents import registry
from agents.testing import tiny_store
from tests import plugin_policy


def test_a_module_path_builds_the_policy_under_that_name(tmp_path, monkeypatch):
    name = plugin_policy.install(tmp_path, monkeypatch)
    store = tiny_store(tmp_path)
    policy = registry.load_plugin(name, store=store, seed=4)
    assert policy.name == name and policy.inner.store is store        # gets the store it asked for
    assert registry.label(name) == "NearestCloud" and registry.valid_method_name(name)
    assert set(registry.build_policies(["dpto", name, "sdn-cep"], store)) == {"dpto", name}


def test_an_entry_point_is_found_by_its_name(tmp_path, monkeypatch):
    plugin_policy.install(tmp_path, monkeypatch)
    point = EntryPoint("cloudy", plugin_policy.NAME, registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"cloudy": point})
    assert registry.valid_method_name("cloudy") and not registry.valid_method_name("magic")
    assert registry.load_plugin("cloudy").name == "cloudy"


@pytest.mark.parametrize("source, says", [
    ("x = 1\n", "has no 'Policy'"),
    ("Policy = 3\n", "is not callable"),
    ("class Policy:\n    pass\n", r"without a decide\(ctx\) method"),
])
def test_unusable_plugins_are_refused_with_the_reason(tmp_path, monkeypatch, source, says):
    (tmp_path / "badpolicy.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "badpolicy", raising=False)
    with pytest.raises(registry.PluginError, match=says):
        registry.load_plugin("badpolicy:Policy")
    with pytest.raises(registry.PluginError, match="unknown method 'nosuch'"):
        registry.load_plugin("nosuch")

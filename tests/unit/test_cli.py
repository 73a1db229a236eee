"""The `sdncep` command line: every subcommand's --help, and the quick defaults of
`sim` and `check`, from the shipped files alone."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdncep import cli, records
from tests import plugin_policy

REPO = Path(__file__).resolve().parents[2]


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "sdncep", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def test_top_level_help_lists_every_command():
    done = run("--help")
    assert done.returncode == 0
    for name in cli.COMMANDS:
        assert name in done.stdout
    assert run("nonsense").returncode == 2


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_has_help(command):
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: sdncep {command}"), done.stdout[:200]


def test_console_script_is_declared():
    text = (REPO / "setup.cfg").read_text()
    assert "sdncep = sdncep.cli:main" in text


def test_sim_quick_defaults_write_a_run_folder_with_a_manifest(tmp_path):
    done = run("sim", "--seeds", "1", "--out", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Oracle" in done.stdout and "ratio to Oracle" in done.stdout
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    for key in ("command", "arguments", "config", "checkpoints", "profiles", "git", "python", "packages",
                "machine"):
        assert key in manifest, key
    assert manifest["checkpoints"] and all(len(c["sha256"]) == 64 for c in manifest["checkpoints"])
    rows = json.loads((tmp_path / "run" / "records.json").read_text())
    assert {r["method"] for r in rows} >= {"oracle", "sdn-cep", "only-cloud"}
    assert {"e2e_s", "status", "phase", "wan_mbit", "method", "plan"} <= set(rows[0])


def test_check_defaults_pass_on_the_shipped_files():
    done = run("check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 error(s)" in done.stdout


def test_run_folders_are_timestamped_and_latest_follows(tmp_path):
    import datetime
    first = records.new_run_dir(tmp_path, datetime.datetime(2026, 1, 1, 12, 0, 0))
    second = records.new_run_dir(tmp_path, datetime.datetime(2026, 1, 1, 12, 0, 0))
    assert first.name == "20260101-120000" and second.name == "20260101-120000-2"
    assert (tmp_path / "latest").resolve() == second.resolve()
    assert records.resolve_run(tmp_path) == second.resolve()


def test_a_plugin_policy_runs_in_the_simulator_by_name(tmp_path, monkeypatch):
    name = plugin_policy.install(tmp_path, monkeypatch)
    done = run("sim", "--methods", f"oracle,{name}", "--cells", "10:20", "--seeds", "1",
               "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "run" / "records.json").read_text())
    assert {r["method"] for r in rows} == {"oracle", name}
    assert all(r["plan"] == "cloud:0-11" for r in rows if r["method"] == name)
    assert "NearestCloud" in done.stdout


def test_an_unknown_plugin_is_a_clear_error(tmp_path):
    done = run("sim", "--methods", "oracle,nosuch.module:Policy", "--cells", "10:20", "--seeds", "1",
               "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "cannot import 'nosuch.module'" in done.stderr


def test_howto_add_a_policy_shows_the_code_the_tests_run():
    guide = (REPO / "docs" / "howto" / "add-a-policy.md").read_text()
    assert plugin_policy.SOURCE.strip() in guide
    for command in ("sdncep sim --methods oracle,dpto,userpolicy:NearestCloud",
                    "policies = userpolicy:NearestCloud",
                    "sdncep bench --methods only-edge,userpolicy:NearestCloud"):
        assert command in guide

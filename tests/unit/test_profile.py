"""Profile schema round trip and validation errors; profiler plumbing without timings."""

from __future__ import annotations

import copy
import json
import os

import pytest

from models import build_model
from models.host_classes import HOST_CLASSES, UnknownHostClassError, cpu_share
from models.profile import ProfileError, load_profile, profile_path, save_profile
from models import profiler
from models.profiler import (CgroupUnavailableError, cpu_quota, profile_model,
                             static_profile_parts, time_call)


@pytest.fixture(scope="module")
def small_profile():
    """A real, quick profile of AlexNet: 1 sample per segment, tiny sample blocks."""
    model = build_model("alexnet", seed=0)
    return profile_model(model, "edge-small", 0.2, repeats=1, warmup=0,
                         min_sample_s=0.0, progress=False)


def test_profile_has_exact_schema(small_profile):
    p = small_profile
    assert list(p) == ["schema", "model", "host_class", "cpu_share", "torch_threads", "points",
                       "segments", "total_median_s", "measured_full_s", "created", "machine"]
    assert p["schema"] == 1 and p["model"] == "alexnet" and p["torch_threads"] == 1
    assert len(p["points"]) == len(p["segments"]) + 1 == 12
    assert p["points"][0] == {"index": 0, "name": "input", "out_bytes": 602112,
                              "shape": [3, 224, 224]}
    s1 = p["segments"][0]
    assert (s1["name"], s1["kind"], s1["flops"], s1["params"], s1["in_bytes"],
            s1["out_bytes"]) == ("conv1", "conv", 70276800, 23296, 602112, 774400)
    assert set(s1) == {"index", "name", "kind", "flops", "params", "in_bytes", "out_bytes",
                       "median_s", "p90_s", "repeats"}
    assert p["created"].endswith("Z")
    assert p["total_median_s"] == pytest.approx(sum(s["median_s"] for s in p["segments"]))


def test_round_trip_file_and_dict(small_profile, tmp_path):
    path = save_profile(small_profile, profile_path(tmp_path, "edge-small", "alexnet"))
    assert path == tmp_path / "edge-small" / "alexnet.json"
    assert load_profile(path) == small_profile
    assert load_profile(str(path)) == small_profile
    copied = load_profile(small_profile)
    assert copied == small_profile and copied is not small_profile


def _broken(profile, mutate):
    p = copy.deepcopy(profile)
    mutate(p)
    return p


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p.pop("machine"), "missing key"),
    (lambda p: p.update(extra=1), "unknown key"),
    (lambda p: p.update(schema=2), "schema"),
    (lambda p: p.update(cpu_share=0), "cpu_share"),
    (lambda p: p.update(cpu_share="0.2"), "cpu_share"),
    (lambda p: p.update(torch_threads=0), "torch_threads"),
    (lambda p: p["points"].pop(), "segments"),
    (lambda p: p["points"][0].update(name="x"), "points[0].name"),
    (lambda p: p["points"][2].update(out_bytes=5), "points[2].out_bytes"),
    (lambda p: p["points"][2].update(index=7), "points[2].index"),
    (lambda p: p["segments"][3].update(in_bytes=1), "segments[3].in_bytes"),
    (lambda p: p["segments"][3].update(median_s=-1.0), "segments[3].median_s"),
    (lambda p: p["segments"][3].update(median_s=float("nan")), "segments[3].median_s"),
    (lambda p: p["segments"][3].update(p90_s=0.0, median_s=1.0), "segments[3].p90_s"),
    (lambda p: p["segments"][3].update(repeats=0), "segments[3].repeats"),
    (lambda p: p["segments"][3].update(flops=1.5), "segments[3].flops"),
    (lambda p: p["segments"][3].pop("kind"), "segments[3]"),
    (lambda p: p["segments"][3].update(name="other"), "segments[3].name"),
])
def test_validation_errors_name_the_field(small_profile, mutate, field):
    with pytest.raises(ProfileError, match=r".*" + field.replace("[", r"\[").replace("]", r"\]")):
        load_profile(_broken(small_profile, mutate))


def test_load_errors_for_files(tmp_path):
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ProfileError, match="must be an object"):
        load_profile(bad)
    assert issubclass(ProfileError, ValueError)


def test_save_refuses_invalid(small_profile, tmp_path):
    with pytest.raises(ProfileError):
        save_profile(_broken(small_profile, lambda p: p.update(schema=0)), tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_static_parts_consistent_with_model():
    model = build_model("resnet18")
    points, segments = static_profile_parts(model)
    assert [p["name"] for p in points] == model.point_names
    assert [s["kind"] for s in segments] == model.segment_kinds
    assert sum(s["params"] for s in segments) == model.parameter_count()


def test_time_call_blocks_with_fake_clock():
    now = [0.0]
    calls = []

    def clock():
        return now[0]

    def fn():
        calls.append(1)
        now[0] += 0.01  # every call takes 10 ms of fake time

    samples = time_call(fn, repeats=3, warmup=1, min_sample_s=0.05, clock=clock)
    assert samples == pytest.approx([0.01] * 3)
    assert len(calls) == 1 + 3 * 5  # warm-up, then 3 blocks of ceil(0.05/0.01) calls
    with pytest.raises(ValueError):
        time_call(fn, repeats=0)


def test_host_classes():
    assert dict(HOST_CLASSES) == {"cloud": 1.0, "edge-large": 0.5, "edge-medium": 0.35,
                                  "edge-small": 0.2}
    assert cpu_share("edge-small") == 0.2
    with pytest.raises(UnknownHostClassError, match="edge-large"):
        cpu_share("edge-huge")


def test_cpu_quota_fails_clearly_without_cgroup(tmp_path):
    with pytest.raises(CgroupUnavailableError, match="cgroup v1 cpu controller not found"):
        with cpu_quota(0.5, root=str(tmp_path)):
            pass
    with pytest.raises(ValueError):
        with cpu_quota(0.0, root=str(tmp_path)):
            pass


def test_cpu_quota_on_fake_hierarchy(tmp_path, monkeypatch):
    """Drive the cgroup bookkeeping against a directory that mimics cgroup v1."""
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cgroup.procs").write_text("")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(profiler, "_current_cpu_cgroup", lambda pid: "/")
    with cpu_quota(0.25, period_us=10_000, root=str(tmp_path), pid=os.getpid()) as group:
        assert open(os.path.join(group, "cpu.cfs_quota_us")).read().strip() == "2500"
        assert open(os.path.join(group, "cpu.cfs_period_us")).read().strip() == "10000"
        assert open(os.path.join(group, "cgroup.procs")).read().strip() == str(os.getpid())
        for name in os.listdir(group):  # a real cgroup dir empties itself on rmdir
            os.remove(os.path.join(group, name))
    assert not os.path.exists(group)
    assert (tmp_path / "cgroup.procs").read_text().strip() == str(os.getpid())


def test_cpu_quota_needs_root(tmp_path, monkeypatch):
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(CgroupUnavailableError, match="root"):
        with cpu_quota(0.5, root=str(tmp_path)):
            pass


def test_cpu_clock_refused_under_a_quota():
    model = build_model("mobilenet_v2")
    with pytest.raises(ValueError, match="throttling"):
        profile_model(model, "edge-small", 0.2, clock="cpu", progress=False)
    with pytest.raises(ValueError, match="clock"):
        profile_model(model, "cloud", 1.0, clock="sundial", progress=False)


def test_script_profiles_and_evaluates(tmp_path, capsys):
    from scripts.profile_models import main

    for hc in ("cloud", "edge-large"):
        # edge-large would need a cgroup: record it with the cloud share instead, the
        # script only needs two host classes with files to evaluate
        argv = ["--host-class", hc, "--models", "mobilenet_v2", "--repeats", "1",
                "--warmup", "0", "--min-sample-ms", "0", "--out", str(tmp_path), "--quiet"]
        if hc != "cloud":
            argv += ["--cpu-share", "1.0"]
        assert main(argv) == 0
    prof = load_profile(tmp_path / "cloud" / "mobilenet_v2.json")
    assert prof["host_class"] == "cloud" and prof["machine"].endswith("clock cpu")
    assert main(["--evaluate", "--out", str(tmp_path),
                 "--fit-out", str(tmp_path / "pred.json")]) == 0
    out = capsys.readouterr().out
    assert "Leave-one-host-class-out" in out and (tmp_path / "pred.json").exists()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.isfile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                    reason="needs root and the cgroup v1 cpu controller")
def test_cpu_quota_real_cgroup_is_cleaned_up():
    before = profiler._current_cpu_cgroup(os.getpid())
    with cpu_quota(0.5) as group:
        assert profiler._current_cpu_cgroup(os.getpid()) == "/" + os.path.basename(group)
        assert open(os.path.join(group, "cpu.cfs_quota_us")).read().strip() == "5000"
    assert not os.path.exists(group)
    assert profiler._current_cpu_cgroup(os.getpid()) == before


def test_profile_store_reads_files_through_the_one_schema_validator(small_profile, tmp_path):
    from agents.calibration import ProfileStore
    save_profile(small_profile, profile_path(tmp_path / "good", "edge-small", "alexnet"))
    store = ProfileStore(tmp_path / "good", allow_synthetic=False)
    assert store.measured == (("alexnet", "edge-small"),)
    typed = store.get("alexnet", small_profile["cpu_share"])
    assert list(typed.seg_times) == [s["median_s"] for s in small_profile["segments"]]
    assert list(typed.out_bytes) == [p["out_bytes"] for p in small_profile["points"]]

    broken = copy.deepcopy(small_profile)
    del broken["segments"][2]["repeats"]
    path = profile_path(tmp_path / "bad", "edge-small", "alexnet")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"alexnet\.json: segments\[2\].*repeats"):
        ProfileStore(tmp_path / "bad", allow_synthetic=False)

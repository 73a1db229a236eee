"""A model of your own, end to end, by the steps of docs/howto/add-a-model.md.

The guide's blocks are read from the page itself: the plug-in (and the fx example
appended to it, as the guide says) is written verbatim to a folder of its own, the
Python snippets are executed as they are, and the two commands are run through the
scripts' ``main`` with the guide's arguments plus a few that make them quick
(fewer repetitions and episodes). Everything runs in a temporary working directory
(with ``configs`` linked to the repository's), so the guide's relative paths
``profiles/`` and ``checkpoints/`` land there. Edge host classes are profiled under a
real cgroup quota when the test runs as root with cgroup v1, else only ``cloud``.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models import build_model, check_model
from models.custom import (ModelCheckError, ModelRegistrationError, NotSplittableError,
                           fx_segments, load_plugin)
from models.zoo import (MODEL_NAMES, UnknownModelError, model_names, register_model,
                        unregister_model)

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "howto" / "add-a-model.md"
CAN_QUOTA = os.geteuid() == 0 and os.path.isfile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
HOST_CLASSES = ("cloud", "edge-large", "edge-medium", "edge-small") if CAN_QUOTA else ("cloud",)
QUICK_PROFILE = ["--repeats", "2", "--warmup", "0", "--min-sample-ms", "0", "--quiet"]
QUICK_TRAIN = ["--total-episodes", "4", "--tasks-min", "10", "--tasks-max", "20",
               "--learning-starts", "16", "--batch-size", "8", "--buffer-size", "64",
               "--target-network-frequency", "10", "--no-progress"]


def guide_block(name: str) -> str:
    """The fenced block right after ``<!-- howto-test: name -->`` in the guide."""
    m = re.search(rf"<!-- howto-test: {name} -->\n```\w*\n(.*?)```", GUIDE.read_text(), re.S)
    assert m, f"no block {name!r} in {GUIDE}"
    return m.group(1)


def guide_command(name: str, prefix: list[str]) -> list[str]:
    """The guide's command ``name`` as argv, after checking it starts with ``prefix``."""
    argv = shlex.split(guide_block(name).replace("\\\n", " "))
    assert argv[:len(prefix)] == prefix, argv
    return argv[len(prefix):]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("howto")
    plugin_dir = d / "sdncep-models"
    plugin_dir.mkdir()
    # section 6 says: "added to my_models.py"
    (plugin_dir / "my_models.py").write_text(guide_block("plugin") + "\n\n" + guide_block("fx"))
    (d / "configs").symlink_to(REPO / "configs")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(plugin_dir))
        mp.delitem(sys.modules, "my_models", raising=False)
        mp.chdir(d)
        yield d
        sys.modules.pop("my_models", None)
        for name in ("tinycnn", "tinyresnet"):
            unregister_model(name)


@pytest.fixture(scope="module")
def checked(workdir):
    """Section 2, executed as written (it loads the plug-in)."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(guide_block("check"), "howto:check", "exec"), {})
    return out.getvalue()


@pytest.fixture(scope="module")
def profiled(checked, workdir):
    """Section 3: the profile command, quick."""
    from scripts.profile_models import main
    argv = guide_command("profile", [".venv/bin/python", "-m", "scripts.profile_models"])
    i = argv.index("--host-class")
    j = i + 1
    while j < len(argv) and not argv[j].startswith("--"):
        j += 1
    assert argv[i + 1:j] == ["cloud", "edge-large", "edge-medium", "edge-small"]
    argv[i + 1:j] = HOST_CLASSES
    assert main(argv + QUICK_PROFILE) == 0
    return workdir / "profiles"


@pytest.fixture(scope="module")
def trained(profiled, workdir):
    """Section 4: the training command, a handful of episodes."""
    from scripts.train_agent import main
    argv = guide_command("train", [".venv/bin/python", "scripts/train_agent.py"])
    assert main(argv + QUICK_TRAIN) == 0
    return workdir / "checkpoints" / "sdncep-tinycnn.pt"


# ------------------------------------------------------------------ the guide, in order
def test_plugin_registers_and_check_passes(checked):
    lines = checked.splitlines()
    assert lines[0] == ("6 ['conv1', 'pool1', 'conv2', 'pool2', 'fc1', 'fc2'] "
                        "['conv', 'pool', 'conv', 'pool', 'fc', 'fc']")
    assert len(lines) == 1 + 7                       # "and the 7 points"
    assert lines[1] == "0 input (3, 32, 32) 12288" and lines[-1] == "6 output (10,) 40"
    assert "tinycnn" in model_names() and "tinyresnet" in model_names()
    assert model_names()[:len(MODEL_NAMES)] == MODEL_NAMES
    m = build_model("tinycnn")
    assert m.num_classes == 10 and m.input_shape == (3, 32, 32) and not m.training
    # one segment per heavy block; ReLU/BN/Flatten folded into the block before them
    assert [m.output_shape(k) for k in range(7)] == [
        (3, 32, 32), (8, 32, 32), (8, 16, 16), (16, 16, 16), (1024,), (64,), (10,)]
    assert m.segment_flops(1) == 8 * 32 * 32 * 3 * 9


def test_profile_command_writes_profiles_the_store_reads(profiled):
    from agents.calibration import ProfileStore
    from models.profile import load_profile

    for hc in HOST_CLASSES:
        prof = load_profile(profiled / hc / "tinycnn.json")      # schema-1 validation
        assert prof["model"] == "tinycnn" and prof["host_class"] == hc
        assert [s["name"] for s in prof["segments"]] == build_model("tinycnn").segment_names
    store = ProfileStore("profiles")
    assert "tinycnn" in store.models()
    assert {hc for m, hc in store.measured if m == "tinycnn"} == set(HOST_CLASSES)
    small = store.get("tinycnn", 0.2)
    assert small.m == 6 and small.out_bytes[0] == 3 * 32 * 32 * 4
    assert np.all(small.seg_times > 0)


def test_train_command_writes_an_agent_for_the_model(trained):
    from agents.dqn import Agent
    agent = Agent.load(trained)
    assert agent.meta["model"] == "tinycnn" and agent.meta["m"] == 6
    assert agent.meta["edge_names"] == ["e1", "e2", "e3"]         # configs/testbed_sim.yaml
    rows = (trained.parent / "sdncep-tinycnn.csv").read_text().splitlines()
    assert rows[0].startswith("episode,") and len(rows) == 1 + 4


def test_simulate_snippet_runs_oracle_and_agent(trained, capsys):
    ns: dict = {}
    exec(compile(guide_block("simulate"), "howto:simulate", "exec"), ns)
    out = capsys.readouterr().out
    assert out.startswith("oracle {") and "\nsdn-cep {" in out
    # the same cell again, to look at the numbers
    from agents.evaluation import run_cell
    res = {name: run_cell(p, ns["sim"], ns["cfg"].cost, ns["store"], seeds=range(3))
           for name, p in ns["policies"].items()}
    for r in res.values():
        assert math.isfinite(r["latency_s"]) and r["latency_s"] > 0 and r["reward"] < 0


def test_env_steps_the_model_with_the_oracle(profiled):
    from agents.calibration import ProfileStore
    from agents.config import CostConfig, SimConfig
    from agents.decision import DecisionContext
    from agents.registry import build_baselines
    from agents.sim_env import EdgeCloudEnv

    store = ProfileStore("profiles")
    env = EdgeCloudEnv(SimConfig(model="tinycnn", n_tasks=20), CostConfig(), store)
    assert env.m == 6 and env.action_space.n == 1 + 6 * 3
    oracle = build_baselines(store)["oracle"]
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        plan = oracle.decide(DecisionContext(env.view(), env.model, store, env.cost, env.task_q,
                                             obs, info["action_mask"]))
        obs, reward, done, _, info = env.step_plan(plan)
        assert not info["invalid_action"] and np.isfinite(reward)
        assert plan.hops[0][1] == 0 and plan.hops[-1][2] == 6       # points 0..m of tinycnn
    assert len(env.stats["latency"]) == 20


def test_fx_example_is_cut_as_the_guide_says(checked):
    m = build_model("tinyresnet")
    assert m.segment_names == ["stem", "layer1", "layer2", "adaptive_avg_pool2d", "fc"]
    assert m.segment_kinds == ["conv", "block", "block", "pool", "fc"]
    check_model(m)
    every = fx_segments(sys.modules["my_models"].TinyResNet(), (3, 32, 32), split="every")
    assert [s.name for s in every] == ["stem", "relu", "layer1", "relu_2", "layer2", "relu_4",
                                       "adaptive_avg_pool2d", "flatten", "fc"]
    # no cut between a block's input and its add: a block's convs and add in one segment
    assert _calls(every[2]) == ["layer1.conv1", "layer1.bn1", "relu_1", "layer1.conv2", "add"]


def _calls(seg) -> list[str]:
    """What a segment's graph calls, in order (module targets, else node names)."""
    return [n.target if n.op == "call_module" else n.name
            for n in seg.module.graph.nodes if n.op not in ("placeholder", "output", "get_attr")]


# ------------------------------------------------------------------ what cannot be cut
class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.a(x), self.b(x)], 1)          # two branches cross any cut here
        return self.head(y.mean((2, 3)))


class GlobalSkip(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x))) + x


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.c(x) if x.mean() > 0 else x           # control flow on a tensor value


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre, self.gate, self.post = nn.Conv2d(3, 3, 1), Gate(), nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.post(self.gate(self.pre(x)))


class TwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.c(x)
        return y, y.mean()


class BatchOne(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.fc = nn.Conv2d(3, 2, 1), nn.Linear(2 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(self.c(x).view(1, -1))             # hard-coded batch of 1


class Argmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.c(x).flatten(1).argmax(1)              # int64 output


class NineDims(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], 1, 1, 1, 1, 1, 1, 1, -1)


def test_cuts_only_where_one_tensor_flows():
    segs = fx_segments(Inception(), (3, 8, 8))
    # the whole inception block (both branches and the cat) is one segment
    assert [_calls(s) for s in segs] == [["stem"], ["a", "b", "cat", "mean"], ["head"]]
    assert [s.kind for s in segs] == ["conv", "block", "fc"]
    assert len(fx_segments(GlobalSkip(), (3, 8, 8))) == 1
    assert len(fx_segments(GlobalSkip(), (3, 8, 8), split="every")) == 1


def test_untraceable_block_as_leaf_module():
    with pytest.raises(NotSplittableError, match="leaf_modules"):
        fx_segments(Gated(), (3, 4, 4))
    segs = fx_segments(Gated(), (3, 4, 4), leaf_modules=(Gate,))
    assert [s.name for s in segs] == ["pre", "gate", "post"]
    assert [s.kind for s in segs] == ["conv", "conv", "conv"]


def test_refused_models_name_the_problem():
    with pytest.raises(NotSplittableError, match="exactly one tensor"):
        fx_segments(TwoOut(), (3, 4, 4))
    register_model("custom_batch_one", BatchOne, input_shape=(3, 4, 4))
    register_model("custom_argmax", Argmax, input_shape=(3, 4, 4))
    register_model("custom_nine_dims",
                   lambda: nn.Sequential(nn.Conv2d(3, 3, 1), NineDims(), nn.Flatten(), nn.Linear(48, 2)),
                   input_shape=(3, 4, 4), split="every")
    try:
        with pytest.raises(ModelCheckError, match="batch"):
            check_model(build_model("custom_batch_one"))
        with pytest.raises(ModelRegistrationError, match="float32"):
            build_model("custom_argmax")
        with pytest.raises(ModelCheckError, match="wire format"):
            check_model(build_model("custom_nine_dims"))
    finally:
        for name in ("custom_batch_one", "custom_argmax", "custom_nine_dims"):
            unregister_model(name)


def test_registration_errors():
    seq = lambda: nn.Sequential(nn.Conv2d(3, 3, 1))  # noqa: E731
    for bad in ("TinyCNN", "my-model", "x" * 25, ""):
        with pytest.raises(ModelRegistrationError, match="a-z0-9_"):
            register_model(bad, seq, input_shape=(3, 4, 4))
    with pytest.raises(ModelRegistrationError, match="built-in"):
        register_model("alexnet", seq, input_shape=(3, 224, 224))
    with pytest.raises(ModelRegistrationError, match="input_shape"):
        register_model("custom_shape", seq, input_shape=(3, 0, 4))
    with pytest.raises(ModelRegistrationError, match="8"):
        register_model("custom_shape", seq, input_shape=(1,) * 8)
    register_model("custom_dup", seq, input_shape=(3, 4, 4))
    try:
        with pytest.raises(ModelRegistrationError, match="already registered"):
            register_model("custom_dup", lambda: seq(), input_shape=(3, 4, 4))
        register_model("custom_dup", seq, input_shape=(3, 4, 4))     # same builder: fine
        with pytest.raises(ModelRegistrationError, match="num_classes"):
            build_model("custom_dup", num_classes=5)
    finally:
        unregister_model("custom_dup")
    with pytest.raises(UnknownModelError, match="add-a-model"):
        build_model("custom_dup")


def test_plugin_specs_and_environment(tmp_path, monkeypatch):
    from models import custom
    src = ("from torch import nn\nfrom models.zoo import register_model\n"
           "def register():\n"
           "    register_model('{name}', lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(),"
           " nn.Flatten(), nn.Linear(4 * 4 * 4, 2)), input_shape=(3, 6, 6))\n")
    (tmp_path / "plug_a.py").write_text(src.format(name="custom_a"))
    (tmp_path / "plug_b.py").write_text(src.format(name="custom_b") + "register()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        load_plugin("plug_a:register")                     # module:function
        assert build_model("custom_a").segment_names == ["conv1", "fc1"]
        load_plugin(str(tmp_path / "plug_b.py"))           # a file path
        assert "custom_b" in model_names()
        unregister_model("custom_b")
        monkeypatch.setenv(custom.PLUGINS_ENV, str(tmp_path / "plug_b.py"))
        monkeypatch.setattr(custom, "_ENV_LOADED", set())
        sys.modules.pop("sdncep_plugin_plug_b", None)
        m = build_model("custom_b")                        # found through the environment
        assert m.num_segments == 2 and m.num_classes == 2
        with pytest.raises(ModelRegistrationError, match="PYTHONPATH"):
            load_plugin("no_such_plugin_module")
        with pytest.raises(ModelRegistrationError, match="no function"):
            load_plugin("plug_a:nope")
    finally:
        for name in ("custom_a", "custom_b"):
            unregister_model(name)
        sys.modules.pop("plug_a", None)
        sys.modules.pop("sdncep_plugin_plug_b", None)


def test_seeded_weights_and_rng_untouched(checked):
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    a, b, c = build_model("tinycnn", seed=3), build_model("tinycnn", seed=3), build_model("tinycnn", seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    pa, pb, pc = (next(iter(m.parameters())) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_simulator_knows_models_by_profile(profiled, tmp_path, capsys):
    from agents.config import ConfigError, SimConfig
    from scripts.train_agent import main
    assert SimConfig(model="tinycnn").model == "tinycnn"
    with pytest.raises(ConfigError, match="unknown model"):
        SimConfig(model="lenet")
    assert main(["--model", "tinyresnet", "--profiles", str(profiled), "--out-dir", str(tmp_path),
                 *QUICK_TRAIN]) == 2                      # registered, but never profiled
    assert "no profile of model 'tinyresnet'" in capsys.readouterr().err
    # the profile JSON is all the simulator needs: no plug-in in its world
    prof = json.loads((profiled / "cloud" / "tinycnn.json").read_text())
    assert prof["points"][0]["shape"] == [3, 32, 32]


def test_fx_cuts_a_resnet18_written_as_one_module_like_the_built_in():
    """torchvision-style ResNet-18 (one forward, no Segments): fx finds the built-in's cut."""
    from models.zoo import BasicBlock

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            cin = 64
            for stage, cout in enumerate([64, 128, 256, 512], start=1):
                blocks = []
                for j in range(2):
                    blocks.append(BasicBlock(cin, cout, 2 if stage > 1 and j == 0 else 1))
                    cin = cout
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    register_model("custom_resnet18", ResNet18, input_shape=(3, 224, 224))
    try:
        m, ref = build_model("custom_resnet18"), build_model("resnet18")
        assert m.segment_names == ["conv1", "maxpool", *(f"layer{s}.{j}" for s in range(1, 5) for j in (0, 1)),
                                   "avgpool", "fc"]
        assert m.segment_kinds == ["conv", "pool", *["block"] * 8, "pool", "fc"]
        assert m.parameter_count() == ref.parameter_count()
        assert [m.output_bytes(k) for k in range(13)] == [ref.output_bytes(k) for k in range(13)]
        assert [m.segment_flops(i) for i in range(1, 13)] == [ref.segment_flops(i) for i in range(1, 13)]
    finally:
        unregister_model("custom_resnet18")


def test_workers_serve_the_model_split_over_the_wire(checked):
    """Two in-process workers (default model factory = build_model) run tinycnn cut at
    point 3; the result equals a local run: the wire carries its tensors."""
    from runtime.client import Client
    from protocol.task_plan import split_plan
    from runtime.worker import Worker

    m = build_model("tinycnn")
    ws = [Worker(name=f"c{i}", models=["tinycnn"]).start() for i in range(2)]
    try:
        with Client(("127.0.0.1", 0)) as client:
            x = np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32)
            plan = split_plan("tinycnn", m.num_segments, [w.address for w in ws], [3])
            res = client.infer(plan, x, timeout=30, topk=3, want_logits=True)
        assert res.status == "ok", res
        ref = m.run(torch.from_numpy(x)[None], 0, m.num_segments)
        np.testing.assert_allclose(res.logits, ref.numpy(), rtol=1e-4, atol=1e-5)
        assert [s.name for s in res.stages] == ["client", "c0", "c1"]
    finally:
        for w in ws:
            w.stop()

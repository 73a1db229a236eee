"""Model zoo: parameter counts, shapes/bytes, split equivalence at every point, API errors."""

from __future__ import annotations

import math

import pytest
import torch

from models import MODEL_NAMES, PartitionedModel, UnknownModelError, build_model

# Published parameter counts (torchvision; GoogLeNet without aux heads).
PUBLISHED_PARAMS = {
    "alexnet": 61.1e6,
    "resnet18": 11.7e6,
    "googlenet": 6.6e6,
    "vgg16": 138.4e6,
    "mobilenet_v2": 3.5e6,
}


@pytest.fixture(scope="module")
def zoo() -> dict[str, PartitionedModel]:
    torch.set_num_threads(1)
    return {name: build_model(name, seed=0) for name in MODEL_NAMES}


@pytest.fixture(scope="module")
def chains(zoo) -> dict[str, list[torch.Tensor]]:
    """Activation at every point of every model for one fixed batch-1 input."""
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    out = {}
    for name, m in zoo.items():
        acts = [x]
        for k in range(1, m.num_segments + 1):
            acts.append(m.run(acts[-1], k - 1, k))
        out[name] = acts
    return out


def test_model_names_exact():
    assert MODEL_NAMES == ("alexnet", "resnet18", "googlenet", "vgg16", "mobilenet_v2")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_count_matches_published(zoo, name):
    m = zoo[name]
    assert m.parameter_count() == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)
    assert sum(m.segment_params(i) for i in range(1, m.num_segments + 1)) == m.parameter_count()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_structure(zoo, name):
    m = zoo[name]
    assert m.name == name and m.input_shape == (3, 224, 224) and m.num_classes == 1000
    assert len(m.point_names) == m.num_segments + 1
    assert m.point_names[0] == "input" and m.point_names[-1] == "output"
    assert len(set(m.point_names)) == len(m.point_names)
    assert len(m.segment_kinds) == m.num_segments
    assert set(m.segment_kinds) <= {"conv", "pool", "fc", "block", "inception", "invres"}
    assert m.output_shape(m.num_segments) == (1000,)
    assert m.output_bytes(0) == 3 * 224 * 224 * 4
    assert all(m.segment_flops(i) >= 0 for i in range(1, m.num_segments + 1))
    assert not m.training


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_bytes_match_real_tensors(zoo, chains, name):
    m = zoo[name]
    for k, act in enumerate(chains[name]):
        assert tuple(act.shape[1:]) == m.output_shape(k)
        assert m.output_bytes(k) == act.numel() * act.element_size()
        assert act.dtype == torch.float32


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_split_equivalence_every_pair_of_points(zoo, chains, name):
    """run(run(x,0,k),k,j) allclose run(x,0,j) for 0 <= k <= j <= m.

    ``chains`` holds run(x,0,k) for every k (prefix chain computed once per model)."""
    m, acts = zoo[name], chains[name]
    x = acts[0]
    for j in range(m.num_segments + 1):
        assert torch.allclose(m.run(x, 0, j), acts[j], rtol=1e-4, atol=1e-5), j
    # VGG-16 is ~15 GMAC: all 253 pairs would take half a minute, so there every cut
    # is checked against its two successors and the output (prefixes are all checked).
    cheap = name != "vgg16"
    for k in range(m.num_segments + 1):
        assert m.run(acts[k], k, k) is acts[k]
        ends = range(k + 1, m.num_segments + 1) if cheap else {
            j for j in (k + 1, k + 2, m.num_segments) if k < j <= m.num_segments}
        for j in ends:
            assert torch.allclose(m.run(acts[k], k, j), acts[j], rtol=1e-4, atol=1e-5), (k, j)


def test_flops_known_values(zoo):
    # AlexNet conv1: 64 x 55 x 55 outputs x (3 x 11 x 11) taps
    assert zoo["alexnet"].segment_flops(1) == 70_276_800
    total = {n: sum(m.segment_flops(i) for i in range(1, m.num_segments + 1)) / 1e9
             for n, m in zoo.items()}
    assert total["vgg16"] == pytest.approx(15.5, rel=0.02)
    assert total["resnet18"] == pytest.approx(1.82, rel=0.02)
    assert total["mobilenet_v2"] == pytest.approx(0.30, rel=0.03)


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownModelError) as err:
        build_model("resnet1000")
    assert isinstance(err.value, ValueError)
    for name in MODEL_NAMES:
        assert name in str(err.value)


def test_run_bounds(zoo):
    m = zoo["alexnet"]
    x = torch.zeros(1, 3, 224, 224)
    for start, end in [(-1, 2), (0, m.num_segments + 1), (3, 2), (0.5, 1), (True, 2)]:
        with pytest.raises(ValueError):
            m.run(x, start, end)
    with pytest.raises(ValueError):
        m.output_bytes(m.num_segments + 1)
    # numpy / torch integers are fine (plans often come from argmax)
    import numpy as np
    assert m.output_bytes(np.int64(1)) == m.output_bytes(1) == 774400
    assert m.run(x, np.int64(0), torch.tensor(0)) is x
    with pytest.raises(ValueError):
        m.segment_flops(0)
    with pytest.raises(ValueError):
        m.segment_params(m.num_segments + 1)


def test_seed_determinism_and_rng_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_model("mobilenet_v2", seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_model("mobilenet_v2", seed=3)
    c = build_model("mobilenet_v2", seed=4)
    pa, pb, pc = (next(iter(m.parameters())) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_batch_dimension_passes_through(zoo):
    m = zoo["resnet18"]
    y = m.run(torch.zeros(2, 3, 224, 224), 0, 3)
    assert tuple(y.shape) == (2, *m.output_shape(3))
    assert math.prod(y.shape[1:]) * 4 == m.output_bytes(3)


def test_flops_unaffected_by_concurrent_runs(zoo):
    """The lazy FLOP count hooks only the analysing thread (workers run models in threads)."""
    import threading

    expected = [zoo["mobilenet_v2"].segment_flops(i) for i in range(1, 22)]
    fresh = build_model("mobilenet_v2")
    stop = threading.Event()

    def spin():
        x = torch.zeros(1, 3, 224, 224)
        while not stop.is_set():
            fresh.run(x, 0, fresh.num_segments)

    t = threading.Thread(target=spin)
    t.start()
    try:
        got = [fresh.segment_flops(i) for i in range(1, 22)]
    finally:
        stop.set()
        t.join()
    assert got == expected

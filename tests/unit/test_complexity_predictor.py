import numpy as np
import pytest

from agents.complexity import FEATURES, ComplexityPredictor, image_features, train_predictor


@pytest.fixture(scope="module")
def pred():
    return train_predictor(seed=0)


def test_features_shape_and_ranges():
    rng = np.random.default_rng(0)
    noise = rng.random((64, 64))
    flat = np.zeros((32, 32))
    f_noise, f_flat = image_features(noise), image_features(flat)
    assert f_noise.shape == (len(FEATURES),)
    assert np.isfinite(f_flat).all()
    i = FEATURES.index
    assert f_noise[i("entropy")] > f_flat[i("entropy")]
    assert f_noise[i("zlib_ratio")] > f_flat[i("zlib_ratio")]
    assert f_noise[i("edge_density")] > f_flat[i("edge_density")]
    # colour HWC, CHW and uint8 all accepted
    img = (rng.random((224, 224, 3)) * 255).astype(np.uint8)
    assert np.allclose(image_features(img), image_features(np.moveaxis(img, 2, 0)))


def test_holdout_auc_beats_chance(pred):
    assert pred.meta["auc_holdout"] > 0.6
    assert 0.1 < pred.meta["hard_rate"] < 0.5


def test_json_roundtrip_and_routing(pred, tmp_path):
    p = tmp_path / "c.json"
    pred.save(p)
    assert b"\x80" not in p.read_bytes()            # JSON, not pickle
    back = ComplexityPredictor.load(p)
    from sklearn.datasets import load_digits
    for img in load_digits().images[:20]:
        q = pred.predict(img)
        assert 0.0 <= q <= 1.0 and back.predict(img) == pytest.approx(q)
    img = load_digits().images[0]
    q = pred.predict(img)
    lo = ComplexityPredictor(pred.mean, pred.std, pred.coef, pred.intercept, delta=max(0.0, q - 1e-6))
    hi = ComplexityPredictor(pred.mean, pred.std, pred.coef, pred.intercept, delta=min(1.0, q + 1e-6))
    assert lo.route(img) == "cloud" and hi.route(img) == "edge"


def test_bad_delta_and_bad_file(pred, tmp_path):
    with pytest.raises(ValueError, match="delta"):
        ComplexityPredictor(pred.mean, pred.std, pred.coef, pred.intercept, delta=1.2)
    p = tmp_path / "x.json"
    p.write_text('{"schema": 2}')
    with pytest.raises(ValueError, match="schema-1"):
        ComplexityPredictor.load(p)

"""The end device's prepared images: written once by a runner, read by every device run."""

import numpy as np
import pytest

from runtime import device
from runtime.images import load_image


def test_prepared_images_come_back_as_made(tmp_path):
    path = tmp_path / "prepared.npz"
    device.save_prepared(path, ("astronaut", "coffee"))
    pictures, features = device.load_prepared(path, ("coffee", "astronaut", "coffee"))
    assert [name for name, _ in pictures] == ["coffee", "astronaut", "coffee"]
    np.testing.assert_array_equal(pictures[1][1], load_image("astronaut"))
    assert features["coffee"] == device.features_of(load_image("coffee"))


def test_prepared_file_without_an_image_or_with_pickles_is_refused(tmp_path):
    path = tmp_path / "prepared.npz"
    device.save_prepared(path, ("coffee",))
    with pytest.raises(ValueError, match="no image rocket"):
        device.load_prepared(path, ("rocket",))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, names=np.array(["coffee"], dtype=object), images=np.zeros((1, 3, 2, 2)),
             features=np.zeros((1, 2)))
    with pytest.raises(ValueError):
        device.load_prepared(pickled, ("coffee",))


def test_a_bad_prepared_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        device.main(["--ip", "10.0.0.1", "--out", str(tmp_path / "r.json"), "--prepared", str(tmp_path / "none.npz")])
    assert exit_info.value.code == 2 and "--prepared" in capsys.readouterr().err

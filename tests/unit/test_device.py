"""The end device: prepared images (written once by a runner, read by every run) and its serve mode."""

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


class _FakeDevice:
    def __init__(self):
        self.runs = []

    def run(self, start, **command):
        self.runs.append((start(), command))
        return [{"seq": i, "status": "ok"} for i in range(command["count"])]


def test_a_serving_device_runs_one_command_per_line_and_survives_bad_ones(tmp_path, capsys):
    import io
    import json
    out = tmp_path / "r.json"
    good = json.dumps({"method": "dpto", "model": "alexnet", "count": 2, "rate": 4.0, "seed": 3, "out": str(out)})
    lines = io.StringIO("\n".join([good, "12.5", "{not json", json.dumps({"method": "dpto", "count": 0}),
                                   json.dumps({"method": "magic", "model": "alexnet", "count": 1, "out": "x"}),
                                   good, "13.0", ""]))
    fake = _FakeDevice()
    device.serve(fake, lines)
    said = capsys.readouterr().out.split("\n")
    assert said[:2] == ["ready", "done 2 0"] and said[-3:-1] == ["ready", "done 2 0"]
    assert sum(line.startswith("error:") for line in said) == 3
    assert [start for start, _ in fake.runs] == [12.5, 13.0]
    assert fake.runs[0][1] == {"method": "dpto", "model": "alexnet", "count": 2, "rate": 4.0, "seed": 3, "hops": ()}
    assert json.loads(out.read_text()) == [{"seq": 0, "status": "ok"}, {"seq": 1, "status": "ok"}]

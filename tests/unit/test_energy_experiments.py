"""`sdncep energy` end to end on a tiny setting: a run folder with the tables, CSVs, plots, manifest."""
import json

from scripts import energy_experiments


def test_quick_run_writes_a_run_folder(tmp_path, capsys):
    rc = energy_experiments.main(["--instances", "4", "--sweep-instances", "1", "--droo-warmup", "20",
                                  "--devices", "2,3", "--out", str(tmp_path)])
    assert rc == 0
    run = (tmp_path / "latest").resolve()
    for name in ("table.csv", "table.json", "instances.csv", "devices.csv", "battery.csv", "weight.csv",
                 "summary.json", "manifest.json", "fig_devices.png", "fig_battery.png", "fig_weight.png"):
        assert (run / name).is_file(), name
    table = {r["method"]: r for r in json.loads((run / "table.json").read_text())}
    assert table["optimum"]["mean_ratio"] == 1.0 and set(table) >= {"dqn", "droo", "greedy", "random"}
    assert all(r["mean_ratio"] >= 1.0 - 1e-9 for r in table.values())
    out = capsys.readouterr().out
    assert "vs opt (mean)" in out and "criterion1" in out

"""Table cells, the report files and run descriptions derived from run records."""
import json
import os
import pathlib
import subprocess
import sys

import pandas as pd

from experiment import report
from experiment import stats


def fake_record(model, seq_len, seed, test_accuracy, clip_grad_norm=None):
    """A run record as train_rnn.py writes it, with a made-up outcome and a 3-epoch history."""
    config = {"model": model, "seq_len": seq_len, "seed": seed, "epochs": 3, "batch_size": 20,
              "hidden": 50, "lr": 0.01, "momentum": 0.9, "engine": "bptt",
              "clip_grad_norm": clip_grad_norm, "shuffle": False, "device": "cpu"}
    diverged = test_accuracy is None
    history = [{"epoch": e, "dev_accuracy": 30.0 + e, "train_loss": 0.1, "grad_norm": 1.0 + e}
               for e in range(3)]
    if clip_grad_norm is not None:
        for epoch in history:
            epoch.update(grad_norm_max=2.0 * epoch["grad_norm"], clipped_fraction=0.5)
    return {"config": config, "status": "diverged" if diverged else "finished",
            "diverged_epoch": 2 if diverged else None, "epochs_run": 3,
            "dev_accuracy": None if diverged else test_accuracy, "test_accuracy": test_accuracy,
            "train_seconds": 1.0, "history": history}


def test_one_run_shows_its_test_accuracy_alone():
    assert report.cell_text([97.43]) == "97.4"
    assert report.cell_text([None]) == "diverged"


def test_a_cell_whose_runs_split_shows_solved_count_interval_median_and_range():
    # 95.0 counts as solved; Wilson interval of 3/5: 0.231 to 0.882
    assert (report.cell_text([98.9, 32.2, 95.0, 31.7, 98.2])
            == "3/5 solved [23–88 %]; median 95.0 (31.7–98.9)")


def test_a_cell_whose_runs_all_solve_shows_the_interval_still_open_below():
    assert (report.cell_text([100.0, 98.0, 99.5])
            == "3/3 solved [44–100 %]; median 99.5 (98.0–100.0)")


def test_diverged_runs_count_as_not_solved_and_are_named_in_the_cell():
    assert (report.cell_text([50.0, None, 96.0])
            == "1/3 solved [6–79 %], 1 diverged; median 73.0 (50.0–96.0)")
    assert report.cell_text([None, float("nan")]) == "0/2 solved [0–66 %], 2 diverged"


def test_cells_follow_the_one_solved_threshold_in_stats(monkeypatch):
    assert not hasattr(report, "SOLVED_ACCURACY")
    assert report.cell_text([60.0, 40.0]).startswith("0/2 solved")
    monkeypatch.setattr(stats, "SOLVED_ACCURACY", 50.0)
    assert report.cell_text([60.0, 40.0]).startswith("1/2 solved")
    assert ">= 50 %" in report.accuracy_caption()


def test_report_names_the_threshold_once_and_the_run_count_in_each_cell(tmp_path):
    # cells of different sizes: 3 runs of AlarmworkNet at L = 50, one of LSTM
    records = [fake_record("alarmwork", 50, seed, accuracy)
               for seed, accuracy in enumerate([99.0, 31.0, None])]
    records.append(fake_record("lstm", 50, 0, 37.5))
    text = report.write_report(records, str(tmp_path))
    assert (tmp_path / "accuracy.md").read_text() == text + "\n"
    caption, table = text.split("\n\n")
    assert caption.count(">= 95 %") == 1   # the 95 % of the interval is a confidence level
    assert "seed(s) per cell" not in caption and "±" not in text
    assert "| 1/3 solved [6–79 %], 1 diverged; median 65.0 (31.0–99.0) |" in table
    assert "| LSTM         | 37.5" in table
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert list(cells.columns) == ["model", "seq_len", "runs", "diverged", "solved",
                                   "solved_rate_ci_low", "solved_rate_ci_high",
                                   "median", "min", "max", "mean", "std"]
    assert cells[["model", "runs", "diverged", "solved"]].values.tolist() == [
        ["AlarmworkNet", 3, 1, 1], ["LSTM", 1, 0, 0]]
    assert len(pd.read_csv(tmp_path / "accuracy.csv")) == 4   # one row per run
    for figure in ("accuracy.png", "learning_curves.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"


def test_describe_run_says_model_length_seed_and_outcome():
    config = {"model": "lstm", "seq_len": 50, "seed": 3, "hidden": 50}
    finished = {"config": config, "status": "finished", "test_accuracy": 99.84, "epochs_run": 12,
                "train_seconds": 41.2, "diverged_epoch": None}
    assert report.describe_run(finished) == "LSTM L=50 seed=3: test 99.8 % after 12 epochs (41 s)"
    diverged = dict(finished, status="diverged", diverged_epoch=2, test_accuracy=None)
    assert report.describe_run(diverged) == "LSTM L=50 seed=3: diverged (non-finite loss) in epoch 2"


def test_model_label_names_the_clocks_and_a_width_other_than_the_assignments():
    assert report.model_label({"model": "alarmwork", "hidden": 50}) == "AlarmworkNet"
    assert report.model_label({"model": "lstm", "hidden": 8}) == "LSTM P=8"
    assert report.model_label({"model": "clockwork", "hidden": 35, "periods": [1, 2, 4, 8]}) == \
        "Clockwork(1,2,4,8) P=35"


def test_runs_of_several_configurations_get_a_titled_table_each_and_a_column_in_the_csv(tmp_path):
    records = [fake_record("lstm", 50, seed, 99.0) for seed in range(2)]
    records += [fake_record("lstm", 50, seed, 37.0, clip_grad_norm=1.0) for seed in range(2)]
    titles = ["clip_grad_norm = none"] * 2 + ["clip_grad_norm = 1.0"] * 2
    text = report.write_report(records, str(tmp_path), titles)
    caption, first_title, first, second_title, second = text.split("\n\n")
    assert caption == report.accuracy_caption()
    assert (first_title, second_title) == ("**clip_grad_norm = none**", "**clip_grad_norm = 1.0**")
    assert "2/2 solved" in first and "0/2 solved" in second
    runs = pd.read_csv(tmp_path / "accuracy.csv")
    assert list(runs["configuration"]) == titles and runs.columns[0] == "configuration"
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert cells[["configuration", "runs", "solved"]].values.tolist() == [
        ["clip_grad_norm = none", 2, 2], ["clip_grad_norm = 1.0", 2, 0]]
    for figure in ("accuracy.png", "learning_curves.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"


def test_one_configuration_gives_the_table_without_a_title_or_a_configuration_column(tmp_path):
    records = [fake_record("lstm", 50, seed, 99.0) for seed in range(2)]
    untitled = report.write_report(records, str(tmp_path))
    assert report.write_report(records, str(tmp_path), ["clip_grad_norm = none"] * 2) == untitled
    assert "**" not in untitled
    assert "configuration" not in pd.read_csv(tmp_path / "accuracy.csv").columns


ROOT = pathlib.Path(__file__).resolve().parent.parent

IMPORT_EVERY_MODULE = """
import importlib, json, sys
import matplotlib
before = matplotlib.get_backend()
changed = []
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "matplotlib.pyplot" in sys.modules:   # checked first: get_backend() may import pyplot
        changed.append([name, "imports matplotlib.pyplot"])
        break
    if matplotlib.get_backend() != before:
        changed.append([name, f"switches the backend from {before} to {matplotlib.get_backend()}"])
        break
print(json.dumps({"backend": before, "changed": changed}))
"""


def repository_modules():
    """The top-level scripts and every module under lib/, experiment/ and studies/."""
    names = [path.stem for path in sorted(ROOT.glob("*.py"))]
    for package in ("lib", "experiment", "studies"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_importing_a_module_leaves_the_importers_plotting_alone():
    names = repository_modules()
    assert {"train_rnn", "experiment.report", "studies.compare_results", "lib.atomic_files"} <= set(names)
    # a backend other than Agg, set the way a user would, so that a switch to Agg shows
    env = dict(os.environ, MPLBACKEND="svg")
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE, *names], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "svg"
    assert result["changed"] == []

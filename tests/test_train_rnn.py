"""The training protocol, the grid of runs, and the command line, on tiny data."""
import csv
import json
import os
import subprocess
import sys

import pytest
import torch

import generate_data_adding_problem as data
import train_rnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train", "60", "--dev", "20", "--test", "20", "--epochs", "2"]


def run_cli(*argv, cwd=None):
    """Run train_rnn.py as a user would; returns the completed process."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "train_rnn.py"), *argv],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    data.main(["--lengths", "4", "7", "--train", "60", "--dev", "20", "--test", "20",
               "--data-dir", str(folder)])
    return str(folder)


# ------------------------------------------------------------------------------ protocol

def test_accuracy_counts_predictions_strictly_within_a_tenth():
    t = torch.tensor([0.0, 0.0, 0.0, 0.5])
    y = torch.tensor([[0.099], [-0.0999], [0.1001], [0.2]])
    assert train_rnn.accuracy(y, t) == 50.0


def test_training_stops_only_when_dev_accuracy_is_above_99_5():
    assert not train_rnn.should_stop(99.5)
    assert train_rnn.should_stop(99.51)


def tiny_config(**changes):
    config = {"model": "alarmwork", "seq_len": 4, "seed": 0, "epochs": 5, "batch_size": 20,
              "hidden": 8, "lr": 0.01, "momentum": 0.9, "engine": "bptt", "clip_grad_norm": None,
              "shuffle": False, "device": "cpu", "data": {}}
    config.update(changes)
    return config


def test_dev_check_at_the_start_of_each_epoch_stops_training(tiny_data, monkeypatch):
    dev_results = iter([40.0, 99.5, 99.6, 12.0])   # the third check (after 2 epochs) stops
    real_evaluate = train_rnn.evaluate
    calls = []

    def fake_evaluate(model, x, t):
        calls.append(len(x))
        return next(dev_results) if len(calls) <= 3 else real_evaluate(model, x, t)

    monkeypatch.setattr(train_rnn, "evaluate", fake_evaluate)
    arrays = data.load_data_set(tiny_data, 4)
    record = train_rnn.train_run(tiny_config(), arrays, show_progress=False)
    assert record["epochs_run"] == 2
    assert [h["dev_accuracy"] for h in record["history"]] == [40.0, 99.5, 99.6]
    assert record["dev_accuracy"] == 99.6
    assert len(calls) == 4   # three dev checks, then the test set once


def test_training_runs_all_epochs_when_dev_accuracy_stays_low(tiny_data):
    arrays = data.load_data_set(tiny_data, 4)
    record = train_rnn.train_run(tiny_config(epochs=3), arrays, show_progress=False)
    assert record["epochs_run"] == 3 and record["status"] == "finished"
    assert len(record["history"]) == 4                        # before epochs 1, 2, 3 and at the end
    assert all(h["train_loss"] > 0 for h in record["history"][:-1])
    assert 0.0 <= record["test_accuracy"] <= 100.0


# ------------------------------------------------------------------------------ command line

def test_tiny_end_to_end_run_prints_the_table_and_writes_the_results(tiny_data, tmp_path):
    results = tmp_path / "results"
    process = run_cli("--lengths", "4", "7", *TINY, "--data-dir", tiny_data,
                      "--results-dir", str(results), "--jobs", "1")
    assert process.returncode == 0, process.stderr
    for name in ("SimpleRNN", "LSTM", "AlarmworkNet", "L = 4", "L = 7"):
        assert name in process.stdout
    rows = read_csv(results / "accuracy.csv")
    assert [(r["model"], r["seq_len"]) for r in rows] == [
        (m, L) for m in ("SimpleRNN", "LSTM", "AlarmworkNet") for L in ("4", "7")]
    for row in rows:
        assert row["seed"] == "0" and row["epochs_run"] == "2" and row["status"] == "finished"
        assert 0 <= float(row["test_accuracy"]) <= 100 and float(row["train_seconds"]) > 0
    table = (results / "accuracy.md").read_text()
    assert table.count("\n|") == 5   # header, rule and one row per model
    assert len(os.listdir(results / "runs")) == 6


def test_same_seed_gives_the_same_numbers_with_one_or_two_jobs(tiny_data, tmp_path):
    outcomes = []
    for jobs, folder in (("1", "a"), ("2", "b")):
        process = run_cli("--lengths", "4", "7", *TINY, "--models", "lstm", "alarmwork",
                          "--data-dir", tiny_data, "--results-dir", str(tmp_path / folder),
                          "--jobs", jobs)
        assert process.returncode == 0, process.stderr
        runs = {}
        for name in os.listdir(tmp_path / folder / "runs"):
            with open(tmp_path / folder / "runs" / name) as f:
                record = json.load(f)
            runs[name] = (record["test_accuracy"], record["history"])
        outcomes.append(runs)
    assert len(outcomes[0]) == 4
    assert outcomes[0] == outcomes[1]


def test_missing_data_is_generated_with_the_generator_defaults_and_said(tmp_path):
    process = run_cli("--lengths", "5", *TINY, "--models", "lstm", "--data-dir", str(tmp_path / "d"),
                      "--results-dir", str(tmp_path / "r"))
    assert process.returncode == 0, process.stderr
    assert "adding_problem_L005.npz is missing: generating it" in process.stdout
    assert data.read_options(data.data_path(str(tmp_path / "d"), 5))["n_train"] == 60


@pytest.mark.parametrize("argv, message", [
    (["--models", "gru"], "invalid choice: 'gru'"),
    (["--lengths", "1"], "L >= 2"),
    (["--batch-size", "0"], "must be at least 1"),
    (["--epochs", "-1"], "must be at least 1"),
    (["--jobs", "0"], "must be at least 1"),
])
def test_bad_command_line_values_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err

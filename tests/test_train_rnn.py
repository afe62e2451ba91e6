"""The training protocol, the grid of runs, and the command line, on tiny data."""
import csv
import json
import os
import subprocess
import sys
import time

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


# ------------------------------------------------------------------------------ seeds and saved runs

def grid(tiny_data, results, *extra):
    """Run a tiny grid in this process (one job); returns what it printed."""
    argv = ["--lengths", "4", "7", *TINY, "--models", "simple_rnn", "alarmwork", "--seeds", "2",
            "--data-dir", tiny_data, "--results-dir", str(results), "--jobs", "1", *extra]
    train_rnn.main(argv)


def saved_runs(results):
    runs = {}
    for name in sorted(os.listdir(results / "runs")):
        with open(results / "runs" / name) as f:
            runs[name] = json.load(f)
    return runs


def test_seeds_give_one_csv_row_per_run_and_mean_std_solved_cells(tiny_data, tmp_path, capsys):
    grid(tiny_data, tmp_path)
    rows = read_csv(tmp_path / "accuracy.csv")
    assert sorted((r["model"], r["seq_len"], r["seed"]) for r in rows) == sorted(
        (m, L, s) for m in ("SimpleRNN", "AlarmworkNet") for L in ("4", "7") for s in ("0", "1"))
    printed = capsys.readouterr().out
    cell = [r for r in rows if r["model"] == "SimpleRNN" and r["seq_len"] == "4"]
    values = [float(r["test_accuracy"]) for r in cell]
    mean, std = sum(values) / 2, abs(values[0] - values[1]) / 2 ** 0.5
    assert f"{mean:.1f} ± {std:.1f} (0/2)" in printed
    assert (tmp_path / "accuracy.md").read_text().count("(0/2)") == 4
    for figure in ("accuracy.png", "learning_curves.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_finished_runs_and_force_recomputes_the_same_numbers(tiny_data, tmp_path, capsys):
    grid(tiny_data, tmp_path)
    first = saved_runs(tmp_path)
    stamps = {n: os.stat(tmp_path / "runs" / n).st_mtime_ns for n in first}
    capsys.readouterr()
    grid(tiny_data, tmp_path)
    assert "skipping 8 finished run(s)" in capsys.readouterr().out
    assert stamps == {n: os.stat(tmp_path / "runs" / n).st_mtime_ns for n in first}
    grid(tiny_data, tmp_path, "--force")
    assert "skipping" not in capsys.readouterr().out
    again = saved_runs(tmp_path)
    assert stamps != {n: os.stat(tmp_path / "runs" / n).st_mtime_ns for n in again}
    for name in first:   # the same command gives the same numbers
        assert again[name]["history"] == first[name]["history"]
        assert again[name]["test_accuracy"] == first[name]["test_accuracy"]


@pytest.mark.parametrize("option", [["--epochs", "1"], ["--lr", "0.02"], ["--hidden", "7"],
                                    ["--data-seed", "5"], ["--clip-grad-norm", "1.0"], ["--shuffle"],
                                    ["--alarmwork-engine", "autograd"]])
def test_runs_made_with_other_options_are_never_reused(option, tiny_data, tmp_path, capsys):
    argv = ["--lengths", "4", *TINY, "--models", "alarmwork", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    if option[0] == "--data-seed":   # a data set of another seed needs its own folder
        option = option + ["--data-dir", str(tmp_path / "other-data")]
    train_rnn.main(argv)
    capsys.readouterr()
    train_rnn.main(argv + option)
    assert "skipping" not in capsys.readouterr().out
    configs = [run["config"] for run in saved_runs(tmp_path).values()]
    assert len(configs) == 2 and configs[0] != configs[1]


def test_report_rebuilds_the_outputs_without_training(tiny_data, tmp_path, capsys, monkeypatch):
    grid(tiny_data, tmp_path)
    table = (tmp_path / "accuracy.md").read_text()
    for name in ("accuracy.csv", "accuracy.md", "accuracy.png", "learning_curves.png"):
        os.remove(tmp_path / name)
    monkeypatch.setattr(train_rnn, "train_run", lambda *a, **k: pytest.fail("--report trained"))
    grid(tiny_data, tmp_path, "--report")
    assert (tmp_path / "accuracy.md").read_text() == table
    assert len(read_csv(tmp_path / "accuracy.csv")) == 8
    assert (tmp_path / "learning_curves.png").exists() and (tmp_path / "accuracy.png").exists()


def test_a_killed_run_resumes_and_ends_with_every_run_saved_once(tiny_data, tmp_path):
    argv = [sys.executable, os.path.join(ROOT, "train_rnn.py"), "--lengths", "4", "7",
            "--train", "60", "--dev", "20", "--test", "20", "--epochs", "30", "--models", "lstm",
            "--seeds", "3", "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "runs"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:   # until a run is saved
            if runs.exists() and any(n.endswith(".json") for n in os.listdir(runs)):
                break
            time.sleep(0.02)
        process.kill()
    finally:
        process.wait()
    saved_before = [n for n in os.listdir(runs) if n.endswith(".json")]
    assert 1 <= len(saved_before) < 6, "the kill should land part-way through the grid"
    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipping {len(saved_before)} finished run(s)" in resumed.stdout
    saved_after = sorted(n for n in os.listdir(runs) if n.endswith(".json"))
    assert len(saved_after) == 6 and set(saved_before) <= set(saved_after)
    assert len(read_csv(tmp_path / "accuracy.csv")) == 6


# ------------------------------------------------------------------------------ failures

def test_broken_data_ends_in_one_line_and_writes_no_results(tiny_data, tmp_path):
    broken = tmp_path / "data"
    broken.mkdir()
    arrays = data.generate_data_set(4, {"train": 60, "dev": 20, "test": 20}, seed=0)
    arrays["x_dev"][0, 0, 0] = float("nan")
    import numpy as np
    np.savez(data.data_path(str(broken), 4), **arrays)
    process = run_cli("--lengths", "4", *TINY, "--data-dir", str(broken),
                      "--results-dir", str(tmp_path / "results"))
    assert process.returncode == 1
    assert process.stderr.strip().splitlines() == [
        f"error: {data.data_path(str(broken), 4)}: split 'dev' holds NaN or infinite values"]
    assert not (tmp_path / "results").exists()


def test_unwritable_results_folder_is_detected_before_training(tiny_data, tmp_path, monkeypatch):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")
    monkeypatch.setattr(train_rnn, "train_run", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--lengths", "4", *TINY, "--data-dir", tiny_data, "--results-dir", str(blocker)])
    assert f"cannot write results to '{blocker}'" in str(exit_info.value.code)


def test_corrupt_saved_run_is_reported_by_name_and_recomputed(tiny_data, tmp_path, capsys):
    argv = ["--lengths", "4", *TINY, "--models", "lstm", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    train_rnn.main(argv)
    (name, good), = saved_runs(tmp_path).items()
    (tmp_path / "runs" / name).write_text('{"config": {"model": "lst')
    capsys.readouterr()
    train_rnn.main(argv)
    output = capsys.readouterr()
    assert f"{name} is corrupt" in output.out + output.err
    assert "skipping" not in output.out
    assert saved_runs(tmp_path)[name]["test_accuracy"] == good["test_accuracy"]


def test_a_diverging_run_is_recorded_and_the_grid_goes_on(tiny_data, tmp_path, capsys):
    train_rnn.main(["--lengths", "4", *TINY, "--models", "lstm", "alarmwork", "--lr", "1e12",
                    "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"])
    rows = {r["model"]: r for r in read_csv(tmp_path / "accuracy.csv")}
    assert rows["LSTM"]["status"] == "diverged" and rows["LSTM"]["diverged_epoch"] == "1"
    assert rows["LSTM"]["test_accuracy"] == ""
    assert rows["AlarmworkNet"]["status"] == "finished"   # tanh output: the loss stays bounded
    assert "| LSTM         | diverged" in capsys.readouterr().out


def test_unknown_model_names_list_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        train_rnn.parse_args(["--models", "gru"])
    assert "invalid choice: 'gru' (choose from 'simple_rnn', 'lstm', 'alarmwork')" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_cuda_device_is_said_plainly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.parse_args(["--device", "cuda"])
    assert exit_info.value.code == 2
    assert "no CUDA device is available here" in capsys.readouterr().err


# ------------------------------------------------------------------------------ opt-in options

def tiny_parameters_with_gradient(scale):
    layer = torch.nn.Linear(3, 2)
    for p in layer.parameters():
        p.grad = torch.full_like(p, scale)   # 8 entries: norm = scale * sqrt(8)
    return layer


def test_gradient_clipping_changes_nothing_below_the_threshold():
    layer = tiny_parameters_with_gradient(0.1)
    before = [p.grad.clone() for p in layer.parameters()]
    norm = train_rnn.clip_or_measure(layer.parameters(), max_norm=1.0)
    assert norm.item() == pytest.approx(0.1 * 8 ** 0.5)
    for p, grad in zip(layer.parameters(), before):
        assert torch.equal(p.grad, grad)


def test_gradient_clipping_caps_the_norm_above_the_threshold():
    layer = tiny_parameters_with_gradient(2.0)
    norm = train_rnn.clip_or_measure(layer.parameters(), max_norm=1.0)
    assert norm.item() == pytest.approx(2.0 * 8 ** 0.5)          # the norm before clipping
    clipped = torch.cat([p.grad.flatten() for p in layer.parameters()])
    assert clipped.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(clipped, clipped[0].expand_as(clipped))  # direction kept


def test_without_clipping_the_gradient_norm_is_measured_and_left_alone():
    layer = tiny_parameters_with_gradient(2.0)
    norm = train_rnn.clip_or_measure(layer.parameters(), max_norm=None)
    assert norm.item() == pytest.approx(2.0 * 8 ** 0.5)
    assert all((p.grad == 2.0).all() for p in layer.parameters())


def test_shuffle_is_deterministic_for_a_seed_and_changes_the_batches(tiny_data):
    arrays = data.load_data_set(tiny_data, 4)
    runs = [train_rnn.train_run(tiny_config(epochs=2, **options), arrays, show_progress=False)
            for options in ({"shuffle": True}, {"shuffle": True}, {"shuffle": False})]
    losses = [[h.get("train_loss") for h in run["history"]] for run in runs]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]
    assert all("grad_norm" in h for h in runs[0]["history"][:-1])

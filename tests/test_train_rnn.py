"""The training protocol, the grid of runs, and the command line, on tiny data."""
import csv
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

import generate_data_adding_problem as data
import train_rnn
from experiment import recipes, report, selection, training
from experiment.datasets import data_options
from models import MODELS
from experiment.runs import checkpoint_path, load_record, record_path

MODERN_RATES = recipes.RECIPES["modern"]["lr"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train", "60", "--dev", "20", "--test", "20", "--epochs", "2"]


def run_cli(*argv, cwd=None):
    """Run train_rnn.py as a user would; returns the completed process."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "train_rnn.py"), *argv],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def data_options_of(args):
    """The data options a command's runs take (without generating anything)."""
    return data_options(args.data_dir, args.lengths, data.sizes_from(args), args.data_seed)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ command line

def test_tiny_end_to_end_run_prints_the_table_and_writes_the_results(tiny_data, tmp_path, capsys):
    results = tmp_path / "results"
    train_rnn.main(["--lengths", "4", "7", *TINY, "--data-dir", tiny_data,
                    "--results-dir", str(results), "--jobs", "1"])
    printed = capsys.readouterr().out
    for name in ("SimpleRNN", "LSTM", "AlarmworkNet", "L = 4", "L = 7"):
        assert name in printed
    rows = read_csv(results / "accuracy.csv")
    assert [(r["model"], r["seq_len"]) for r in rows] == [
        (m, L) for m in ("SimpleRNN", "LSTM", "AlarmworkNet") for L in ("4", "7")]
    for row in rows:
        assert row["seed"] == "0" and row["epochs_run"] == "2" and row["status"] == "finished"
        assert 0 <= float(row["test_accuracy"]) <= 100 and float(row["train_seconds"]) > 0
    table = (results / "accuracy.md").read_text()
    assert table.count("\n|") == 5   # header, rule and one row per model
    names = sorted(os.listdir(results / "runs"))     # a record and its weights a run, no more
    records = [name for name in names if name.endswith(".json")]
    assert len(records) == 6
    assert names == sorted(records + [name[:-len(".json")] + ".safetensors" for name in records])


def test_same_seed_gives_the_same_numbers_with_one_or_two_jobs(tiny_data, tmp_path):
    outcomes = []
    for jobs, folder in (("1", "a"), ("2", "b")):      # in this process; --jobs 2: in two workers
        train_rnn.main(["--lengths", "4", "7", *TINY, "--models", "lstm", "alarmwork",
                        "--data-dir", tiny_data, "--results-dir", str(tmp_path / folder),
                        "--jobs", jobs])
        runs = {}
        for name in record_names(tmp_path / folder / "runs"):
            with open(tmp_path / folder / "runs" / name) as f:
                record = json.load(f)
            runs[name] = (record["test_accuracy"], record["history"])
        outcomes.append(runs)
    assert len(outcomes[0]) == 4
    assert outcomes[0] == outcomes[1]


def test_missing_data_is_generated_with_the_generator_defaults_and_said(tmp_path, capsys):
    train_rnn.main(["--lengths", "5", *TINY, "--models", "lstm", "--data-dir", str(tmp_path / "d"),
                    "--results-dir", str(tmp_path / "r")])
    assert "adding_problem_L005.npz is missing: generating it" in capsys.readouterr().out
    assert data.read_options(data.data_path(str(tmp_path / "d"), 5))["n_train"] == 60


@pytest.mark.parametrize("argv, message", [
    (["--models", "gru"], "invalid choice: 'gru'"),
    (["--lengths", "1"], "L >= 2"),
    (["--batch-size", "0"], "must be at least 1"),
    (["--epochs", "-1"], "must be at least 1"),
    (["--jobs", "0"], "must be at least 1"),
    (["--lr", "0"], "must be positive"),
    (["--recipe", "fancy"], "invalid choice: 'fancy'"),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--optimizer", "adam", "--momentum", "0.9"], "momentum is SGD's only"),
    (["--recipe", "modern", "--momentum", "0.9"], "momentum is SGD's only"),
    (["--clip-grad-norm", "0"], "must be positive"),
    (["--lstm-forget-bias", "nan"], "must be a finite number"),
    (["--lstm-chrono", "inf"], "--lstm-chrono: must be a finite number, got inf"),
    (["--lstm-chrono", "nan"], "--lstm-chrono: must be a finite number, got nan"),
    (["--lstm-chrono=-Infinity"], "must be a finite number"),
    (["--lr", "inf"], "--lr: must be a finite number, got inf"),
    (["--clip-grad-norm", "nan"], "must be a finite number"),
    (["--lstm-forget-bias", "one"], "expected a number, got 'one'"),
    (["--periods", "2", "4"], "--periods must start at 1 and strictly increase, got 2 4"),
    (["--periods", "1", "4", "4"], "--periods must start at 1 and strictly increase"),
    (["--wiring", "bogus"], "argument --wiring: invalid choice: 'bogus' (choose from"),
    (["--warmup-steps", "-1"], "--warmup-steps: must be at least 0, got -1"),
    (["--adam-eps", "0"], "--adam-eps: must be positive, got 0"),
    (["--adam-eps", "1e-3"], "eps is Adam's and RAdam's only, and this run uses sgd"),
    (["--end-frozen", "--shuffle"], "--end-frozen needs the batches in data-set order"),
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


def record_names(folder):
    """The run records in a runs/ folder, by name (beside them: their weights); not a record
    being written, whose temporary name starts with a dot (lib/atomic_files.py)."""
    return sorted(name for name in os.listdir(folder)
                  if name.endswith(".json") and not name.startswith("."))


def saved_runs(results):
    runs = {}
    for name in record_names(results / "runs"):
        with open(results / "runs" / name) as f:
            runs[name] = json.load(f)
    return runs


def test_seeds_give_one_csv_row_per_run_and_cells_with_solved_count_median_and_range(
        tiny_data, tmp_path, capsys):
    grid(tiny_data, tmp_path)
    rows = read_csv(tmp_path / "accuracy.csv")
    assert sorted((r["model"], r["seq_len"], r["seed"]) for r in rows) == sorted(
        (m, L, s) for m in ("SimpleRNN", "AlarmworkNet") for L in ("4", "7")
        for s in ("0", "1"))
    printed = capsys.readouterr().out
    cell = [r for r in rows if r["model"] == "SimpleRNN" and r["seq_len"] == "4"]
    low, high = sorted(float(r["test_accuracy"]) for r in cell)
    assert f"0/2 solved [0–66 %]; median {(low + high) / 2:.1f} ({low:.1f}–{high:.1f})" in printed
    assert (tmp_path / "accuracy.md").read_text().count("0/2 solved") == 4
    assert not [p for p in (tmp_path / "runs").iterdir() if p.suffix == ".ckpt"]   # all removed
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
                                    ["--alarmwork-engine", "autograd"], ["--warmup-steps", "2"]])
def test_runs_made_with_other_options_are_never_reused(option, tiny_data, tmp_path, capsys):
    argv = ["--lengths", "4", *TINY, "--models", "alarmwork", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    if option[0] == "--data-seed":   # a data set of another seed needs its own folder
        option = option + ["--data-dir", str(tmp_path / "other-data")]
    assert_the_option_trains_a_new_run(argv, option, tmp_path, capsys)


def assert_the_option_trains_a_new_run(argv, option, results, capsys):
    """Train `argv`, then `argv + option`: the second is a run of its own, saved beside the first."""
    train_rnn.main(argv)
    capsys.readouterr()
    train_rnn.main(argv + option)
    assert "skipping" not in capsys.readouterr().out
    configs = [run["config"] for run in saved_runs(results).values()]
    assert len(configs) == 2 and configs[0] != configs[1]


def test_force_trains_from_the_first_epoch_even_with_a_checkpoint_on_disk(tiny_data, tmp_path,
                                                                         monkeypatch):
    argv = ["--lengths", "4", *TINY, "--models", "lstm", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    train_rnn.main(argv)
    (config,) = [run["config"] for run in saved_runs(tmp_path).values()]
    checkpoint = checkpoint_path(str(tmp_path), config)
    with open(checkpoint, "wb") as f:
        f.write(b"the state of an older run")
    seen = []
    real_train_run = training.train_run

    def train_run(config, arrays, **options):
        seen.append(os.path.exists(options["checkpoint"]))
        return real_train_run(config, arrays, **options)

    monkeypatch.setattr(training, "train_run", train_run)
    train_rnn.main(argv + ["--force"])
    assert seen == [False] and not os.path.exists(checkpoint)


def test_report_rebuilds_the_outputs_without_training(tiny_data, tmp_path, capsys, monkeypatch):
    grid(tiny_data, tmp_path)
    table = (tmp_path / "accuracy.md").read_text()
    for name in ("accuracy.csv", "accuracy.md", "accuracy.png", "learning_curves.png"):
        os.remove(tmp_path / name)
    monkeypatch.setattr(training, "train_run", lambda *a, **k: pytest.fail("--report trained"))
    train_rnn.main(["--report", "--results-dir", str(tmp_path)])
    assert (tmp_path / "accuracy.md").read_text() == table
    assert len(read_csv(tmp_path / "accuracy.csv")) == 8
    assert (tmp_path / "learning_curves.png").exists() and (tmp_path / "accuracy.png").exists()


def test_a_killed_run_resumes_and_ends_with_every_run_saved_once(tiny_data, tmp_path, capsys):
    argv = ["--lengths", "4", "7", "--train", "60", "--dev", "20", "--test", "20", "--epochs", "30",
            "--models", "lstm", "--seeds", "3", "--data-dir", tiny_data, "--results-dir",
            str(tmp_path), "--jobs", "1"]
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train_rnn.py"), *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "runs"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:   # until a run is saved
            if runs.exists() and record_names(runs):
                break
            time.sleep(0.02)
        process.kill()
    finally:
        process.wait()
    saved_before = record_names(runs)
    assert 1 <= len(saved_before) < 6, "the kill should land part-way through the grid"
    train_rnn.main(argv)                          # the same command, in this process
    assert f"skipping {len(saved_before)} finished run(s)" in capsys.readouterr().out
    saved_after = record_names(runs)
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
    monkeypatch.setattr(training, "train_run", lambda *a, **k: pytest.fail("training started"))
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
    valid = ", ".join(f"'{name}'" for name in MODELS)
    assert f"invalid choice: 'gru' (choose from {valid})" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_cuda_device_is_said_plainly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.parse_args(["--device", "cuda"])
    assert exit_info.value.code == 2
    assert "no CUDA device is available here" in capsys.readouterr().err




# ------------------------------------------------------------------------------ recipes in the configuration

ASSIGNMENT_KEYS = {"model", "seq_len", "seed", "epochs", "batch_size", "hidden", "lr", "momentum",
                   "engine", "clip_grad_norm", "shuffle", "device", "data"}
ABSENT = object()   # an expected configuration entry that must not be there


def configs_of(*argv):
    """The run configurations of a command line (one length, one seed), by model."""
    args = train_rnn.parse_args(["--models", *MODELS, "--lengths", "10", *argv])
    return {c["model"]: c for c in train_rnn.make_configs(args, data_options_of(args))}


def assert_entries(config, expected):
    for key, value in expected.items():
        assert config.get(key, ABSENT) == value if value is not ABSENT else key not in config, key


@pytest.mark.parametrize("argv", [[], ["--recipe", "assignment"], ["--optimizer", "sgd"],
                                  ["--lstm-forget-bias", "none"], ["--clip-grad-norm", "none"],
                                  ["--warmup-steps", "0"], ["--adam-eps", "none"],
                                  ["--no-end-frozen"]])
def test_assignment_runs_keep_the_keys_of_the_records_saved_before_recipes(argv):
    for model, config in configs_of(*argv).items():
        expected = ASSIGNMENT_KEYS | ({"periods"} if model == "clockwork" else set())
        assert set(config) == expected, model
        assert (config["lr"], config["momentum"], config["clip_grad_norm"]) == (0.01, 0.9, None)


@pytest.mark.parametrize("argv, model, expected", [
    (["--optimizer", "adam"], "lstm", {"optimizer": "adam", "lr": MODERN_RATES["lstm"],
                                       "momentum": None}),
    (["--optimizer", "adam", "--lr", "0.02"], "simple_rnn", {"optimizer": "adam", "lr": 0.02}),
    (["--lr", "0.02"], "alarmwork", {"optimizer": ABSENT, "lr": 0.02, "momentum": 0.9}),
    (["--momentum", "0.5"], "alarmwork", {"momentum": 0.5}),
    (["--clip-grad-norm", "2"], "simple_rnn", {"clip_grad_norm": 2.0}),
    (["--lstm-forget-bias", "1.5"], "lstm", {"lstm_forget_bias": 1.5}),
    (["--lstm-forget-bias", "0"], "lstm", {"lstm_forget_bias": 0.0}),
    (["--periods", "1", "3", "9"], "clockwork", {"periods": [1, 3, 9], "engine": "bptt"}),
    (["--alarmwork-engine", "autograd"], "clockwork", {"engine": "autograd"}),
    (["--recipe", "modern"], "lstm", {"recipe": "modern", "optimizer": "adam",
                                      "lr": MODERN_RATES["lstm"],
                                      "momentum": None, "clip_grad_norm": 1.0,
                                      "lstm_forget_bias": 1.0}),
    (["--recipe", "modern"], "alarmwork", {"recipe": "modern", "optimizer": "adam",
                                           "clip_grad_norm": 1.0, "lstm_forget_bias": ABSENT}),
    (["--optimizer", "radam"], "lstm", {"optimizer": "radam", "lr": MODERN_RATES["lstm"],
                                        "momentum": None, "adam_eps": ABSENT}),
    (["--recipe", "integrator", "--optimizer", "radam", "--adam-eps", "1e-3", "--warmup-steps",
      "500"], "alarmwork", {"recipe": "integrator", "optimizer": "radam", "adam_eps": 1e-3,
                            "warmup_steps": 500, "lr": recipes.RECIPES["integrator"]["lr"]["alarmwork"]}),
    (["--optimizer", "adam", "--adam-eps", "1e-4"], "simple_rnn", {"adam_eps": 1e-4}),
    (["--end-frozen"], "clockwork", {"end_frozen": True, "optimizer": ABSENT}),
])
def test_each_recipe_option_lands_in_the_run_configuration(argv, model, expected):
    assert_entries(configs_of(*argv)[model], expected)


def test_model_specific_options_appear_only_in_their_models_configurations():
    configs = configs_of("--lstm-forget-bias", "1", "--periods", "1", "2")
    assert [m for m, c in configs.items() if "lstm_forget_bias" in c] == ["lstm"]
    assert [m for m, c in configs.items() if "periods" in c] == ["clockwork"]
    assert {m: c["engine"] for m, c in configs.items()} == {
        "simple_rnn": None, "lstm": None, "alarmwork": "bptt", "clockwork": "bptt"}


@pytest.mark.parametrize("argv, expected", [
    (["--lr", "0.005"], {"lr": 0.005, "optimizer": "adam"}),
    (["--optimizer", "sgd"], {"optimizer": ABSENT, "lr": 0.01, "momentum": 0.9,
                              "clip_grad_norm": 1.0, "lstm_forget_bias": 1.0}),
    (["--optimizer", "sgd", "--momentum", "0.5"], {"momentum": 0.5}),
    (["--clip-grad-norm", "none"], {"clip_grad_norm": None, "optimizer": "adam"}),
    (["--clip-grad-norm", "5"], {"clip_grad_norm": 5.0}),
    (["--lstm-forget-bias", "none"], {"lstm_forget_bias": ABSENT, "clip_grad_norm": 1.0}),
    (["--lstm-forget-bias", "2"], {"lstm_forget_bias": 2.0}),
])
def test_explicit_flags_beat_the_recipe(argv, expected):
    lstm = configs_of("--recipe", "modern", *argv)["lstm"]
    assert_entries(lstm, {"recipe": "modern", **expected})


def test_the_modern_recipe_gives_each_model_its_own_rate(monkeypatch, capsys):
    rates = {model: 0.001 * (i + 1) for i, model in enumerate(MODELS)}
    monkeypatch.setitem(recipes.RECIPES["modern"], "lr", rates)
    assert {m: c["lr"] for m, c in configs_of("--recipe", "modern").items()} == rates
    assert {m: c["lr"] for m, c in configs_of("--optimizer", "adam").items()} == rates
    assert {m: c["lr"] for m, c in configs_of("--recipe", "modern", "--lr", "0.1").items()} == {
        m: 0.1 for m in MODELS}
    with pytest.raises(SystemExit):
        train_rnn.parse_args(["--help"])
    assert "lstm 0.002" in capsys.readouterr().out


def test_help_lists_what_each_recipe_sets(capsys):
    with pytest.raises(SystemExit):
        train_rnn.parse_args(["--help"])
    printed = capsys.readouterr().out
    flat = " ".join(printed.split())
    assert "assignment optimizer sgd, lr 0.01, momentum 0.9, clip-grad-norm none" in flat
    assert flat.count("recurrent-bound none") == len(recipes.RECIPES) - 1   # on in the bounded one
    assert "integrator_bounded optimizer adam" in flat and "recurrent-bound integrator" in flat
    rates = ", ".join(f"{model} {rate:g}" for model, rate in MODERN_RATES.items())
    assert (f"modern optimizer adam, lr {rates}, momentum none, clip-grad-norm 1.0"
            in flat)
    integrator = flat.split("integrator optimizer adam, lr ")[1]
    for model, rate in recipes.RECIPES["integrator"]["lr"].items():
        assert f"{model} {'(not chosen yet)' if rate is None else f'{rate:g}'}" in integrator
    assert "integrator_smaller_rate optimizer adam, lr simple_rnn 0.0001, lstm 0.0003" in flat


@pytest.mark.parametrize("model, option", [
    ("lstm", ["--optimizer", "adam"]), ("lstm", ["--recipe", "modern"]),
    ("lstm", ["--lstm-forget-bias", "1"]), ("lstm", ["--momentum", "0.5"]),
    ("clockwork", ["--periods", "1", "2"]),
])
def test_runs_made_with_another_recipe_are_never_reused(model, option, tiny_data, tmp_path, capsys):
    argv = ["--lengths", "4", *TINY, "--models", model, "--hidden", "4", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    assert_the_option_trains_a_new_run(argv, option, tmp_path, capsys)
    train_rnn.main(argv + option)
    assert "skipping 1 finished run(s)" in capsys.readouterr().out


# ------------------------------------------------------------------------------ the wiring

def wiring_runs(tiny_data, results, models, *extra):
    """Train `models` at L = 4 on the tiny data (one job, in this process); returns the argv."""
    argv = ["--lengths", "4", *TINY, "--models", *models, "--data-dir", tiny_data,
            "--results-dir", str(results), "--jobs", "1", *extra]
    train_rnn.main(argv)
    return argv


@pytest.mark.parametrize("model", ["alarmwork", "clockwork"])
def test_wiring_all_trains_a_run_of_its_own_recorded_with_its_wiring(model, tiny_data, tmp_path,
                                                                     capsys):
    wiring_runs(tiny_data, tmp_path, [model])
    wiring_runs(tiny_data, tmp_path, [model], "--wiring", "all")
    assert "skipping" not in capsys.readouterr().out
    runs = saved_runs(tmp_path)
    (slower,) = [r for name, r in runs.items() if "wiring" not in r["config"]]
    (all_wired,) = [r for name, r in runs.items() if "wiring" in r["config"]]
    assert all_wired["config"] == {**slower["config"], "wiring": "all"}
    assert record_path(str(tmp_path), all_wired["config"]) != record_path(str(tmp_path),
                                                                          slower["config"])
    # the same seed, data and weights' draw: only the wiring can make the losses differ
    losses = [[h["train_loss"] for h in run["history"] if "train_loss" in h]
              for run in (all_wired, slower)]
    assert len(losses[0]) == 2 and losses[0] != losses[1]
    assert report.model_label(all_wired["config"]).endswith(" all-wired")
    assert report.model_label(all_wired["config"]) in (tmp_path / "accuracy.md").read_text()
    assert {r["model"] for r in read_csv(tmp_path / "accuracy.csv")} == {
        report.model_label(slower["config"]), report.model_label(all_wired["config"])}


def test_wiring_slower_is_the_default_and_left_out_of_the_configuration(tiny_data, tmp_path, capsys):
    assert configs_of("--wiring", "slower") == configs_of()
    assert all("wiring" not in config for config in configs_of("--wiring", "slower").values())
    wiring_runs(tiny_data, tmp_path, ["alarmwork"])
    capsys.readouterr()
    wiring_runs(tiny_data, tmp_path, ["alarmwork"], "--wiring", "slower")
    assert "skipping 1 finished run(s)" in capsys.readouterr().out     # the same key: not retrained
    assert len(saved_runs(tmp_path)) == 1


def test_wiring_all_is_dropped_from_the_networks_without_clocks(tiny_data, tmp_path, capsys):
    """--wiring, like --periods, is a setting of the models that have it: the others' runs are
    the runs without it, found again and not retrained."""
    with_all, plain = configs_of("--wiring", "all"), configs_of()
    for model in ("simple_rnn", "lstm"):
        assert with_all[model] == plain[model]
    for model in ("alarmwork", "clockwork"):
        assert with_all[model] == {**plain[model], "wiring": "all"}
    wiring_runs(tiny_data, tmp_path, ["simple_rnn", "lstm"])
    capsys.readouterr()
    wiring_runs(tiny_data, tmp_path, ["simple_rnn", "lstm"], "--wiring", "all")
    assert "skipping 2 finished run(s)" in capsys.readouterr().out
    assert len(saved_runs(tmp_path)) == 2


# ------------------------------------------------------------------------------ the committed records

@pytest.mark.parametrize("argv, num_runs", [
    ([], 12),
    (["--seeds", "5"], 60),
    (["--seeds", "5", "--clip-grad-norm", "1.0", "--results-dir", "results/clip1.0"], 60),
])
def test_the_commands_beside_the_committed_results_reuse_every_committed_run(argv, num_runs,
                                                                             monkeypatch):
    """The records committed under results/ are found by their commands and not trained again."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # they were trained on the CPU
    args = train_rnn.parse_args(argv)
    configs = train_rnn.make_configs(args, data_options_of(args))
    assert len(configs) == num_runs
    for config in configs:
        assert load_record(record_path(args.results_dir, config), config) is not None, config
    runs = os.path.join(args.results_dir, "runs")
    committed = set()
    for name in os.listdir(runs):
        if name.endswith(".json") and not name.startswith("."):
            with open(os.path.join(runs, name)) as f:
                if json.load(f)["config"]["seed"] in args.seed_list:
                    committed.add(os.path.join(runs, name))
    assert committed == {record_path(args.results_dir, c) for c in configs}


# ------------------------------------------------------------------------------ the data the trainer finds

SEEDED = {"seq_len": 5, "seed": 7, "n_train": 60, "n_dev": 20, "n_test": 20}   # not the defaults


@pytest.fixture(scope="module")
def seeded_data(tmp_path_factory):
    """A data set of L = 5 made by the generator's command line with options of its own."""
    folder = tmp_path_factory.mktemp("seeded")
    process = subprocess.run([sys.executable, os.path.join(ROOT, "generate_data_adding_problem.py"),
                              "--lengths", "5", "--train", "60", "--dev", "20", "--test", "20",
                              "--seed", "7", "--data-dir", str(folder)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    return str(folder)


def test_the_trainer_trains_on_the_data_the_generator_made_and_records_its_options(
        seeded_data, tmp_path, capsys):
    argv = ["--lengths", "5", "--models", "lstm", "--epochs", "1", "--jobs", "1",
            "--data-dir", seeded_data, "--results-dir", str(tmp_path)]
    train_rnn.main(argv)
    assert "training on it as it was made (seq_len=5, seed=7, n_train=60" in capsys.readouterr().out
    (run,) = saved_runs(tmp_path).values()
    assert run["config"]["data"] == SEEDED
    train_rnn.main(argv + ["--train", "60", "--data-seed", "7"])   # flags that agree with the file
    assert "skipping 1 finished run(s)" in capsys.readouterr().out


def test_an_explicit_data_flag_against_the_file_is_a_one_line_error(seeded_data, tmp_path):
    process = run_cli("--lengths", "5", "--models", "lstm", "--epochs", "1", "--data-seed", "8",
                      "--data-dir", seeded_data, "--results-dir", str(tmp_path / "r"))
    assert process.returncode == 1
    path = data.data_path(seeded_data, 5)
    assert process.stderr.strip().splitlines() == [
        f"error: {path}: made with other options (seq_len=5, seed=7, n_train=60, n_dev=20, "
        "n_test=20) than --data-seed 8; drop the flag to train on it as it is, use another "
        "--data-dir, or replace it with generate_data_adding_problem.py --force"]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, named", [
    (["--train", "61"], "than --train 61;"), (["--dev", "21"], "than --dev 21;"),
    (["--test", "19", "--tr", "60"], "than --test 19;"),      # an abbreviation counts as given
    (["--train", "1", "--dev", "1"], "than --train 1 --dev 1; drop those flags"),
])
def test_each_data_flag_given_is_checked_against_the_file(flags, named, seeded_data, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--lengths", "5", "--data-dir", seeded_data,
                        "--results-dir", str(tmp_path), *flags])
    assert named in str(exit_info.value.code)


def test_default_data_files_give_the_configuration_of_data_made_on_the_fly(tmp_path):
    """A fresh clone (no data yet) and a machine holding the default files name the same runs."""
    data.write_data_set(str(tmp_path / "made"), 3)
    made, missing = (train_rnn.parse_args(["--lengths", "3", "--data-dir", str(tmp_path / d)])
                     for d in ("made", "missing"))
    found = data_options_of(made)
    assert found == data_options_of(missing) == {3: {
        "seq_len": 3, "seed": 2021, "n_train": 10000, "n_dev": 1000, "n_test": 1000}}
    assert all(type(value) is int for value in found[3].values())
    assert (train_rnn.make_configs(made, found)
            == train_rnn.make_configs(missing, data_options_of(missing)))


# ------------------------------------------------------------------------------ --report: what is saved

@pytest.fixture(scope="module")
def two_configurations(tiny_data, tmp_path_factory):
    """A results folder of 8 runs without clipping (2 models x L = 4, 7 x 2 seeds) and 2 with."""
    folder = tmp_path_factory.mktemp("two")
    common = ["--epochs", "1", "--seeds", "2", "--data-dir", tiny_data, "--results-dir", str(folder),
              "--jobs", "1"]
    train_rnn.main(["--models", "lstm", "alarmwork", "--lengths", "4", "7", *common])
    train_rnn.main(["--models", "lstm", "--lengths", "4", "--clip-grad-norm", "1.0", *common])
    return folder


def copy_of(folder, tmp_path):
    """The runs of `folder` in a folder of this test's own, so that its outputs are its own."""
    shutil.copytree(folder / "runs", tmp_path / "runs")
    return tmp_path


def test_report_reports_the_runs_saved_whatever_options_made_them(tiny_data, tmp_path, capsys):
    train_rnn.main(["--lengths", "4", "--epochs", "2", "--seeds", "2", "--models", "lstm", "alarmwork",
                    "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"])
    table = (tmp_path / "accuracy.md").read_text()
    os.remove(tmp_path / "accuracy.md")
    capsys.readouterr()
    train_rnn.main(["--report", "--results-dir", str(tmp_path)])
    assert "now describe the 4 run(s) saved there" in capsys.readouterr().out
    assert (tmp_path / "accuracy.md").read_text() == table   # the table the training printed
    assert len(read_csv(tmp_path / "accuracy.csv")) == 4


def test_a_folder_of_two_configurations_gives_a_table_for_each_titled_by_what_differs(
        two_configurations, tmp_path):
    folder = copy_of(two_configurations, tmp_path)
    train_rnn.main(["--report", "--results-dir", str(folder)])
    text = (folder / "accuracy.md").read_text()
    assert text.count("Test accuracy (%)") == 1                   # one caption
    without, with_clipping = text.split("**clip_grad_norm = 1.0**")
    assert "**clip_grad_norm = none**" in without
    assert without.count("\n| AlarmworkNet ") == 1 and "| L = 7 " in without
    assert with_clipping.count("\n| LSTM ") == 1 and "| L = 7 " not in with_clipping
    assert "AlarmworkNet" not in with_clipping
    assert "0/2 solved" in with_clipping                            # both seeds in its cell
    rows = read_csv(folder / "accuracy.csv")
    assert sorted((r["configuration"], r["clip_grad_norm"]) for r in rows) == sorted(
        [("clip_grad_norm = none", "")] * 8 + [("clip_grad_norm = 1.0", "1.0")] * 2)
    cells = read_csv(folder / "cells.csv")
    assert [(c["configuration"], c["model"], c["seq_len"]) for c in cells][-1] == (
        "clip_grad_norm = 1.0", "LSTM", "4")
    for figure in ("accuracy.png", "learning_curves.png"):
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flags, expected", [
    (["--clip-grad-norm", "1.0"], {("LSTM", "4", "0", "1.0"), ("LSTM", "4", "1", "1.0")}),
    (["--models", "alarmwork", "--seed", "1"], {("AlarmworkNet", "4", "1", ""),
                                                ("AlarmworkNet", "7", "1", "")}),
    (["--lengths", "7", "--clip-grad-norm", "none", "--seeds", "1"], {("LSTM", "7", "0", ""),
                                                                       ("AlarmworkNet", "7", "0", "")}),
])
def test_options_given_with_report_narrow_the_selection(flags, expected, two_configurations,
                                                        tmp_path, capsys):
    folder = copy_of(two_configurations, tmp_path)
    before = sorted(os.listdir(folder))
    args = train_rnn.parse_args(["--report", "--results-dir", str(folder), *flags])
    records = selection.saved_records(str(folder), train_rnn.request_of(args))
    assert {(report.model_label(r["config"]), str(r["config"]["seq_len"]), str(r["config"]["seed"]),
             "" if r["config"]["clip_grad_norm"] is None else str(r["config"]["clip_grad_norm"]))
            for r in records} == expected
    assert f"reporting {len(expected)} of the 10 run(s)" in capsys.readouterr().out
    train_rnn.main(["--report", "--results-dir", str(folder), *flags])
    printed = capsys.readouterr().out
    assert "one table each" not in printed                          # one configuration: one table
    assert "are left as they are" in printed and sorted(os.listdir(folder)) == before


def test_report_narrowed_to_nothing_or_of_an_empty_folder_says_so(two_configurations, tmp_path):
    folder = copy_of(two_configurations, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--report", "--results-dir", str(folder), "--hidden", "7"])
    assert str(exit_info.value.code) == (f"error: none of the 10 run(s) saved in {folder / 'runs'} "
                                         "match --hidden 7")
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--report", "--results-dir", str(tmp_path / "empty")])
    assert "no runs are saved in" in str(exit_info.value.code)


def test_report_leaves_out_a_corrupt_record_and_names_it(two_configurations, tmp_path, capsys):
    folder = copy_of(two_configurations, tmp_path)
    name = record_names(folder / "runs")[0]
    (folder / "runs" / name).write_text('{"config": {"model": "lst')
    train_rnn.main(["--report", "--results-dir", str(folder)])
    output = capsys.readouterr()
    assert f"{name} is corrupt" in output.out + output.err
    assert len(read_csv(folder / "accuracy.csv")) == 9


def fake_records(*configs):
    return [{"config": config} for config in configs]


def test_configurations_are_titled_by_every_option_in_which_they_differ():
    (base,) = configs_of("--models", "lstm").values()
    other = dict(base, clip_grad_norm=1.0, lr=0.02, seed=1)
    grouped, titles = selection.by_configuration(fake_records(other, base, dict(base, seq_len=50)))
    assert titles == ["clip_grad_norm = none, lr = 0.01"] * 2 + ["clip_grad_norm = 1.0, lr = 0.02"]
    assert [r["config"] for r in grouped] == [base, dict(base, seq_len=50), other]


def test_what_the_model_label_or_another_model_tells_does_not_split_a_configuration(monkeypatch):
    rates = {"simple_rnn": 1e-3, "lstm": 3e-3, "alarmwork": 1e-2, "clockwork": 3e-4}
    monkeypatch.setitem(recipes.RECIPES["modern"], "lr", rates)
    one_command = list(configs_of("--recipe", "modern").values())   # an lr and engine per model
    wider = [dict(c, hidden=8) for c in one_command]                 # the label says P=8
    grouped, titles = selection.by_configuration(fake_records(*one_command, *wider))
    assert titles is None and len(grouped) == 8


def test_a_run_without_the_setting_in_which_two_configurations_differ_belongs_to_both():
    configs = configs_of("--models", "simple_rnn", "alarmwork")
    autograd = dict(configs["alarmwork"], engine="autograd")
    grouped, titles = selection.by_configuration(fake_records(*configs.values(), autograd))
    assert titles == ["engine = autograd"] * 2 + ["engine = bptt"] * 2
    assert [r["config"]["model"] for r in grouped] == ["simple_rnn", "alarmwork"] * 2

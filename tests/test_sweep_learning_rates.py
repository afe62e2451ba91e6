"""The learning-rate sweep: its choice rule reads dev accuracy only, and a tiny sweep runs end to end."""
import os

import pandas as pd

from studies import sweep_learning_rates as sweep
from experiment import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record(model, lr, seed, dev_accuracy, test_accuracy, epochs_run=50):
    config = {"model": model, "lr": lr, "seed": seed, "seq_len": 100, "hidden": 50}
    return {"config": config, "dev_accuracy": dev_accuracy, "test_accuracy": test_accuracy,
            "epochs_run": epochs_run}


def choose(records):
    return sweep.choose_rates(sweep.sweep_table(records))


def test_the_rate_with_the_highest_mean_dev_accuracy_wins():
    records = [record("lstm", 1e-3, 100, 99.6, 99.0), record("lstm", 1e-3, 101, 35.0, 35.0),
               record("lstm", 3e-4, 100, 80.0, 80.0), record("lstm", 3e-4, 101, 70.0, 70.0)]
    assert choose(records)["lstm"][0] == 3e-4      # mean 75.0 beats mean 67.3


def test_test_accuracy_never_changes_the_choice():
    dev = [("lstm", 1e-3, 100, 90.0), ("lstm", 1e-3, 101, 90.0),
           ("lstm", 3e-3, 100, 60.0), ("lstm", 3e-3, 101, 60.0)]
    with_low_test = [record(*d, test_accuracy=10.0 if d[1] == 1e-3 else 100.0) for d in dev]
    with_high_test = [record(*d, test_accuracy=100.0 if d[1] == 1e-3 else 10.0) for d in dev]
    assert choose(with_low_test) == choose(with_high_test)
    assert choose(with_low_test)["lstm"][0] == 1e-3


def test_a_model_whose_rates_all_stay_on_the_plateau_keeps_the_fallback_rate():
    records = [record("alarmwork", lr, seed, 36.0 + 10 * (lr == 3e-3), 99.0)
               for lr in sweep.RATES for seed in sweep.SEEDS]
    rate, reason = choose(records)["alarmwork"]
    assert rate == sweep.FALLBACK_RATE == 1e-3
    assert "plateau" in reason


def test_ties_go_to_fewer_epochs_then_to_the_larger_rate():
    records = [record("lstm", 1e-4, 100, 99.6, 99.0, epochs_run=30),
               record("lstm", 1e-3, 100, 99.6, 99.0, epochs_run=10),
               record("lstm", 3e-3, 100, 99.6, 99.0, epochs_run=10)]
    assert choose(records)["lstm"][0] == 3e-3


def test_a_diverged_run_counts_as_zero_in_its_rates_mean():
    records = [record("simple_rnn", 3e-3, 100, None, None), record("simple_rnn", 3e-3, 101, 99.0, 99.0),
               record("simple_rnn", 1e-3, 100, 60.0, 60.0), record("simple_rnn", 1e-3, 101, 60.0, 60.0)]
    assert choose(records)["simple_rnn"][0] == 1e-3       # 3e-3: (0 + 99) / 2 = 49.5 < 60


def test_a_tiny_sweep_trains_every_rate_and_seed_and_writes_its_report(tiny_data, tmp_path):
    argv = ["--models", "lstm", "--length", "4", "--epochs", "1", "--train", "60", "--dev", "20",
            "--test", "20", "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"]
    sweep.main(argv)
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert sorted(table["lr"]) == sorted(sweep.RATES)
    assert (table["seeds"] == len(sweep.SEEDS)).all()
    assert table["chosen"].sum() == 1
    assert len(list((tmp_path / "runs").iterdir())) == len(sweep.RATES) * len(sweep.SEEDS)
    text = (tmp_path / "sweep.md").read_text()
    assert "python -m studies.sweep_learning_rates --models lstm" in text
    sweep.main(argv + ["--report"])                       # rebuilt from the records alone
    assert pd.read_csv(tmp_path / "sweep.csv").equals(table)


def test_the_modern_recipe_holds_the_rates_the_committed_sweep_chose_by_its_rule():
    table = pd.read_csv(os.path.join(ROOT, "results", "reach", "sweep", "sweep.csv"))
    by_rule = {model: rate for model, (rate, _) in sweep.choose_rates(table).items()}
    marked = dict(zip(table.loc[table["chosen"], "model"], table.loc[table["chosen"], "lr"]))
    assert by_rule == marked == training.RECIPES["modern"]["lr"]
    assert set(table["model"]) == set(sweep.MODELS)
    assert (table["seeds"] == len(sweep.SEEDS)).all()       # every rate ran on every sweep seed

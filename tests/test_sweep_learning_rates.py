"""The learning-rate sweep: its choice rule reads dev accuracy only, and a tiny sweep runs end to end."""
import collections
import json
import os
import statistics

import pandas as pd
import pytest

from studies import sweep_learning_rates as sweep
from experiment import recipes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODERN = sweep.SWEEPS["modern"]
SWEEP_DIR = os.path.join(ROOT, MODERN["results_dir"])


def record(model, lr, seed, dev_accuracy, test_accuracy, epochs_run=50, status=None):
    config = {"model": model, "lr": lr, "seed": seed, "seq_len": 100, "hidden": 50, "epochs": 50}
    if status is None:
        status = "diverged" if dev_accuracy is None else "finished"
    return {"config": config, "status": status, "dev_accuracy": dev_accuracy,
            "test_accuracy": test_accuracy, "epochs_run": epochs_run}


def choose(records):
    return sweep.choose_rates(sweep.sweep_table(records), MODERN["fallback"])


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
               for lr in MODERN["rates"] for seed in sweep.SEEDS]
    rate, reason = choose(records)["alarmwork"]
    assert rate == MODERN["fallback"] == 1e-3
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


def test_a_run_ended_frozen_counts_its_whole_budget_of_epochs_in_a_tie():
    # both rates stand at the same mean; the frozen run stopped after 5 epochs, but it would have
    # stood still for all 50, so the rate whose runs finished in 20 wins the tie on epochs
    records = [record("alarmwork", 1e-4, 100, 36.0, 36.0, epochs_run=5, status="frozen"),
               record("alarmwork", 1e-4, 101, 99.0, 99.0, epochs_run=20),
               record("alarmwork", 3e-4, 100, 36.0, 36.0, epochs_run=20),
               record("alarmwork", 3e-4, 101, 99.0, 99.0, epochs_run=20)]
    table = sweep.sweep_table(records)
    assert table.set_index("lr").loc[1e-4, "mean_epochs"] == 35.0
    assert choose(records)["alarmwork"][0] == 3e-4


def test_a_tiny_sweep_trains_every_rate_and_seed_and_writes_its_report(tiny_data, tmp_path):
    argv = ["--models", "lstm", "--length", "4", "--epochs", "1", "--train", "60", "--dev", "20",
            "--test", "20", "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"]
    sweep.main(argv)
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert sorted(table["lr"]) == sorted(MODERN["rates"])
    assert (table["seeds"] == len(sweep.SEEDS)).all()
    records = [path for path in (tmp_path / "runs").iterdir() if path.suffix == ".json"]
    assert len(records) == len(MODERN["rates"]) * len(sweep.SEEDS)
    text = (tmp_path / "sweep.md").read_text()
    assert "python -m studies.sweep_learning_rates --models lstm" in text
    sweep.main(argv + ["--report"])                       # rebuilt from the records alone
    assert pd.read_csv(tmp_path / "sweep.csv").equals(table)


def test_the_modern_recipe_holds_the_rates_the_committed_sweep_chose_by_its_rule():
    table = pd.read_csv(os.path.join(SWEEP_DIR, "sweep.csv"))
    # read off sweep.csv: LSTM's best mean is 99.95 % at 3e-3, AlarmworkNet's 96.9 % at 3e-4;
    # SimpleRNN's (36.6 %) and Clockwork's (36.1 %) stay below 50 %, so they keep 1e-3
    expected = {"simple_rnn": 1e-3, "lstm": 3e-3, "alarmwork": 3e-4, "clockwork": 1e-3}
    by_rule = sweep.choose_rates(table, MODERN["fallback"])
    assert {model: rate for model, (rate, _) in by_rule.items()} == expected
    chosen = table[table["chosen"]]
    assert dict(zip(chosen["model"], chosen["lr"])) == expected
    assert recipes.RECIPES["modern"]["lr"] == expected
    assert set(table["model"]) == set(sweep.MODELS)
    assert (table["seeds"] == len(sweep.SEEDS)).all()       # every rate ran on every sweep seed


def test_the_committed_sweep_table_holds_the_mean_dev_accuracy_of_its_run_records():
    dev_accuracies = collections.defaultdict(list)
    for name in os.listdir(os.path.join(SWEEP_DIR, "runs")):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(SWEEP_DIR, "runs", name)) as f:
            record = json.load(f)
        dev_accuracies[record["config"]["model"], record["config"]["lr"]].append(
            record["dev_accuracy"] or 0.0)                   # a diverged run counts as 0
    table = pd.read_csv(os.path.join(SWEEP_DIR, "sweep.csv"))
    assert len(dev_accuracies) == len(table) == len(sweep.MODELS) * len(MODERN["rates"])
    for row in table.itertuples():
        mean = statistics.mean(dev_accuracies[row.model, row.lr])
        assert row.mean_dev_accuracy == pytest.approx(mean)


def test_the_integrator_recipe_holds_the_rates_its_committed_sweep_chose_or_none_before_it():
    folder = os.path.join(ROOT, sweep.SWEEPS["integrator"]["results_dir"])
    rates = recipes.RECIPES["integrator"]["lr"]
    if not os.path.exists(os.path.join(folder, "sweep.csv")):
        assert set(rates.values()) == {None}      # no rate is used before the sweep chose it
        return
    table = pd.read_csv(os.path.join(folder, "sweep.csv"))
    complete = table.groupby("model")["seeds"].agg(lambda s: len(s) == len(sweep.SWEEPS[
        "integrator"]["rates"]) and (s == len(sweep.SEEDS)).all())
    chosen = table[table["chosen"]]
    for model, rate in rates.items():
        if model in complete.index and complete[model]:
            assert rate == float(chosen[chosen["model"] == model]["lr"].iloc[0]), model
        else:
            assert rate is None, f"{model}: a rate before its sweep is complete"


def test_a_report_of_part_of_the_committed_sweep_prints_it_and_leaves_its_files(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    files = {name: open(os.path.join(SWEEP_DIR, name), "rb").read()
             for name in ("sweep.md", "sweep.csv", "sweep.png")}
    sweep.main(["--report", "--models", "lstm"])
    printed = capsys.readouterr().out
    assert "| LSTM " in printed and "| SimpleRNN " not in printed
    assert "sweep.md, sweep.csv and sweep.png are left as they are" in printed
    for name, content in files.items():
        assert open(os.path.join(SWEEP_DIR, name), "rb").read() == content, name

"""The sweep of candidate recipes: its rule reads dev accuracy only, every candidate is the
integrator recipe plus its own settings, and a tiny sweep runs end to end."""
import pandas as pd

from experiment import configs, runs
from studies import sweep_recipes as sweep

DATA = {"seed": 1234, "train": 60, "dev": 20, "test": 20}


def record(candidate, seed, dev_accuracy, epochs_run=20, status="finished", model="alarmwork"):
    config = configs.run_config(model, 2000, seed, DATA, sweep.BASE, wiring="all",
                                **sweep.CANDIDATES[candidate])
    return {"config": config, "status": status, "dev_accuracy": dev_accuracy,
            "test_accuracy": 100.0 - (dev_accuracy or 0.0), "epochs_run": epochs_run}


def choose(named_records):
    names, records = zip(*named_records)
    return sweep.choose_candidates(sweep.sweep_table(list(records), list(names)))


def test_the_candidate_with_the_highest_mean_dev_accuracy_wins_whatever_the_test_accuracy():
    named = [("warmup", record("warmup", 100, 99.0)), ("warmup", record("warmup", 101, 40.0)),
             ("warmup_eps1e-3", record("warmup_eps1e-3", 100, 80.0)),
             ("warmup_eps1e-3", record("warmup_eps1e-3", 101, 75.0))]
    assert choose(named)["alarmwork:all"][0] == "warmup_eps1e-3"      # 77.5 beats 69.5


def test_ties_go_to_fewer_epochs_a_frozen_run_counting_its_whole_budget():
    named = [("warmup", record("warmup", 100, 36.0, epochs_run=4, status="frozen")),
             ("warmup", record("warmup", 101, 99.6, epochs_run=10)),
             ("warmup_eps1e-2", record("warmup_eps1e-2", 100, 36.0, epochs_run=40)),
             ("warmup_eps1e-2", record("warmup_eps1e-2", 101, 99.6, epochs_run=10))]
    table = sweep.sweep_table([r for _, r in named], [n for n, _ in named])
    assert table.set_index("candidate").loc["warmup", "mean_epochs"] == 30.0     # (50 + 10) / 2
    assert table.set_index("candidate").loc["warmup", "frozen"] == 1
    assert choose(named)["alarmwork:all"][0] == "warmup_eps1e-2"          # 25 epochs against 30


def test_no_candidate_is_chosen_where_none_leaves_the_plateau():
    named = [(name, record(name, seed, 36.0)) for name in sweep.CANDIDATES for seed in (100, 101)]
    candidate, reason = choose(named)["alarmwork:all"]
    assert candidate is None and "plateau" in reason


def test_every_candidate_is_the_integrator_recipe_with_its_own_settings_and_a_run_of_its_own():
    base = configs.run_config("clockwork", 2000, 100, DATA, sweep.BASE, wiring="all")
    keys = {runs.run_key(base)}
    for name, settings in sweep.CANDIDATES.items():
        config = configs.run_config("clockwork", 2000, 100, DATA, sweep.BASE, wiring="all", **settings)
        assert config["lr"] == base["lr"] and config["nonlinearity"] == "relu"
        assert config["warmup_steps"] == settings["warmup_steps"] and config["end_frozen"] is True
        assert config.get("adam_eps") == settings.get("adam_eps")
        assert config.get("recurrent_bound") == settings.get("recurrent_bound")
        keys.add(runs.run_key(config))
    assert len(keys) == len(sweep.CANDIDATES) + 1


def test_a_tiny_sweep_trains_every_candidate_and_seed_and_its_report_rebuilds(tiny_data, tmp_path):
    argv = ["--models", "simple_rnn", "--candidates", "warmup", "warmup_eps1e-3", "--length", "4",
            "--epochs", "1", "--train", "60", "--dev", "20", "--test", "20",
            "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"]
    sweep.main(argv)
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table["candidate"]) == ["warmup", "warmup_eps1e-3"]
    assert (table["seeds"] == len(sweep.SEEDS)).all()
    saved = [p for p in (tmp_path / "runs").iterdir() if p.suffix == ".json"]
    assert len(saved) == 2 * len(sweep.SEEDS)
    assert "python -m studies.sweep_recipes --models simple_rnn" in (tmp_path / "sweep.md").read_text()
    sweep.main(argv + ["--report"])
    assert pd.read_csv(tmp_path / "sweep.csv").equals(table)

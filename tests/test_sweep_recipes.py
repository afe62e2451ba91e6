"""The sweep of candidate recipes: its rule reads dev accuracy only, every candidate is the
integrator recipe plus its own settings, and a tiny sweep runs end to end."""
import os

import pandas as pd
import pytest

from experiment import configs, grid, recipes, runs
from studies import sweep_recipes as sweep
from studies.common import parse_model

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


def test_a_candidate_is_confirmed_once_3_of_its_5_runs_reach_95_percent_dev_and_refused_once_it_cannot():
    assert sweep.confirmation([99.6, 95.0, 95.1]) is True           # decided by its first three
    assert sweep.confirmation([99.6, 94.9, 95.1, 40.0, 99.0]) is True
    assert sweep.confirmation([91.1, 98.5, 92.1, 91.1]) is False    # at most 2 of 5 now
    assert sweep.confirmation([99.6, 94.9, 95.1, 40.0, None]) is False   # a diverged run fails
    assert sweep.confirmation([99.6, 99.6, 36.0, 36.0]) is None      # the fifth decides
    records = [record("warmup", seed, dev) for seed, dev in zip(sweep.SEEDS, [99.6, 90.0, 95.0, 36.0])]
    table = sweep.confirm_table(records, ["warmup"] * len(records))
    assert table[["seeds", "solved", "confirmed"]].values.tolist() == [[4, 2, None]]


def scripted_runs(monkeypatch, with_eps, without_eps=99.0):
    """Runs that end at once with a dev accuracy of `with_eps` where their candidate sets
    Adam's eps, else `without_eps`; returns the list of (eps, seed) of the runs trained."""
    calls = []

    def run_worker(job):
        config = job[0]
        calls.append((config.get("adam_eps"), config["seed"]))
        dev = with_eps if config.get("adam_eps") else without_eps
        return {"config": config, "status": "finished", "diverged_epoch": None, "epochs_run": 1,
                "dev_accuracy": dev, "test_accuracy": dev, "train_seconds": 0.0,
                "history": [{"epoch": 0, "dev_accuracy": dev}]}
    monkeypatch.setattr(grid, "run_worker", run_worker)
    return calls


def write_choice(folder, rows):
    """A sweep.csv with the columns ranked_at reads: (model, candidate, mean dev, chosen)."""
    folder.mkdir()
    pd.DataFrame(rows, columns=["model", "candidate", "mean_dev_accuracy", "chosen"]).assign(
        mean_epochs=30.0).to_csv(folder / "sweep.csv", index=False)


def test_candidates_are_ranked_as_chosen_and_those_on_the_plateau_left_out(tmp_path):
    write_choice(tmp_path / "L2000", [
        ("simple_rnn", "warmup", 99.0, False), ("simple_rnn", "warmup_eps1e-3", 70.0, False),
        ("simple_rnn", "warmup_eps1e-2", 30.0, False), ("simple_rnn", "warmup_eps1e-3_bounded", 99.5, True),
        ("alarmwork:all", "warmup", 99.0, False)])                  # no choice yet
    assert sweep.ranked_at(tmp_path / "L2000") == {
        "simple_rnn": ["warmup_eps1e-3_bounded", "warmup", "warmup_eps1e-3"]}


def test_confirm_trains_the_winner_then_the_next_candidate_until_one_holds(tiny_data, tmp_path, monkeypatch):
    calls = scripted_runs(monkeypatch, with_eps=91.0)   # the winner fails here, the next holds
    write_choice(tmp_path / "L2000", [("simple_rnn", "warmup_eps1e-3", 90.0, True),
                                      ("simple_rnn", "warmup", 80.0, False),
                                      ("simple_rnn", "warmup_eps1e-2", 70.0, False)])
    argv = ["--confirm", "--models", "simple_rnn", "alarmwork:all", "--sweep-dir",
            str(tmp_path / "L2000"), "--length", "4", "--epochs", "1", "--train", "60", "--dev", "20",
            "--test", "20", "--data-dir", tiny_data, "--results-dir", str(tmp_path / "L4"), "--jobs", "1"]
    sweep.main(argv)
    # three runs of the winner fail: 2 of 5 at most; three of the next hold: confirmed
    assert calls == [(1e-3, 100), (1e-3, 101), (1e-3, 102), (None, 100), (None, 101), (None, 102)]
    table = pd.read_csv(tmp_path / "L4" / "confirm.csv")
    assert table[["candidate", "seeds", "solved"]].values.tolist() == [
        ["warmup_eps1e-3", 3, 0], ["warmup", 3, 3]]
    assert table["confirmed"].tolist() == [False, True]
    saved = runs.load_records(str(tmp_path / "L4"))
    assert {r["config"]["seq_len"] for r in saved} == {4} and len(saved) == 6
    text = (tmp_path / "L4" / "confirm.md").read_text()
    assert "- SimpleRNN: `warmup`" in text and "- alarmwork:all: not chosen at L = 2000 yet" in text
    calls.clear()
    sweep.main(argv + ["--report"])                       # rebuilt from the records alone
    assert calls == [] and pd.read_csv(tmp_path / "L4" / "confirm.csv").equals(table)


def test_confirm_without_a_sweep_table_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sweep.main(["--confirm", "--sweep-dir", str(tmp_path)])
    assert "cannot read the sweep's choices" in str(exit_.value) and "\n" not in str(exit_.value)


def test_a_candidate_stays_open_while_its_runs_still_to_train_could_reach_the_leaders_mean():
    named = ([("warmup_eps1e-2", record("warmup_eps1e-2", seed, 88.0)) for seed in sweep.SEEDS]
             + [("warmup_eps1e-3_bounded", record("warmup_eps1e-3_bounded", seed, 37.0))
                for seed in (100, 101)]
             + [("warmup", record("warmup", seed, 99.0)) for seed in (100, 101)])
    table = sweep.sweep_table([r for _, r in named], [n for n, _ in named])
    # bounded: (2 x 37 + 3 x 100) / 5 = 74.8 < 88; warmup: (2 x 99 + 300) / 5 = 99.6; eps1e-3:
    # no run saved; eps1e-2: every run saved
    assert sweep.open_candidates(table, "alarmwork:all", list(sweep.CANDIDATES)) == [
        "warmup_eps1e-3", "warmup"]
    assert sweep.best_case(table.set_index("candidate").loc["warmup_eps1e-3_bounded"]) == 74.8
    one_missing = table[table["candidate"] != "warmup_eps1e-2"]       # no candidate complete
    assert sweep.open_candidates(one_missing, "alarmwork:all", ["warmup", "warmup_eps1e-3_bounded"]) == [
        "warmup", "warmup_eps1e-3_bounded"]


def test_runs_that_cannot_change_the_choice_are_not_trained_and_the_model_is_chosen(
        tiny_data, tmp_path, monkeypatch):
    calls = scripted_runs(monkeypatch, with_eps=36.0)   # warmup learns, warmup_eps1e-3 does not
    argv = ["--models", "simple_rnn", "--candidates", "warmup", "warmup_eps1e-3", "--length", "4",
            "--epochs", "1", "--train", "60", "--dev", "20", "--test", "20",
            "--data-dir", tiny_data, "--results-dir", str(tmp_path), "--jobs", "1"]
    sweep.main(argv)
    # after one warmup_eps1e-3 run at 36 %, its best case (36 + 4 x 100) / 5 = 87.2 is under 99
    assert calls == [(None, seed) for seed in sweep.SEEDS] + [(1e-3, 100)]
    text = (tmp_path / "sweep.md").read_text()
    assert ("- SimpleRNN: warmup (highest mean dev accuracy (99.0 %)); runs not trained, as none "
            "could change the choice: warmup_eps1e-3 (4)") in text
    calls.clear()
    sweep.main(argv)                                     # the same command trains nothing more
    assert calls == []


def test_the_recipe_for_every_length_holds_each_models_confirmed_candidate_and_only_those():
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sweep.RESULTS_DIR)
    chosen = pd.read_csv(os.path.join(folder, f"L{sweep.LENGTH}", "sweep.csv"))
    winners = dict(chosen[chosen["chosen"]][["model", "candidate"]].values)
    checked = pd.read_csv(os.path.join(folder, f"L{sweep.CONFIRM_LENGTH}", "confirm.csv"))
    held = checked[checked["confirmed"] == True]                       # noqa: E712 (NaN: undecided)
    confirmed = dict(zip(held["model"], held["candidate"]))
    named = recipes.RECIPES[sweep.RECIPE]["adam_eps"]
    assert set(named) == set(confirmed) and set(confirmed) <= set(winners)
    for model in named:
        spec = parse_model(model)
        for seq_len in (10, sweep.CONFIRM_LENGTH, sweep.LENGTH, 10_000):
            from_recipe = configs.run_config(spec.name, seq_len, 100, DATA, sweep.RECIPE, wiring=spec.wiring)
            from_sweep = configs.run_config(spec.name, seq_len, 100, DATA, sweep.BASE, wiring=spec.wiring,
                                            **sweep.CANDIDATES[confirmed[model]])
            assert from_recipe == from_sweep and from_sweep["recipe"] == sweep.RECIPE

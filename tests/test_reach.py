"""The reach ladder: its rule, its climbing and resuming (with a scripted trainer), a tiny real
climb, and reports of committed runs."""
import argparse
import glob
import json
import os
import shutil

import pandas as pd
import pytest

import generate_data_adding_problem as data
from studies import reach
from experiment import grid
from experiment.runs import written_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_rung_is_reached_when_3_of_5_runs_solve():
    assert reach.rung_reached([99.0, 96.0, 95.0, 35.0, 35.0])
    assert not reach.rung_reached([99.0, 96.0, 94.9, 35.0, 35.0])
    assert not reach.rung_reached([99.0, 99.0, None, None, 35.0])     # diverged runs did not solve
    assert reach.rung_reached([99.0, 99.0, 35.0])                        # 2 of 3 >= 3/5


def test_a_rung_is_decided_by_its_first_runs_once_the_rest_cannot_change_it():
    assert reach.rung_outcome([99.0, 99.0, 99.0], 5) == "reached"
    assert reach.rung_outcome([35.0, None, 35.0], 5) == "missed"       # 2 more cannot make 3
    assert reach.rung_outcome([99.0, 99.0, 35.0, 35.0], 5) is None    # the fifth decides
    assert reach.rung_outcome([99.0, 35.0, 35.0, 35.0, 35.0], 5) == "missed"


def test_the_summary_reports_a_rung_decided_while_its_other_runs_train():
    def record(seq_len, seed, accuracy):
        config = {"model": "lstm", "hidden": 50, "seq_len": seq_len, "seed": seed, "lr": 3e-4}
        return {"config": config, "status": "finished", "test_accuracy": accuracy, "epochs_run": 9}

    def summary(top_rung):
        ladder = reach.Ladder("lstm", 50, "integrator", "unused", {
            L: [{"model": "lstm", "hidden": 50, "seq_len": L, "seed": s, "lr": 3e-4} for s in range(5)]
            for L in (10, 20)})
        for s in range(5):
            ladder.add(record(10, s, 99.0))
        for s, accuracy in enumerate(top_rung):
            ladder.add(record(20, s, accuracy))
        return reach.ladder_summary(ladder, [10, 20], 5)

    reached = summary([99.0, 99.0, 99.0])
    assert reached["reach"] == 20 and reached["state"] == "L = 20 reached (2 of its runs to go)"
    assert "20: 3/3 of 5 so far (9 ep)" in reached["rungs"]
    missed = summary([35.0, 35.0, 35.0])
    assert missed["reach"] == 10 and missed["state"] == "stopped at L = 20 (2 of its runs to go)"
    running = summary([99.0, 35.0])
    assert running["reach"] == 10 and running["state"] == "L = 20 running"


def test_next_rung_climbs_from_reached_rungs_and_stops_after_the_first_miss():
    lengths = [10, 50, 100]
    solved, plateau = [99.0] * 5, [35.0] * 5
    assert reach.next_rung(lengths, {}) == 10
    assert reach.next_rung(lengths, {10: solved}) == 50
    assert reach.next_rung(lengths, {10: solved, 50: plateau}) is None
    assert reach.next_rung(lengths, {10: plateau}) is None
    assert reach.next_rung(lengths, {10: solved, 50: solved, 100: solved}) is None


def test_a_ladder_that_trains_another_recipes_runs_is_climbed_once(tiny_data):
    options = reach.parse_args(["--lengths", "4", "--seeds", "2", "--data-dir", tiny_data])
    data = {4: {"n_train": 60}}
    ladders = [reach.make_ladder(reach.parse_model(model), recipe, options, data)
               for recipe in ("integrator", "integrator_smaller_rate") for model in ("simple_rnn", "lstm")]
    kept = reach.distinct(ladders)
    # the smaller rate is SimpleRNN's only: the variant's LSTM ladder is the integrator's
    assert [(l.model, l.recipe) for l in kept] == [
        ("simple_rnn", "integrator"), ("lstm", "integrator"), ("simple_rnn", "integrator_smaller_rate")]


def test_a_shared_ladder_is_found_whatever_the_order_or_choice_of_its_recipes(
        tiny_data, tmp_path, monkeypatch, capsys):
    # integrator_smaller_rate changes SimpleRNN's rate only: its LSTM runs are the integrator's
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 7}, calls))
    argv = ["--models", "lstm", "--lengths", "4", "7", "--seeds", "2", "--epochs", "1",
            "--train", "60", "--dev", "20", "--test", "20", "--data-dir", tiny_data,
            "--results-dir", str(tmp_path), "--jobs", "1"]
    reach.main(argv + ["--recipes", "integrator", "integrator_smaller_rate"])
    assert len(calls) == 4 and sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["integrator"]
    tables = []
    for recipes in (["integrator_smaller_rate", "integrator"], ["integrator"],
                    ["integrator_smaller_rate"]):
        calls.clear()
        reach.main(argv + ["--recipes", *recipes])                # trains nothing: all saved
        assert calls == [], recipes
        capsys.readouterr()
        reach.main(argv + ["--recipes", *recipes, "--report"])
        [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| LSTM")]
        tables.append(row)
    both, alone, variant_alone = tables
    assert "4: 2/2 (1 ep), 7: 2/2 (1 ep)" in both and "top rung reached" in both
    assert both == alone                                        # named after the runs' own recipe
    assert variant_alone.replace("integrator_smaller_rate", "integrator", 1) == alone


def test_models_take_an_optional_width_and_wiring():
    assert reach.parse_model("clockwork:35") == ("clockwork", 35, "slower")
    assert reach.parse_model("lstm") == ("lstm", 50, "slower")
    assert reach.parse_model("alarmwork:all") == ("alarmwork", 50, "all")
    assert reach.parse_model("clockwork:35:all") == ("clockwork", 35, "all")
    assert str(reach.parse_model("clockwork:35:all")) == "clockwork:35:all"
    for bad in ("gru", "lstm:0", "lstm:x", "lstm:all", "clockwork:all:35", "alarmwork:all:all"):
        with pytest.raises(argparse.ArgumentTypeError):
            reach.parse_model(bad)


# ------------------------------------------------------------------------------ a scripted climb

def scripted_trainer(solves_up_to, calls):
    """A stand-in for grid.run_worker: a run solves when L <= solves_up_to[model]."""
    def run_worker(job):
        config = job[0]
        calls.append((config["model"], config["seq_len"], config["seed"]))
        accuracy = 99.0 if config["seq_len"] <= solves_up_to[config["model"]] else 35.0
        return {"config": config, "status": "finished", "diverged_epoch": None,
                "epochs_run": 1, "dev_accuracy": accuracy, "test_accuracy": accuracy,
                "train_seconds": 0.0, "history": [{"epoch": 0, "dev_accuracy": accuracy}]}
    return run_worker


def climb_argv(tiny_data, results_dir):
    return ["--models", "lstm", "alarmwork", "--recipes", "assignment", "--lengths", "4", "7",
            "--seeds", "2", "--epochs", "1", "--train", "60", "--dev", "20", "--test", "20",
            "--data-dir", tiny_data, "--results-dir", str(results_dir), "--jobs", "1"]


def test_the_ladder_climbs_stops_and_resumes_without_retraining(tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 7, "alarmwork": 0}, calls))
    reach.main(climb_argv(tiny_data, tmp_path))
    # LSTM reaches L = 4 and climbs to 7; AlarmworkNet misses L = 4 and stops there
    assert sorted(calls) == sorted([("lstm", 4, 0), ("lstm", 4, 1), ("lstm", 7, 0), ("lstm", 7, 1),
                                    ("alarmwork", 4, 0), ("alarmwork", 4, 1)])
    assert len(list((tmp_path / "assignment" / "runs").iterdir())) == 6
    text = (tmp_path / "reach.md").read_text()
    assert "| LSTM " in text and "| 7 " in text and "4: 2/2 (1 ep), 7: 2/2 (1 ep)" in text
    assert "4: 0/2" in text and "stopped at L = 4" in text
    runs = pd.read_csv(tmp_path / "reach.csv")
    assert len(runs) == 6 and runs["solved"].sum() == 4

    calls.clear()
    reach.main(climb_argv(tiny_data, tmp_path))            # the same command again
    assert calls == []                                      # every run is reused
    reach.main(climb_argv(tiny_data, tmp_path) + ["--lengths", "4", "6", "7"])
    assert sorted(calls) == [("lstm", 6, 0), ("lstm", 6, 1)]  # a rung added in between is climbed


@pytest.mark.parametrize("slower_solves_up_to, expected", [
    # 5/5 against 5/5: p = 1; 0/5 against 5/5: p = 2 / C(10, 5) = 0.0079
    (4, [["4", "5/5 (3 ep)", "5/5 (3 ep)", "1"], ["7", "0/5", "5/5 (3 ep)", "0.0079"]]),
    # the slower ladder stops at L = 4, so L = 7, which only the all-wired one trained, is not compared
    (0, [["4", "0/5", "5/5 (3 ep)", "0.0079"]]),
])
def test_the_all_wired_ladder_is_tested_against_the_slower_wiring_at_every_rung_both_trained(
        tiny_data, tmp_path, monkeypatch, slower_solves_up_to, expected):
    def run_worker(job):
        config = job[0]
        solved = config["seq_len"] <= (7 if config.get("wiring") == "all" else slower_solves_up_to)
        accuracy = 99.0 if solved else 35.0
        return {"config": config, "status": "finished", "diverged_epoch": None, "epochs_run": 3,
                "dev_accuracy": accuracy, "test_accuracy": accuracy, "train_seconds": 0.0,
                "history": [{"epoch": 0, "dev_accuracy": accuracy}]}
    monkeypatch.setattr(grid, "run_worker", run_worker)
    argv = climb_argv(tiny_data, tmp_path)
    argv[argv.index("lstm"):argv.index("--lengths")] = [
        "alarmwork", "alarmwork:all", "--recipes", "integrator"]
    reach.main(argv + ["--seeds", "5"])
    text = (tmp_path / "reach.md").read_text()
    section = text.split("## AlarmworkNet all-wired against the slower wiring", 1)[1]
    rows = [[cell.strip() for cell in line.split("|")[2:-1]]
            for line in section.splitlines() if line.startswith("| integrator")]
    assert rows == expected


def test_a_recipe_is_tested_against_its_baseline_at_every_rung_both_trained(
        tiny_data, tmp_path, monkeypatch):
    # the smaller rate solves L = 7, the integrator recipe's rate only L = 4
    def run_worker(job):
        config = job[0]
        accuracy = 99.0 if config["seq_len"] <= (7 if config["lr"] == 1e-4 else 4) else 35.0
        return {"config": config, "status": "finished", "diverged_epoch": None, "epochs_run": 3,
                "dev_accuracy": accuracy, "test_accuracy": accuracy, "train_seconds": 0.0,
                "history": [{"epoch": 0, "dev_accuracy": accuracy}]}
    monkeypatch.setattr(grid, "run_worker", run_worker)
    monkeypatch.setattr(reach, "RECIPE_BASELINES", {"integrator_smaller_rate": "integrator"})
    argv = climb_argv(tiny_data, tmp_path)
    argv[argv.index("lstm"):argv.index("--lengths")] = [
        "simple_rnn", "--recipes", "integrator", "integrator_smaller_rate"]
    reach.main(argv + ["--lengths", "4", "7", "9", "--seeds", "5"])
    text = (tmp_path / "reach.md").read_text()
    section = text.split("## SimpleRNN: integrator_smaller_rate against integrator", 1)[1]
    header = next(line for line in section.splitlines() if line.startswith("| L "))
    assert [cell.strip() for cell in header.split("|")[2:4]] == [
        "integrator: solved/runs (median epochs of the solved)", "integrator_smaller_rate"]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]]
            for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    # 5/5 against 5/5: p = 1; 0/5 against 5/5: p = 2 / C(10, 5); L = 9, past the integrator
    # ladder's stop, was never trained there and is not compared
    assert rows == [["4", "5/5 (3 ep)", "5/5 (3 ep)", "1"], ["7", "0/5", "5/5 (3 ep)", "0.0079"]]
    assert "against the slower wiring" not in text


def test_a_long_ladder_climbs_one_rung_further_in_the_whole_study_only(tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 9, "simple_rnn": 9}, calls))
    monkeypatch.setattr(reach, "DEFAULT_MODELS", ("lstm",))
    monkeypatch.setattr(reach, "DEFAULT_RECIPES", ("assignment",))
    monkeypatch.setattr(reach, "DEFAULT_LENGTHS", (4, 7))
    monkeypatch.setattr(reach, "WIRED_LADDERS", ())
    monkeypatch.setattr(reach, "LONG_LADDERS", (("simple_rnn", "integrator"),))
    monkeypatch.setattr(reach, "LONG_RUNG", 9)
    argv = ["--seeds", "2", "--epochs", "1", "--train", "60", "--dev", "20", "--test", "20",
            "--data-dir", tiny_data, "--jobs", "1"]
    reach.main(argv + ["--results-dir", str(tmp_path / "whole")])
    # every ladder solves every rung: nn.LSTM stops at the study's top, the long ladder goes on
    assert sorted(calls) == sorted([("lstm", L, seed) for L in (4, 7) for seed in (0, 1)]
                                   + [("simple_rnn", L, seed) for L in (4, 7, 9) for seed in (0, 1)])
    text = (tmp_path / "whole" / "reach.md").read_text()
    assert "climbs 4, 7 (and 9: SimpleRNN under integrator) and stops" in text
    assert "integrator: optimizer adam" in text and "| SimpleRNN " in text
    assert "4: 2/2 (1 ep), 7: 2/2 (1 ep), 9: 2/2 (1 ep)" in text
    assert sorted(set(pd.read_csv(tmp_path / "whole" / "reach.csv")["seq_len"])) == [4, 7, 9]
    calls.clear()
    reach.main(argv + ["--results-dir", str(tmp_path / "given"), "--lengths", "4", "7"])
    assert max(L for _, L, _ in calls) == 7                  # --lengths given: no rung above them


def test_a_diverged_run_is_a_failure_in_the_table_and_the_figure(tiny_data, tmp_path, monkeypatch):
    calls = []
    solves = scripted_trainer({"lstm": 7, "alarmwork": 7}, calls)

    def run_worker(job):
        record = solves(job)
        if job[0]["model"] == "alarmwork" and job[0]["seed"] == 1:
            record.update(status="diverged", diverged_epoch=1, dev_accuracy=None,
                          test_accuracy=None)
        return record
    monkeypatch.setattr(grid, "run_worker", run_worker)
    drawn = []
    monkeypatch.setattr(reach, "plot_reach", lambda runs, options, path: drawn.append(runs))
    reach.main(climb_argv(tiny_data, tmp_path) + ["--seeds", "3"])
    runs = pd.read_csv(tmp_path / "reach.csv")
    diverged = runs[runs["status"] == "diverged"]
    assert list(zip(diverged["model"], diverged["seq_len"], diverged["seed"])) == [
        ("AlarmworkNet", 4, 1), ("AlarmworkNet", 7, 1)]
    assert diverged["test_accuracy"].isna().all() and not diverged["solved"].any()
    assert (runs[runs["status"] == "finished"]["test_accuracy"] == 99.0).all()
    assert "4: 2/3 (1 ep), 7: 2/3 (1 ep)" in (tmp_path / "reach.md").read_text()
    [figure_runs] = drawn
    assert len(figure_runs) == 12 and figure_runs["status"].value_counts()["diverged"] == 2


def test_the_reach_figure_draws_a_diverged_run_as_a_cross_at_zero(tmp_path, monkeypatch):
    runs = pd.DataFrame([
        {"model": "SimpleRNN", "recipe": "integrator", "seq_len": L, "seed": seed,
         "status": status, "test_accuracy": accuracy}
        for L, seed, status, accuracy in [(10, 0, "finished", 99.0), (10, 1, "finished", 98.0),
                                          (10, 2, "finished", 97.0), (500, 0, "finished", 99.0),
                                          (500, 1, "diverged", None), (500, 2, "diverged", None)]])
    options = reach.parse_args(["--recipes", "integrator", "--lengths", "10", "500"])
    captured = {}
    monkeypatch.setattr(reach.report, "save_figure", lambda figure, path: captured.update(figure=figure))
    reach.plot_reach(runs, options, str(tmp_path / "reach.png"))
    [panel] = captured["figure"].axes
    [median] = panel.get_lines()[:1]
    assert list(median.get_ydata()) == [98.0, 0.0]          # the diverged runs count as 0
    crosses = [c for c in panel.collections if len(c.get_offsets()) == 2
               and list(c.get_offsets()[:, 1]) == [0.0, 0.0]]
    assert len(crosses) == 1


def test_a_ladder_whose_rungs_do_not_increase_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        reach.parse_args(["--lengths", "50", "10"])
    assert exit_info.value.code == 2
    assert "--lengths: a ladder's rungs increase, got 50 10" in capsys.readouterr().err


def test_force_retrains_what_the_climb_reaches(tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 4, "alarmwork": 0}, calls))
    reach.main(climb_argv(tiny_data, tmp_path))
    calls.clear()
    reach.main(climb_argv(tiny_data, tmp_path) + ["--force"])
    assert len(calls) == 6


def test_report_rebuilds_from_the_records_without_training(tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 7, "alarmwork": 4}, calls))
    reach.main(climb_argv(tiny_data, tmp_path))
    before = (tmp_path / "reach.md").read_text()
    calls.clear()
    (tmp_path / "reach.md").unlink()
    reach.main(climb_argv(tiny_data, tmp_path) + ["--report"])
    assert calls == [] and (tmp_path / "reach.md").read_text() == before


# ------------------------------------------------------------------------------ a real climb

def test_a_tiny_real_climb_trains_every_recipe_and_draws_the_figure(tiny_data, tmp_path):
    reach.main(["--models", "clockwork:4", "--lengths", "4", "--seeds", "1", "--epochs", "1",
                "--train", "60", "--dev", "20", "--test", "20", "--data-dir", tiny_data,
                "--results-dir", str(tmp_path), "--jobs", "1"])
    runs = pd.read_csv(tmp_path / "reach.csv")
    assert sorted(reach.DEFAULT_RECIPES) == sorted(
        ["assignment", "modern", "integrator", "integrator_smaller_rate"])
    # the smaller rate is SimpleRNN's only: the variant's Clockwork ladder is the integrator's
    assert sorted(runs["recipe"]) == sorted(["assignment", "modern", "integrator"])
    assert set(runs["model"]) == {"Clockwork(1,2,4,8) P=4"}
    assert (tmp_path / "reach.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "reach_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_longer_rung_that_becomes_ready_starts_before_shorter_runs_still_waiting(
        tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_worker", scripted_trainer({"lstm": 7, "alarmwork": 7}, calls))
    reach.main(climb_argv(tiny_data, tmp_path))
    assert calls == [("lstm", 4, 0), ("lstm", 4, 1), ("lstm", 7, 0), ("lstm", 7, 1),
                     ("alarmwork", 4, 0), ("alarmwork", 4, 1), ("alarmwork", 7, 0), ("alarmwork", 7, 1)]


def test_a_data_flag_that_contradicts_the_data_set_is_a_one_line_error(tiny_data, tmp_path):
    argv = climb_argv(tiny_data, tmp_path)
    argv[argv.index("--train") + 1] = "100"          # the file holds 60 training samples
    with pytest.raises(SystemExit) as exit_info:
        reach.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "than --train 100" in message and "\n" not in message
    assert not (tmp_path / "assignment" / "runs").exists() or not any(
        (tmp_path / "assignment" / "runs").iterdir())


# ------------------------------------------------------------------------------ a report of saved runs

def committed_lstm_ladder(results_dir):
    """A copy of the committed integrator LSTM runs at L = 10 and 50 (5 each) in results_dir;
    the arguments of a report of them."""
    runs = results_dir / "integrator" / "runs"
    runs.mkdir(parents=True)
    for path in glob.glob(os.path.join(ROOT, "results", "reach", "integrator", "runs",
                                       "lstm_L0[15]0_seed*.json")):
        shutil.copy(path, runs)
    return ["--models", "lstm", "--recipes", "integrator", "--lengths", "10", "50", "--report",
            "--results-dir", str(results_dir)]


def test_a_report_keeps_every_saved_run_whatever_data_set_lies_in_the_data_folder(tmp_path):
    data.write_data_set(str(tmp_path / "data"), 10, {"train": 200, "dev": 40, "test": 40})
    reach.main(committed_lstm_ladder(tmp_path / "results") + ["--data-dir", str(tmp_path / "data")])
    runs = pd.read_csv(tmp_path / "results" / "reach.csv")
    assert sorted(zip(runs["seq_len"], runs["seed"])) == [(L, s) for L in (10, 50) for s in range(5)]
    assert "not started" not in (tmp_path / "results" / "reach.md").read_text()


def test_runs_of_one_length_on_two_data_sets_are_refused_in_one_line_unless_a_flag_picks_one(tmp_path):
    argv = committed_lstm_ladder(tmp_path / "results") + ["--data-dir", str(tmp_path / "data")]
    runs = tmp_path / "results" / "integrator" / "runs"
    record = json.loads(next(runs.glob("lstm_L010_seed0_*.json")).read_text())
    record["config"]["data"]["n_train"] = 200                   # the same run on a smaller set
    (runs / f"{written_key(record['config'])}.json").write_text(json.dumps(record))
    (tmp_path / "results" / "reach.md").write_text("the report before\n")
    with pytest.raises(SystemExit) as exit_info:
        reach.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: the runs saved at L = 10 in ") and "2 data sets" in message
    assert "\n" not in message
    assert (tmp_path / "results" / "reach.md").read_text() == "the report before\n"
    assert not (tmp_path / "results" / "reach.csv").exists()
    reach.main(argv + ["--train", "10000"])
    assert len(pd.read_csv(tmp_path / "results" / "reach.csv")) == 10

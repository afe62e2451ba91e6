"""The collapse study: its watched runs are the runs' own training, and what it records is what
the readable equations give."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

import generate_data_adding_problem as data
from experiment import configs, training
from models import build_model
from studies import collapse

SIZES = {"train": 60, "dev": 20, "test": 20}


@pytest.mark.parametrize("model, periods", [("alarmwork", None), ("clockwork", (1, 2, 4))])
def test_a_watched_run_is_the_runs_own_training_and_records_every_batch(tmp_path, model, periods):
    data.write_data_set(str(tmp_path), 12, SIZES, 2021)
    options = data.read_options(data.data_path(str(tmp_path), 12))
    arrays = data.load_data_set(str(tmp_path), 12, options)
    config = configs.run_config(model, 12, 0, options, "integrator", epochs=2, wiring="all",
                                periods=periods or (1, 2, 4, 8))
    plain = training.train_run(config, arrays, show_progress=False)
    watched, rows = collapse.watched_run(config, arrays)
    assert [h["dev_accuracy"] for h in watched["history"]] == [h["dev_accuracy"] for h in plain["history"]]
    assert watched["test_accuracy"] == plain["test_accuracy"]
    assert len(rows) == 2 * math.ceil(60 / 20) and list(rows["epoch"]) == [0, 0, 0, 1, 1, 1]
    measured = [h["grad_norm"] for h in plain["history"][:-1]]           # each epoch's mean norm
    assert rows["grad_norm"].groupby(rows["epoch"]).mean().tolist() == pytest.approx(measured, rel=1e-4)
    line = collapse.summary_row(rows, watched, plain)
    assert line["reproduces the record"].startswith("yes") and line["batches"] == 6


def test_the_watcher_measures_the_readable_equations_state_and_a_pinned_output():
    torch.manual_seed(0)
    model = build_model("alarmwork", 8, nonlinearity="relu", wiring="all")
    x = torch.randn(5, 9, 2)
    with torch.no_grad():
        model.W_out.mul_(1e3)                        # |a_out| far above 9: tanh is exactly +-1
    loss = nn.MSELoss()(model(x), torch.zeros(5, 1))
    loss.backward()
    watcher = collapse.Watcher(seed=3, batches_per_epoch=10)
    watcher(model, x, loss)
    (row,) = watcher.rows
    with torch.no_grad():
        state = model.recurrent_layers(x)            # the readable loop, not the engine
        a_out = state @ model.W_out.T + model.b_out
    assert row["state_norm_max"] == pytest.approx(float(state.norm(dim=1).max()), rel=1e-5)
    assert row["a_out_max"] == pytest.approx(float(a_out.abs().max()), rel=1e-5)
    assert float(a_out.abs().min()) > 9 and row["pinned_fraction"] == 1.0
    assert row["grad_norm"] == 0.0                   # a pinned output passes no gradient
    assert row["seed"] == 3 and row["batch"] == 0 and row["loss"] == pytest.approx(1.0)


def test_the_summary_finds_the_first_batch_whose_every_output_is_pinned():
    rows = pd.DataFrame({"seed": 1, "epoch": 0, "batch": range(4), "loss": [0.3, 1.08, 1.18, 1.02],
                         "grad_norm": [1524.3, 0.0, 0.0, 0.0],
                         "state_norm_max": [7.66, 56.2, 628.0, 2846.0],
                         "a_out_max": [1.33, 51.0, 573.0, 2595.0],
                         "pinned_fraction": [0.0, 1.0, 1.0, 1.0]})
    record = {"history": [{"dev_accuracy": 18.2}, {"dev_accuracy": 0.0}]}
    saved = {"status": "finished", "test_accuracy": 0.0, "epochs_run": 50, "history": record["history"]}
    line = collapse.summary_row(rows, record, saved)
    assert line["at the start: state / a_out / gradient"] == "7.66 / 1.33 / 1.52e+03"
    assert line["after one step: state / a_out / pinned"] == "56.2 / 51 / 100 %"
    assert line["first batch all pinned"] == "1" and line["batches all pinned"] == 3
    assert line["batches with gradient 0"] == 3 and line["largest state"] == "2.85e+03"
    assert line["saved run"] == "test 0.0 % after 50 epochs" and line["dev % after"] == "0.0"


def test_quick_collapse_at_another_rate_writes_its_table_rows_and_figure(tmp_path):
    # at the recipe's rate, in a clone of the repository: tests/test_study_outputs.py
    collapse.main(["--quick", "--results-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path),
                   "--lr", "3e-5"])
    rows = pd.read_csv(tmp_path / "out" / "collapse.csv")
    assert sorted(rows["seed"].unique()) == [0, 1] and len(rows) == 2 * 10
    text = (tmp_path / "out" / "collapse.md").read_text()
    assert "python -m studies.collapse --quick" in text and "Adam 3e-05, L = 30" in text
    assert (tmp_path / "out" / "collapse.png").read_bytes()[:4] == b"\x89PNG"


def test_a_network_without_a_clock_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        collapse.main(["--model", "lstm"])
    assert stop.value.code == 2
    assert "the study watches a clocked network" in capsys.readouterr().err


def test_a_network_without_a_chosen_rate_is_refused_in_one_line_unless_given_one(tmp_path, monkeypatch):
    from experiment import recipes
    monkeypatch.setitem(recipes.RECIPES["integrator"]["lr"], "clockwork:all", None)
    argv = ["--quick", "--model", "clockwork:all", "--results-dir", str(tmp_path / "out"),
            "--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        collapse.main(argv)
    assert str(stop.value.code).startswith("error: the integrator recipe has no learning rate")
    assert not (tmp_path / "out" / "collapse.md").exists()
    collapse.main(argv + ["--lr", "1e-4"])                 # a rate given makes the runs
    assert "Adam 0.0001" in (tmp_path / "out" / "collapse.md").read_text()

"""The collapse study: its watched runs are the runs' own training, and what it records is what
the readable equations give."""
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import generate_data_adding_problem as data
from experiment import configs, runs, training
from models import build_model, start_as_integrator_
from studies import collapse, sweep_recipes

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
    assert list(row) == ["seed", "epoch", "batch", "loss", "grad_norm", "state_norm_max",
                         "a_out_max", "pinned_fraction"]        # without --dynamics, as before


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


def tiny_data(folder, seq_len=12):
    data.write_data_set(str(folder), seq_len, SIZES, 2021)
    options = data.read_options(data.data_path(str(folder), seq_len))
    return options, data.load_data_set(str(folder), seq_len, options)


def test_the_recipe_options_reach_the_runs_configuration_and_the_folder_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # parse_args checks the folder it names
    args = collapse.parse_args(["--length", "2000", "--warmup-steps", "500", "--adam-eps", "1e-3"])
    assert os.path.normpath(args.results_dir) == os.path.join(collapse.RESULTS_DIR, "L2000_warmup500_eps0.001")
    (config,) = collapse.run_configs(collapse.parse_args(["--seeds", "100", "--warmup-steps", "500",
                                                          "--adam-eps", "1e-3"]), {})
    assert config["warmup_steps"] == 500 and config["adam_eps"] == 1e-3 and config["lr"] == 1e-4
    assert config["seed"] == 100 and config["wiring"] == "all" and "end_frozen" not in config
    plain = collapse.parse_args([])
    assert plain.results_dir == collapse.RESULTS_DIR
    assert all("warmup_steps" not in c and "adam_eps" not in c for c in collapse.run_configs(plain, {}))
    watched = collapse.parse_args(["--epochs", "5", "--watch-from", "1", "--dynamics"])
    assert os.path.normpath(watched.results_dir) == os.path.join(collapse.RESULTS_DIR, "epochs5_from1_dynamics")


def test_a_watch_from_past_the_last_epoch_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as stop:
        collapse.parse_args(["--epochs", "2", "--watch-from", "2"])
    assert stop.value.code == 2 and "--watch-from 2 watches no epoch of 2" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["sweep", "ladder"])
def test_a_run_with_the_sweeps_options_is_compared_with_its_record_where_it_was_saved(
        tmp_path, monkeypatch, where):
    """In the sweep's folder of the length (a candidate's run), or in the ladders of the recipe
    that adopted the candidate (integrator_warmup): the same run under another recipe's name."""
    options, arrays = tiny_data(tmp_path)
    monkeypatch.setattr(collapse, "LADDER_DIR", str(tmp_path / "reach"))
    monkeypatch.setattr(sweep_recipes, "RESULTS_DIR", str(tmp_path / "sweep"))
    config = configs.run_config("alarmwork", 12, 100, options, "integrator", epochs=2, wiring="all",
                                warmup_steps=3, adam_eps=1e-3)
    if where == "sweep":
        saved_config = configs.run_config("alarmwork", 12, 100, options, "integrator", epochs=2,
                                          wiring="all", **sweep_recipes.CANDIDATES["warmup_eps1e-3"]
                                          | {"warmup_steps": 3})
        folder = tmp_path / "sweep" / "L12"
    else:
        saved_config = configs.run_config("alarmwork", 12, 100, options, collapse.WARMUP_RECIPE,
                                          epochs=2, wiring="all", warmup_steps=3)
        assert saved_config["recipe"] == "integrator_warmup" and saved_config["adam_eps"] == 1e-3
        folder = tmp_path / "reach" / collapse.WARMUP_RECIPE
    runs.save_record(str(folder), training.train_run(saved_config, arrays, show_progress=False))
    assert collapse.saved_record(config, recipe_options=False) is None
    saved = collapse.saved_record(config, recipe_options=True)
    assert saved["config"] == saved_config
    record, rows = collapse.watched_run(config, arrays)
    assert collapse.reproduces(record, saved) == "yes, dev accuracy equal at epochs 0-2"
    assert collapse.summary_row(rows, record, saved)["saved run"].startswith("test ")


def test_watch_from_skips_the_earlier_epochs_rows_and_leaves_the_training_as_it_was(tmp_path):
    options, arrays = tiny_data(tmp_path)
    config = configs.run_config("clockwork", 12, 0, options, "integrator", epochs=3, wiring="all",
                                periods=(1, 2, 4), warmup_steps=4)
    plain = training.train_run(config, arrays, show_progress=False)
    watched, rows = collapse.watched_run(config, arrays, watch_from=2, dynamics=True)
    assert [h["dev_accuracy"] for h in watched["history"]] == [h["dev_accuracy"] for h in plain["history"]]
    assert watched["test_accuracy"] == plain["test_accuracy"]
    assert list(rows["epoch"]) == [2, 2, 2] and list(rows["batch"]) == [6, 7, 8]
    assert rows["step_recurrent"].notna().all() and (rows["step_recurrent"] > 0).all()
    line = collapse.summary_row(rows, watched, plain, watched_from=2)
    assert line["at batch 6: state / a_out / gradient"] and line["batches"] == 3
    unwatched = collapse.Watcher(seed=0, batches_per_epoch=3, watch_from=1, dynamics=True)
    for _ in range(3):                               # no model, no input: nothing is looked at
        unwatched(None, None, None)
    assert unwatched.rows == [] and unwatched.calls == 3


@pytest.mark.parametrize("model, periods", [("alarmwork", None), ("clockwork", (1, 2, 4))])
def test_the_dynamics_are_the_matrices_norms_the_states_and_the_gradients_and_steps_measured_directly(
        model, periods):
    torch.manual_seed(1)
    config = configs.run_config(model, 9, 0, {}, "integrator", wiring="all", hidden=4,
                                periods=periods or (1, 2, 4, 8))
    network = build_model(model, 4, nonlinearity="relu", wiring="all", periods=periods)
    with torch.no_grad():
        for name, p in network.named_parameters():
            if name.startswith("W_rec"):
                p.add_(0.3 * torch.randn_like(p))     # not normal: the norm is not the radius
    watcher = collapse.Watcher(seed=0, batches_per_epoch=5, dynamics=True)
    _, step = training.training_step(config, network, watch=watcher)
    x, t = torch.rand(3, 9, 2), torch.rand(3, 1)
    before = {n: p.detach().clone() for n, p in network.named_parameters()}
    step(x, t)
    between = {n: p.detach().clone() for n, p in network.named_parameters()}
    step(x, t)
    watcher.finish()
    first = watcher.rows[0]
    W_rec = [(n, p) for n, p in before.items() if n.startswith("W_rec")]
    assert len(W_rec) == (2 if model == "alarmwork" else 3)
    for name, W in W_rec:
        column = name.replace(".", "")
        assert first[f"{column}_norm"] == pytest.approx(float(torch.linalg.matrix_norm(W.double(), 2)), rel=1e-12)
        assert first[f"{column}_radius"] == pytest.approx(float(np.abs(np.linalg.eigvals(W.double().numpy())).max()), rel=1e-12)
        assert first[f"{column}_norm"] > first[f"{column}_radius"] * 1.01
    reference = build_model(model, 4, nonlinearity="relu", wiring="all", periods=periods)
    reference.load_state_dict(before)
    with torch.no_grad():                             # the readable loop over the first t steps
        for column, t_step in (("state_quarter", 2), ("state_half", 4), ("state_three_quarters", 6),
                               ("state_norm_max", 9)):
            expected = float(reference.recurrent_layers(x[:, :t_step]).double().norm(dim=1).max())
            assert first[column] == pytest.approx(expected, rel=1e-5)
        peak = max(float(reference.recurrent_layers(x[:, :l]).norm(dim=1).max()) for l in range(1, 10))
    assert first["state_peak"] == pytest.approx(peak, rel=1e-5)
    # the gradients: recompute the first batch's on the weights before it
    reference.zero_grad()
    nn.MSELoss()(reference(x), t).backward()
    named = dict(reference.named_parameters())
    for group, prefix in (("recurrent", "W_rec"), ("input", "W_in"), ("biases", "b_in"), ("output", "W_out")):
        members = [n for n in named if n.startswith(prefix) or (group == "output" and n == "b_out")]
        expected = float(torch.cat([named[n].grad.double().flatten() for n in members]).norm())
        assert first[f"grad_{group}"] == pytest.approx(expected, rel=1e-5)
        for row, (old, new) in zip(watcher.rows, ((before, between), (between, dict(network.named_parameters())))):
            change = torch.cat([(new[n].detach().double() - old[n].double()).flatten() for n in members])
            assert row[f"step_{group}"] == pytest.approx(float(change.norm()), rel=1e-12)
    squares = sum(first[f"grad_{g}"] ** 2 for g in collapse.GROUPS)
    assert math.sqrt(squares) == pytest.approx(first["grad_norm"], rel=1e-12)
    assert 0 < first["step_recurrent"] and first["step_recurrent"] != watcher.rows[1]["step_recurrent"]


def test_adam_scale_is_the_root_mean_square_of_the_clipped_gradients_and_eps_splits_it():
    torch.manual_seed(2)
    config = configs.run_config("alarmwork", 9, 0, {}, "integrator", wiring="all", hidden=4,
                                adam_eps=1e-3)
    network = build_model("alarmwork", 4, nonlinearity="relu", wiring="all")
    watcher = collapse.Watcher(seed=0, batches_per_epoch=5, dynamics=True)
    _, step = training.training_step(config, network, watch=watcher)
    clipped = []                     # the gradients Adam took: .grad after the step's clipping
    for _ in range(4):
        step(torch.rand(3, 9, 2), torch.rand(3, 1))
        clipped.append({n: p.grad.detach().double().clone() for n, p in network.named_parameters()})
    assert all(math.isnan(watcher.rows[0][f"adam_scale_{g}"]) for g in collapse.GROUPS)
    beta2, shares = 0.999, []
    for k, row in enumerate(watcher.rows[1:], start=1):          # k steps taken before this row
        for group in collapse.GROUPS:
            members = [n for n in clipped[0] if collapse.group_of(n) == group]
            v = [sum((1 - beta2) * beta2 ** (k - 1 - i) * clipped[i][n] ** 2 for i in range(k))
                 for n in members]
            scale = torch.cat([(each / (1 - beta2 ** k)).sqrt().flatten() for each in v])
            assert row[f"adam_scale_{group}"] == pytest.approx(float(scale.median()), rel=1e-5)
            assert row[f"under_eps_{group}"] == pytest.approx(float((scale < 1e-3).double().mean()))
            shares.append(row[f"under_eps_{group}"])
    assert max(shares) > 0 and min(shares) < 1          # eps splits some group, and not all


def linear_growth_per_step(periods, W_rec, wiring, periods_run=300):
    """The recurrence of the docstring of lib/bptt.py without f, one equation a line, run on a
    random start: the norm's growth over the last period, per step."""
    K, T = len(W_rec), math.lcm(*periods)
    z = [torch.rand(W_rec[0].shape[0], dtype=torch.float64) for _ in range(K)]
    for _ in range(periods_run):
        norm_before = float(torch.cat(z).norm())
        for l in range(T):
            previous = list(z)
            for k, period in enumerate(periods):
                if l % period == 0:
                    first = 0 if wiring == "all" else k
                    z[k] = W_rec[k] @ sum(previous[first + 1:], previous[first])
        norm_after = float(torch.cat(z).norm())
        z = [z_k / norm_after for z_k in z]
    return (norm_after / norm_before) ** (1.0 / T)


@pytest.mark.parametrize("periods", [(1, 2), (1, 2, 4), (1, 3)])
@pytest.mark.parametrize("wiring", ["all", "slower"])
def test_the_recurrence_radius_is_the_linear_recurrences_growth_per_step_and_1_at_the_integrator_start(
        periods, wiring):
    model = build_model("clockwork", 3, periods=periods, nonlinearity="relu", wiring=wiring)
    start_as_integrator_(model)                      # I/K in float32: exact where K is 2 or 4
    assert collapse.recurrence_radius(periods, list(model.W_rec), wiring) == pytest.approx(
        1.0, abs=1e-12 if len(periods) in (2, 4) else 1e-7)
    generator = torch.Generator().manual_seed(len(periods))
    W_rec = [0.4 * torch.rand(3, 3, generator=generator, dtype=torch.float64) for _ in periods]
    growth = linear_growth_per_step(periods, W_rec, wiring)  # positive matrices: one leading root
    assert growth != pytest.approx(1.0, abs=1e-3)
    assert collapse.recurrence_radius(periods, W_rec, wiring) == pytest.approx(growth, rel=1e-9)


def test_quick_collapse_with_the_candidates_options_records_the_dynamics(tmp_path):
    collapse.main(["--quick", "--results-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path),
                   "--warmup-steps", "5", "--adam-eps", "1e-3", "--dynamics"])
    rows = pd.read_csv(tmp_path / "out" / "collapse.csv")
    assert len(rows) == 2 * 10 and rows[["W_rec1_norm", "W_rec2_radius", "recurrence_radius",
                                         "state_half", "grad_input", "step_output"]].notna().all().all()
    assert rows["recurrence_radius"].iloc[0] == pytest.approx(1.0)      # the integrator start
    text = (tmp_path / "out" / "collapse.md").read_text()
    assert "Adam 0.0001, warm-up over 5 steps, eps 0.001, L = 30" in text
    assert "| W_rec1 norm / radius " in text and "0.500 / 0.500 → " in text
    after_a_step = rows[rows["batch"] > 0]                  # each run's Adam has a state
    assert after_a_step[["adam_scale_recurrent", "under_eps_output"]].notna().all().all()
    assert "| median Adam scale: rec / in / bias / out " in text

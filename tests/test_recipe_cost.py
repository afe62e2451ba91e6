"""The cost of the new recipe's ladders: the subnormal timing trains two copies of one network
and leaves subnormals on, the trained network is the first solved sweep run with weights, the
data set's size is the arrays', and the plan adds the budget's hours, longest first."""
import os

import pandas as pd
import pytest
import torch

import generate_data_adding_problem as data
from experiment import runs, training
from studies import recipe_cost as cost
from studies.common import parse_model

CANDIDATE = "warmup_eps1e-3"
DATA = {"seed": 1234, "train": 60, "dev": 20, "test": 20}


def subnormals_computed():
    """Whether a float32 subnormal survives a multiplication (not flushed to zero)."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    return bool((tiny * 1.0).item() != 0.0)


def test_the_flush_timing_trains_two_copies_and_leaves_subnormals_computed():
    config = cost.candidate_config(parse_model("alarmwork:all"), 6, CANDIDATE)
    model = cost.start_network(config)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    unflushed, flushed, ratio = cost.flush_speedup(config, model, 6, repeats=2, step_seconds=0.005)
    assert unflushed > 0 and flushed > 0 and ratio > 0
    assert subnormals_computed()
    # the timed copies trained; the network handed in is as it was
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def save_sweep_run(folder, spec, seed, dev_accuracy, keep_weights=True):
    config = {**cost.candidate_config(spec, cost.TRAINED_FROM, CANDIDATE, seed),
              "data": data.generator_options(cost.TRAINED_FROM, {"train": 60, "dev": 20, "test": 20}, 1234)}
    record = {"config": config, "status": "finished", "dev_accuracy": dev_accuracy,
              "test_accuracy": dev_accuracy, "epochs_run": 3, "history": []}
    if keep_weights:
        record["weights"] = training.make_model(config).state_dict()
    runs.save_record(folder, record)
    return runs.record_path(folder, config)


def test_the_trained_network_is_the_first_seed_that_solved_dev_with_its_weights_kept(tmp_path):
    spec = parse_model("alarmwork:all")
    folder = tmp_path / f"L{cost.TRAINED_FROM}"
    save_sweep_run(folder, spec, 100, 40.0)                        # on the plateau
    save_sweep_run(folder, spec, 101, 99.0, keep_weights=False)    # no weights kept
    wanted = save_sweep_run(folder, spec, 103, 99.6)
    save_sweep_run(folder, spec, 104, 99.7)
    assert cost.trained_record(spec, CANDIDATE, str(tmp_path)) == wanted
    assert cost.trained_record(parse_model("clockwork:all"), CANDIDATE, str(tmp_path)) is None
    assert cost.trained_record(spec, "warmup", str(tmp_path)) is None


def test_a_data_sets_size_in_memory_is_its_arrays():
    sizes = {"train": 30, "dev": 10, "test": 10}
    arrays = data.generate_data_set(9, sizes, seed=5)
    assert all(array.dtype == "float32" for array in arrays.values())
    assert cost.data_set_mib(9, sizes) == pytest.approx(
        sum(array.nbytes for array in arrays.values()) / 2**20)


def test_the_plan_counts_the_budget_of_each_rung_longest_first():
    times = pd.DataFrame({"model": ["a", "b", "a"], "seq_len": [10, 10, 100],
                          "epoch_s": [1.0, 2.0, 36.0]})
    plan = cost.plan(times)
    assert list(plan["seq_len"]) == [100, 10, 10] and list(plan["model"]) == ["a", "b", "a"]
    assert plan["cpu_hours"].iloc[0] == pytest.approx(36.0 * 5 * 50 / 3600)
    assert plan["total_hours"].iloc[-1] == pytest.approx((1 + 2 + 36) * 5 * 50 / 3600)


def test_a_step_and_an_evaluation_in_a_process_of_their_own_report_their_memory():
    rows = cost.memory_rows([parse_model("simple_rnn")], 1000, CANDIDATE)
    # a batch of 20 at L = 1000: the saved states alone are 20 x 1000 x 50 float32 (3.8 MiB);
    # nn.RNN's outputs for the 1000 samples of an evaluation, 1000 x 1000 x 50 (191 MiB)
    row = rows.iloc[0]
    assert row["process_peak_mib"] > 50 and row["step_mib"] > 2.5
    assert row["evaluation_mib"] > 150


def test_settings_other_than_the_defaults_write_into_a_folder_named_after_them(tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cost.parse_args([]).results_dir == cost.RESULTS_DIR
    assert cost.parse_args(["--candidate", "warmup"]).results_dir == os.path.join(
        cost.RESULTS_DIR, "warmup")


def test_a_cpu_that_cannot_flush_subnormals_is_said_and_subnormals_stay_computed(monkeypatch):
    calls = []

    def cannot_flush(on):
        calls.append(on)
        return False

    monkeypatch.setattr(torch, "set_flush_denormal", cannot_flush)
    config = cost.candidate_config(parse_model("simple_rnn"), 6, CANDIDATE)
    with pytest.raises(cost.FlushUnsupported, match="cannot flush subnormals"):
        cost.flush_speedup(config, cost.start_network(config), 6, repeats=1, step_seconds=0.005)
    assert calls[-1] is False                     # turned off again on the way out

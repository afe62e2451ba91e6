"""benchmark_training_speed.py: the flop count against a hand count; the files of a --quick run."""
import math

import pandas as pd
import pytest
import torch

from studies import benchmark_training_speed as bench

QUICK_LENGTHS = [4, 10]
ALL_ROWS = {("SimpleRNN", "nn.RNN"), ("LSTM", "nn.LSTM"),
            ("AlarmworkNet", "bptt"), ("AlarmworkNet", "autograd"),
            ("Clockwork(1,2,4,8)", "bptt"), ("Clockwork(1,2,4,8)", "autograd")}


# ------------------------------------------------------------------------------ flop count

# One sample, one hidden unit, two inputs, one output (N = P = O = 1, I = 2), by hand:
RNN1_STEP = (4 + 1 + 1 + 2 + 1 + 1     # forward: W_in1 x, + b_in1, z_in12, W_rec1 z, + u, tanh
             + 3 + 2 + 2 + 4 + 1 + 1)  # backward: d_in1, W_rec1^T d, dW_rec1, dW_in1, db_in1, g2 +=
RNN2_STEP = (4 + 1 + 2 + 1 + 1         # forward: W_in2 x, + b_in2, W_rec2 z, + u, tanh
             + 3 + 2 + 2 + 4 + 1)      # backward: d_in2, W_rec2^T d, dW_rec2, dW_in2, db_in2
HEAD = (2 + 1 + 1 + 3                  # forward: W_out z, + b_out, tanh, MSE
        + 1 + 3 + 2 + 2 + 1)           # backward: dE/dy, tanh, dW_out, dE/dz, db_out
SGD = 4 * (2 + 1 + 1 + 2 + 1 + 1 + 1 + 1)  # 4 per parameter, 10 parameters


@pytest.mark.parametrize("seq_len, expected", [
    (1, RNN1_STEP + RNN2_STEP + HEAD + SGD),           # Layer_rec2 fires on step 1
    (2, 2 * RNN1_STEP + RNN2_STEP + HEAD + SGD),       # ... and copies on step 2
    (3, 3 * RNN1_STEP + 2 * RNN2_STEP + HEAD + SGD),   # ... and fires again on step 3
])
def test_alarmwork_flops_matches_a_hand_count_for_one_unit(seq_len, expected):
    assert bench.alarmwork_flops(seq_len, batch=1, hidden=1) == expected


def test_alarmwork_flops_grow_with_the_batch_except_the_optimizer():
    per_sample = bench.alarmwork_flops(5, batch=1, hidden=3) - bench.optimizer_flops(3)
    assert bench.alarmwork_flops(5, batch=4, hidden=3) == 4 * per_sample + bench.optimizer_flops(3)


def test_clockwork_flops_with_periods_1_2_are_alarmworks():
    for L in (1, 7, 100):
        assert bench.clockwork_flops(L, 20, 50, (1, 2)) == bench.alarmwork_flops(L, 20, 50)


def test_clockwork_flops_for_one_unit_count_each_layers_firing_steps():
    # periods (1, 4) at L = 5: the fast layer fires on all 5 steps, the slow one on 0 and 4;
    # per firing, each costs what AlarmworkNet's layer of the same place costs
    expected = 5 * RNN1_STEP + 2 * RNN2_STEP + HEAD + SGD
    assert bench.clockwork_flops(5, batch=1, hidden=1, periods=(1, 4)) == expected


def test_recurrent_products_forward_and_backward_dominate_at_the_protocols_size():
    N, P, L = 20, 50, 100
    recurrent_products = 3 * 2 * N * P * P * (L + math.ceil(L / 2))  # forward, two backward
    flops = bench.alarmwork_flops(L, batch=N, hidden=P)
    assert recurrent_products < flops < 1.1 * recurrent_products


# ------------------------------------------------------------------------------ a quick run

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The results folder of one `--quick` run, shared by the tests below."""
    results_dir = tmp_path_factory.mktemp("results")
    bench.main(["--quick", "--results-dir", str(results_dir)])
    return results_dir


def read_rows(results_dir):
    return pd.read_csv(results_dir / "training_speed.csv", keep_default_na=False,
                       na_values=[""])


def test_csv_has_one_row_for_every_model_and_length(quick_run):
    rows = read_rows(quick_run)
    assert len(rows) == len(ALL_ROWS) * len(QUICK_LENGTHS)
    assert {(r.model, r.engine, r.seq_len) for r in rows.itertuples()} == {
        (model, engine, L) for model, engine in ALL_ROWS for L in QUICK_LENGTHS}


def test_times_are_positive_and_the_median_lies_within_the_spread(quick_run):
    rows = read_rows(quick_run)
    assert (rows.step_ms_min > 0).all()
    assert (rows.step_ms_min <= rows.step_ms).all() and (rows.step_ms <= rows.step_ms_max).all()


def test_epoch_time_is_500_median_steps(quick_run):
    rows = read_rows(quick_run)
    assert rows.epoch_s.to_numpy() == pytest.approx(500 * rows.step_ms.to_numpy() / 1e3)


def test_ratio_to_lstm_is_the_median_of_ratios_paired_by_repeat(monkeypatch):
    times = {"lstm": [1.0, 2.0, 3.0], "alarmwork_bptt": [3.0, 1.0, 2.0]}
    monkeypatch.setattr(bench, "time_length", lambda names, seq_len, repeats, steps: times)
    rows = bench.measure(["lstm", "alarmwork_bptt"], [10], repeats=3, steps=1, peak_gflops=96)
    ratios = dict(zip(rows.engine, rows.ratio_to_lstm))
    assert ratios["nn.LSTM"] == 1.0
    assert ratios["bptt"] == pytest.approx(2.0 / 3.0)   # median of 3, 0.5, 2/3 (not 2 / 2)


def test_lstm_rows_have_ratio_one_at_every_length(quick_run):
    rows = read_rows(quick_run)
    assert (rows[rows.model == "LSTM"].ratio_to_lstm == 1.0).all()


def test_gflops_are_the_counted_flops_over_the_median_step_for_the_clockwork_models_only(quick_run):
    rows = read_rows(quick_run)
    clockwork = rows[rows.model == "Clockwork(1,2,4,8)"]
    assert clockwork.flops_per_step.tolist() == [
        bench.clockwork_flops(L, 20, 50, (1, 2, 4, 8)) for L in clockwork.seq_len]
    alarmwork = rows[rows.model == "AlarmworkNet"]
    flops = [bench.alarmwork_flops(L, 20, 50) for L in alarmwork.seq_len]
    assert alarmwork.flops_per_step.tolist() == flops
    assert alarmwork.gflops.to_numpy() == pytest.approx(
        alarmwork.flops_per_step.to_numpy() / (alarmwork.step_ms.to_numpy() / 1e3) / 1e9)
    assert alarmwork.peak_fraction.to_numpy() == pytest.approx(
        alarmwork.gflops.to_numpy() / bench.NOMINAL_PEAK_GFLOPS)
    others = rows[~rows.model.isin(["AlarmworkNet", "Clockwork(1,2,4,8)"])]
    assert others[["flops_per_step", "gflops", "peak_fraction"]].isna().all().all()


def test_markdown_has_the_command_the_machine_and_a_line_per_row(quick_run):
    text = (quick_run / "training_speed.md").read_text()
    assert f"python -m studies.benchmark_training_speed --quick --results-dir {quick_run}" in text
    assert bench.cpu_model() in text and "1 torch thread" in text and torch.__version__ in text
    assert "× 500" in text
    speed_table = text.split("Cost of one call")[0]
    table_lines = [line for line in speed_table.splitlines() if line.startswith("| ")]
    assert "x LSTM" in table_lines[0] and "GFLOP/s" in table_lines[0]
    assert len(table_lines) == 1 + len(ALL_ROWS) * len(QUICK_LENGTHS)


def test_no_temporary_files_are_left_behind(quick_run):
    assert sorted(p.name for p in quick_run.iterdir()) == [
        "training_speed.csv", "training_speed.md", "training_speed_calls.csv"]


def test_lstm_is_timed_as_the_reference_even_when_not_asked_for(tmp_path):
    bench.main(["--models", "alarmwork_bptt", "--lengths", "4", "--repeats", "1",
                "--steps", "1", "--peak-gflops", "10", "--results-dir", str(tmp_path)])
    rows = read_rows(tmp_path)
    assert rows.model.tolist() == ["LSTM", "AlarmworkNet"]
    assert rows.peak_fraction[1] == pytest.approx(rows.gflops[1] / 10)


def test_call_costs_compare_numpy_and_torch_for_every_loop_operation(quick_run):
    costs = pd.read_csv(quick_run / "training_speed_calls.csv")
    assert list(costs.operation) == ["matrix product z @ W", "add, into a buffer",
                                     "multiply, into a buffer", "tanh, into a buffer"]
    assert (costs.numpy_us > 0).all() and (costs.torch_us > 0).all()
    assert costs.torch_over_numpy.to_numpy() == pytest.approx((costs.torch_us / costs.numpy_us).to_numpy())
    assert "torch / NumPy" in (quick_run / "training_speed.md").read_text()

"""benchmark_training_speed.py: the flop count against a hand count, in both wirings; the files
of a --quick run."""
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models import build_model
from studies import benchmark_training_speed as bench

QUICK_LENGTHS = [4, 10]
ALL_ROWS = {("SimpleRNN", "nn.RNN"), ("LSTM", "nn.LSTM"),
            ("AlarmworkNet", "bptt"), ("AlarmworkNet", "autograd"),
            ("Clockwork(1,2,4,8)", "bptt"), ("Clockwork(1,2,4,8)", "autograd"),
            ("AlarmworkNet all-wired", "bptt"), ("Clockwork(1,2,4,8) all-wired", "bptt")}
CLOCKED = ["AlarmworkNet", "Clockwork(1,2,4,8)", "AlarmworkNet all-wired",
           "Clockwork(1,2,4,8) all-wired"]


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


# One training step at the protocol's size, counted by hand from the equations: batch
# N = 20, P = 50 units, 2 inputs, 1 output, L = 10 steps. A product of (n x k) by (k x m) is
# 2nkm flops: W_in x is (20 x 2)(2 x 50), 4,000; W_rec z is (20 x 50)(50 x 50), 100,000;
# W_out z is (20 x 50)(50 x 1), 2,000. An elementwise operation on a (20 x 50) state is 1,000.
# A layer fires on 10 / 5 / 3 / 2 of the 10 steps at period 1 / 2 / 4 / 8.
FIRING_PRODUCTS = 4_000 + 100_000                  # forward: W_in x, W_rec z
FIRING_PRODUCTS_BACK = 100_000 + 100_000 + 4_000   # backward: W_rec^T d, dE/dW_rec, dE/dW_in
HEAD_PRODUCTS = 2_000 + 2_000 + 2_000              # W_out z; backward dE/dW_out, dE/dz
HEAD_ELEMENTWISE = (20 + 20 + 3 * 20               # + b_out, tanh, MSE (subtract, square, sum)
                    + 20 + 3 * 20 + 20)            # dE/dy, tanh', dE/db_out
LAYER_PARAMETERS = 50 * 2 + 50 * 50 + 50           # W_in, W_rec, b_in; Layer_out has 50 + 1

ALARMWORK_PRODUCTS_L10 = (10 + 5) * (FIRING_PRODUCTS + FIRING_PRODUCTS_BACK) + HEAD_PRODUCTS
ALARMWORK_FLOPS_L10 = (
    ALARMWORK_PRODUCTS_L10
    # Layer_rec1 forward: + b_in1, + W_rec1 z, tanh, z_in12 = z_in1 + z_in2;
    #   backward: d = g * (1 - z^2) (3 flops), dE/db_in1, g2 += ...
    + 10 * (4_000 + 5_000)
    # Layer_rec2 forward: + b_in2, + W_rec2 z, tanh; backward: d (3 flops), dE/db_in2
    + 5 * (3_000 + 4_000)
    + HEAD_ELEMENTWISE + 4 * (2 * LAYER_PARAMETERS + 51))   # SGD: 4 flops per parameter
                                                             # = 4,772,604 in all

CLOCKWORK_PRODUCTS_L10 = (10 + 5 + 3 + 2) * (FIRING_PRODUCTS + FIRING_PRODUCTS_BACK) + HEAD_PRODUCTS
CLOCKWORK_FLOPS_L10 = (
    CLOCKWORK_PRODUCTS_L10
    + 20 * (3_000 + 4_000)   # every firing, as Layer_rec2's above
    # the sum of a layer's state and the 3 / 2 / 1 / 0 slower ones, forward and backward
    + 2 * (10 * 3_000 + 5 * 2_000 + 3 * 1_000 + 2 * 0)
    + HEAD_ELEMENTWISE + 4 * (4 * LAYER_PARAMETERS + 51))   # = 6,434,804 in all


# wiring="all" (SPEC.md, section 7): every fired layer reads s_0 = z_0 + z_1 + z_2 + z_3, formed
# once a step (3 adds of 1,000 forward at each of the 10 steps); backward, the fired layers'
# ds_k are summed once and every copied layer adds the sum to its own gradient, 3 adds a step
# whatever fired. The products are the same: a W_rec_k s per firing.
CLOCKWORK_ALL_FLOPS_L10 = (
    CLOCKWORK_PRODUCTS_L10
    + 20 * (3_000 + 4_000)
    + 2 * 10 * 3_000
    + HEAD_ELEMENTWISE + 4 * (4 * LAYER_PARAMETERS + 51))   # = 6,408,804 in all


def test_alarmwork_flops_at_the_protocols_size_match_a_count_by_hand():
    assert bench.alarmwork_flops(10, batch=20, hidden=50) == ALARMWORK_FLOPS_L10


def test_clockwork_flops_at_the_protocols_size_match_a_count_by_hand():
    flops = bench.clockwork_flops(10, batch=20, hidden=50, periods=(1, 2, 4, 8))
    assert flops == CLOCKWORK_FLOPS_L10


def test_clockwork_flops_of_the_all_wiring_at_the_protocols_size_match_a_count_by_hand():
    flops = bench.clockwork_flops(10, batch=20, hidden=50, periods=(1, 2, 4, 8), wiring="all")
    assert flops == CLOCKWORK_ALL_FLOPS_L10 == 6_408_804


def test_alarmworks_two_wirings_cost_the_same_flops():
    # K = 2: Layer_rec2 reads z_in12, which Layer_rec1 forms anyway; backward, the step where
    # both fire sums ds_in1 + ds_in2 once for both, a copying step adds ds_in1 to G_2: 1 add a step
    assert bench.alarmwork_flops(10, batch=20, hidden=50, wiring="all") == ALARMWORK_FLOPS_L10
    assert bench.alarmwork_flops(7, batch=1, hidden=1, wiring="all") == bench.alarmwork_flops(
        7, batch=1, hidden=1)


def test_the_all_wiring_saves_the_slower_layers_sums_and_nothing_else():
    # periods (1, 2, 4) at L = 4, one unit: the assignment's wiring sums 2 states for layer 0 at
    # 4 steps and 1 for layer 1 at 2 steps (forward and backward: 2 x 10); all-wired, the one
    # s_0 of 2 adds a step (2 x 8)
    slower = bench.clockwork_flops(4, batch=1, hidden=1, periods=(1, 2, 4))
    assert slower - bench.clockwork_flops(4, batch=1, hidden=1, periods=(1, 2, 4), wiring="all") == 4


def test_an_unknown_wiring_has_no_flop_count():
    with pytest.raises(ValueError, match="unknown wiring 'faster'"):
        bench.clockwork_flops(10, batch=20, hidden=50, periods=(1, 2), wiring="faster")


@pytest.mark.parametrize("registry_name, periods, products", [
    ("alarmwork", (1, 2), ALARMWORK_PRODUCTS_L10),
    ("clockwork", (1, 2, 4, 8), CLOCKWORK_PRODUCTS_L10)])
@pytest.mark.parametrize("wiring", ["slower", "all"])
def test_the_hand_counted_products_are_what_torch_counts_on_the_autograd_engine(
        registry_name, periods, products, wiring):
    torch.manual_seed(0)
    model = build_model(registry_name, 50, "autograd", periods=periods, wiring=wiring)
    x, t = torch.randn(20, 10, 2), torch.randn(20, 1)
    with FlopCounterMode(display=False) as counter:
        nn.functional.mse_loss(model(x), t).backward()
    # torch counts the matrix products only, and autograd skips W_rec^T d at the first step
    # of each layer, whose state there is the constant 0 (the hand count keeps it)
    assert counter.get_total_flops() == products - len(periods) * 100_000


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


def measured_with_times(monkeypatch, times, peak_gflops=96):
    """The rows `measure` makes at L = 10 when every repeat of each model took `times` s."""
    monkeypatch.setattr(bench, "time_length", lambda names, seq_len, repeats, steps: times)
    return bench.measure(list(times), [10], repeats=3, steps=1, peak_gflops=peak_gflops)


def test_a_row_gives_the_median_step_its_range_and_the_epoch_of_500_steps(monkeypatch):
    rows = measured_with_times(monkeypatch, {"lstm": [0.004] * 3,
                                             "alarmwork_bptt": [0.001, 0.004, 0.002]})
    alarmwork = rows[rows.engine == "bptt"].iloc[0]
    assert [alarmwork.step_ms, alarmwork.step_ms_min, alarmwork.step_ms_max] == pytest.approx(
        [2, 1, 4])
    assert alarmwork.epoch_s == pytest.approx(1.0)   # 10,000 samples / batch 20 = 500 steps of 2 ms


def test_gflops_are_the_hand_counted_flops_over_the_median_step(monkeypatch):
    rows = measured_with_times(monkeypatch, {"lstm": [0.004] * 3, "alarmwork_bptt": [0.002] * 3,
                                             "clockwork_bptt": [0.004] * 3}, peak_gflops=4)
    alarmwork, clockwork = (rows[rows.model == model].iloc[0]
                            for model in ("AlarmworkNet", "Clockwork(1,2,4,8)"))
    assert alarmwork.flops_per_step == ALARMWORK_FLOPS_L10
    assert alarmwork.gflops == pytest.approx(2.386302)           # 4,772,604 flops in 2 ms
    assert alarmwork.peak_fraction == pytest.approx(2.386302 / 4)
    assert clockwork.flops_per_step == CLOCKWORK_FLOPS_L10       # periods (1, 2, 4, 8), not (1, 2)
    assert clockwork.gflops == pytest.approx(1.608701)           # 6,434,804 flops in 4 ms
    lstm = rows[rows.model == "LSTM"]
    assert lstm[["flops_per_step", "gflops", "peak_fraction"]].isna().all().all()


def test_ratio_to_lstm_is_the_median_of_ratios_paired_by_repeat(monkeypatch):
    rows = measured_with_times(monkeypatch, {"lstm": [1.0, 2.0, 3.0],
                                             "alarmwork_bptt": [3.0, 1.0, 2.0]})
    ratios = dict(zip(rows.engine, rows.ratio_to_lstm))
    assert ratios["bptt"] == pytest.approx(2.0 / 3.0)   # median of 3, 0.5, 2/3 (not 2 / 2)


def test_the_all_wired_networks_are_timed_with_their_wiring(monkeypatch):
    built = []

    def build_model_seen(name, *args, wiring="slower", **kwargs):
        built.append((name, wiring))
        return build_model(name, *args, wiring=wiring, **kwargs)

    monkeypatch.setattr(bench, "build_model", build_model_seen)
    bench.time_length(["lstm", "alarmwork_bptt", "alarmwork_all", "clockwork_all"], 4, 1, 1)
    assert built == [("lstm", "slower"), ("alarmwork", "slower"), ("alarmwork", "all"),
                     ("clockwork", "all")]


def test_the_csv_gives_each_clocked_rows_wiring(quick_run):
    rows = read_rows(quick_run)
    wirings = {(r.model, r.engine): r.wiring for r in rows.itertuples()}
    assert wirings[("AlarmworkNet all-wired", "bptt")] == "all"
    assert wirings[("Clockwork(1,2,4,8) all-wired", "bptt")] == "all"
    assert wirings[("AlarmworkNet", "bptt")] == wirings[("Clockwork(1,2,4,8)", "autograd")] == "slower"
    assert pd.isna(wirings[("LSTM", "nn.LSTM")]) and pd.isna(wirings[("SimpleRNN", "nn.RNN")])


def test_only_the_hand_written_models_have_a_flop_count(quick_run):
    rows = read_rows(quick_run)
    counted = rows.model.isin(CLOCKED)
    assert rows[counted][["flops_per_step", "gflops", "peak_fraction"]].notna().all().all()
    assert rows[~counted][["flops_per_step", "gflops", "peak_fraction"]].isna().all().all()
    at_l10 = rows[counted & (rows.seq_len == 10)]
    assert sorted(zip(at_l10.model, at_l10.engine, at_l10.flops_per_step)) == [
        ("AlarmworkNet", "autograd", ALARMWORK_FLOPS_L10),
        ("AlarmworkNet", "bptt", ALARMWORK_FLOPS_L10),
        ("AlarmworkNet all-wired", "bptt", ALARMWORK_FLOPS_L10),
        ("Clockwork(1,2,4,8)", "autograd", CLOCKWORK_FLOPS_L10),
        ("Clockwork(1,2,4,8)", "bptt", CLOCKWORK_FLOPS_L10),
        ("Clockwork(1,2,4,8) all-wired", "bptt", CLOCKWORK_ALL_FLOPS_L10)]


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
    assert "torch / NumPy" in (quick_run / "training_speed.md").read_text()


# ------------------------------------------------------------------------------ subnormal floats

def flushes_subnormals():
    """Whether this thread's float32 arithmetic flushes subnormals to zero, in NumPy."""
    return np.multiply(np.float32(1e-30), np.float32(1e-10)) == 0   # 1e-40: subnormal, not 0


def test_flush_denormal_flushes_for_the_timing_only_and_says_so(tmp_path, monkeypatch):
    seen = []
    real_measure = bench.measure

    def measure(*args, **kwargs):
        seen.append(flushes_subnormals())
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(bench, "measure", measure)
    argv = ["--models", "alarmwork_all", "--lengths", "4", "--repeats", "1", "--steps", "1"]
    bench.main([*argv, "--results-dir", str(tmp_path / "plain")])
    bench.main([*argv, "--flush-denormal", "--results-dir", str(tmp_path / "flushed")])
    assert seen == [False, True] and not flushes_subnormals()      # training's default after it
    assert read_rows(tmp_path / "plain").flush_denormal.tolist() == [False, False]
    assert read_rows(tmp_path / "flushed").flush_denormal.tolist() == [True, True]
    assert "subnormal floats computed as such" in (tmp_path / "plain" / "training_speed.md").read_text()
    assert "subnormal floats flushed to zero" in (tmp_path / "flushed" / "training_speed.md").read_text()


# ------------------------------------------------------------------------------ the committed tables

@pytest.mark.parametrize("folder", ["results/training_speed_all_wired",
                                    "results/training_speed_all_wired/flushed"])
def test_the_results_readme_shows_the_committed_all_wired_tables(folder):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, folder, "training_speed.md"), encoding="utf-8") as f:
        timed = f.read().split("Cost of one call")[0]
    with open(os.path.join(root, "results", "README.md"), encoding="utf-8") as f:
        readme = f.read()
    lines = [line for line in timed.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 5 * 2                   # header; nn.LSTM and four clocked rows at L = 100, 1000
    for line in lines:
        assert line in readme, f"{folder}: {line[:60]}... is not in results/README.md"
    rows = pd.read_csv(os.path.join(root, folder, "training_speed.csv"))
    assert set(rows.seq_len) == {100, 1000} and rows.flush_denormal.tolist() == [
        folder.endswith("flushed")] * 10

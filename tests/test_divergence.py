"""The divergence study: its watched runs are the runs' own training, batch by batch."""
import math

import pandas as pd
import pytest
import torch

import generate_data_adding_problem as data
from experiment import configs, training
from studies import divergence

SIZES = {"train": 60, "dev": 20, "test": 20}


def test_overflow_radius_is_where_rho_to_the_L_passes_float32s_largest_number():
    for seq_len in (100, 500, 1000):
        rho = divergence.overflow_radius(seq_len)
        assert rho ** seq_len == pytest.approx(float(torch.finfo(torch.float32).max), rel=1e-9)
    assert 1.19 < divergence.overflow_radius(500) < 1.20


def test_a_watched_run_is_the_runs_own_training_and_records_every_batch(tmp_path):
    data.write_data_set(str(tmp_path), 12, SIZES, 2021)
    options = data.read_options(data.data_path(str(tmp_path), 12))
    arrays = data.load_data_set(str(tmp_path), 12, options)
    config = configs.run_config("simple_rnn", 12, 0, options, "integrator", epochs=2)
    plain = training.train_run(config, arrays, show_progress=False)
    watched, rows = divergence.watched_run(config, arrays)
    assert [h["dev_accuracy"] for h in watched["history"]] == [h["dev_accuracy"] for h in plain["history"]]
    assert watched["test_accuracy"] == plain["test_accuracy"]
    assert divergence.reproduces(watched, plain).startswith("yes")
    assert len(rows) == 2 * math.ceil(60 / 20) and list(rows["epoch"]) == [0, 0, 0, 1, 1, 1]
    assert rows["spectral_radius"].iloc[0] == pytest.approx(1.0)         # weight_hh = I at the start
    assert (rows["spectral_norm"] >= rows["spectral_radius"] - 1e-9).all()
    grads = rows[[f"grad_{w}" for w in divergence.WEIGHTS]].pow(2).sum(axis=1).pow(0.5)
    measured = [h["grad_norm"] for h in plain["history"][:-1]]           # each epoch's mean norm
    assert grads.groupby(rows["epoch"]).mean().tolist() == pytest.approx(measured, rel=1e-4)
    altered = {**plain, "history": [{**plain["history"][0], "dev_accuracy": -1.0}]}
    assert divergence.reproduces(watched, altered).startswith("NO")


def test_summary_finds_the_first_overflow_and_the_first_non_finite_loss():
    rows = pd.DataFrame({"seed": 2, "epoch": 0, "batch": range(5),
                         "loss": [0.1, 0.2, 3e9, float("nan"), float("nan")],
                         "spectral_radius": [1.0, 1.1, 1.25, 1.3, float("nan")],
                         "spectral_norm": [1.0, 1.2, 1.4, 1.5, float("nan")],
                         "state_norm_max": [2.0, 5e5, 2e7, float("inf"), float("nan")],
                         **{f"grad_{w}": 1.0 for w in divergence.WEIGHTS}})
    saved = {"status": "diverged", "diverged_epoch": 1, "history": [{"dev_accuracy": 40.0}]}
    line = divergence.summary_row(rows, {"history": [{"dev_accuracy": 40.0}]}, saved, 500)
    assert line["first state > 1e6"] == "batch 2 (rho 1.250)"
    assert line["first non-finite loss"] == "batch 3 (rho 1.300)"
    assert line["batches with rho > rho*"] == 2 and line["max rho"] == "1.300"
    assert line["saved run"] == "diverged in epoch 1"

"""The committed results folders: each README shows the tables and numbers its records make today."""
import glob
import json
import math
import os
import statistics

import numpy as np
import pytest
import torch

import generate_data_adding_problem as data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def prose(path):
    """A README's text with every run of whitespace made one space, so a phrase may wrap."""
    return " ".join(read(path).split())


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def records(folder, model=None, seq_len=None):
    """The finished run records of a results folder, optionally of one model and length."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, folder, "runs", "*.json"))):
        with open(path) as f:
            record = json.load(f)
        config = record["config"]
        if (model is None or config["model"] == model) and (seq_len is None or config["seq_len"] == seq_len):
            found.append(record)
    return found


def dev_by_epoch(record):
    return {h["epoch"]: h["dev_accuracy"] for h in record["history"]}


# ------------------------------------------------------------------------------ tables

@pytest.mark.parametrize("folder", ["results", os.path.join("results", "clip1.0"),
                                    os.path.join("results", "reach", "alarmwork_all_L1000_lr3e-5")])
def test_the_folders_readme_holds_its_current_accuracy_table(folder):
    table = table_lines(read(os.path.join(folder, "accuracy.md")))
    assert table and "\n".join(table) in read(os.path.join(folder, "README.md"))


def test_the_reach_readme_holds_the_current_reach_tables():
    # the tables only, each whole: the "Made by" line may change
    tables = [table_lines(block) for block in read("results/reach/reach.md").split("\n\n")]
    tables = [table for table in tables if table]
    assert tables
    for table in tables:
        assert "\n".join(table) in read("results/reach/README.md"), table[0][:60]


@pytest.mark.parametrize("results_file, readme", [
    ("results/training_speed.md", "results/README.md"),
    ("results/scalar_vs_vector.md", "results/README.md"),
    ("results/comparison.md", "results/clip1.0/README.md"),
    ("results/reach/sweep/sweep.md", "results/reach/sweep/README.md"),
    ("results/reach/sweep_integrator/sweep.md", "results/reach/sweep_integrator/README.md"),
    ("results/reach/sweep_integrator_L1000/sweep.md", "results/reach/sweep_integrator_L1000/README.md"),
    ("results/reach/gradient_paths.md", "results/reach/gradient_paths/README.md"),
    ("results/reach/divergence/divergence.md", "results/reach/divergence/README.md"),
    ("results/reach/remedy/remedy.md", "results/reach/remedy/README.md"),
    ("results/reach/remedy/L100/remedy.md", "results/reach/remedy/README.md"),
    ("results/reach/remedy/smaller_rate/remedy.md", "results/reach/remedy/README.md"),
    ("results/reach/marker_gradients/marker_gradients.md", "results/reach/marker_gradients/README.md"),
    ("results/reach/marker_gradients/alarmwork_all_L500/marker_gradients.md",
     "results/reach/marker_gradients/README.md"),
    ("results/reach/collapse/collapse.md", "results/reach/collapse/README.md"),
    ("results/reach/collapse/lr3e-5/collapse.md", "results/reach/collapse/README.md"),
    ("results/reach/collapse/clockwork_all/collapse.md", "results/reach/collapse/README.md"),
    ("results/reach/collapse/L2000_seeds100_epochs5_warmup500_from1_dynamics/collapse.md",
     "results/reach/collapse/README.md"),
    ("results/reach/collapse/L2000_seeds100_epochs8_warmup500_from4_dynamics/collapse.md",
     "results/reach/collapse/README.md"),
    ("results/reach/lstm_ablation/accuracy.md", "results/reach/lstm_ablation/README.md"),
])
def test_the_readme_shows_the_current_tables(results_file, readme):
    lines = table_lines(read(results_file))
    text = read(readme)
    assert lines
    for line in lines:
        assert line in text, f"{results_file}: {line[:60]}... is not in {readme}"


def test_the_main_readmes_one_seed_table_is_seed_0_of_the_saved_runs():
    names = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "AlarmworkNet": "alarmwork"}
    text = read("README.md")
    section = text[text.index("## The assignment's table"):text.index("## Findings")]
    first_table = section[section.index("\n|"):].split("\n\n")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table_lines(first_table)]
    header, body = rows[0], [row for row in rows[2:] if row[0] in names]
    lengths = [int(cell.split("=")[1]) for cell in header[1:]]
    assert len(body) == 3 and lengths == [10, 50, 70, 100]
    for row in body:
        for seq_len, cell in zip(lengths, row[1:]):
            (run,) = [r for r in records("results", names[row[0]], seq_len) if r["config"]["seed"] == 0]
            assert cell == f"{run['test_accuracy']:.1f}", (row[0], seq_len)


# ------------------------------------------------------------------------------ numbers in the write-ups

def test_clipping_rescales_about_half_of_the_first_epochs_batches_at_L100():
    runs = records("results/clip1.0", "alarmwork", 100)
    first = [r["history"][0]["clipped_fraction"] for r in runs]
    overall = [statistics.mean(h["clipped_fraction"] for h in r["history"] if "clipped_fraction" in h)
               for r in runs]
    assert len(runs) == 20
    assert (f"rescales {round(100 * min(first))}-{round(100 * max(first))} % of the first epoch's "
            f"batches (median {100 * statistics.median(first):.1f} %) and "
            f"{round(100 * min(overall))}-{round(100 * max(overall))} % of all"
            in prose("results/clip1.0/README.md"))


def test_plateau_gradient_norms_of_simple_rnn_and_lstm_are_as_written():
    norms = [h["grad_norm"] for model in ("simple_rnn", "lstm") for seq_len in (50, 70, 100)
             for r in records("results", model, seq_len) for h in r["history"] if "grad_norm" in h]
    assert len(norms) > 100
    assert f"epoch-mean norms of {min(norms):.3f}-{max(norms):.2f}" in prose("results/clip1.0/README.md")


def always_zero_accuracy(seq_len):
    """Test accuracy (%) of a network that always answers 0, on the data set the records used."""
    (options,) = {json.dumps(r["config"]["data"], sort_keys=True) for r in records("results", seq_len=seq_len)}
    options = json.loads(options)
    sizes = {split: options[f"n_{split}"] for split in data.SPLITS}
    targets = data.generate_data_set(seq_len, sizes, options["seed"])["t_test"]
    return 100.0 * np.mean(np.abs(targets) < data.SUCCESS_TOLERANCE)


def test_simple_rnn_and_lstm_sit_just_above_always_answering_zero():
    zero = {seq_len: always_zero_accuracy(seq_len) for seq_len in (50, 70, 100)}
    gaps = [r["test_accuracy"] - zero[seq_len] for model in ("simple_rnn", "lstm")
            for seq_len in zero for r in records("results", model, seq_len)]
    plateau = f"{zero[50]:.1f} / {zero[70]:.1f} / {zero[100]:.1f} %"
    assert len(gaps) == 30 and min(gaps) > 0
    assert f"always answering 0 scores {plateau} on the test sets" in prose("README.md").lower()
    assert f"within {max(gaps):.1f} points of always answering 0" in prose("README.md")
    results_readme = prose("results/README.md")
    assert f"always answering 0, which is {plateau} on the test sets" in results_readme
    assert f"all end {min(gaps):.1f}-{max(gaps):.1f} points above" in results_readme
    assert f"every run {min(gaps):.1f}-{max(gaps):.1f} points above always answering 0" in results_readme


def test_the_five_unsolved_alarmwork_runs_off_the_plateau_at_L100_are_as_written():
    runs = [r for r in records("results", "alarmwork", 100) if 50 <= r["test_accuracy"] < 95]
    assert len(runs) == 5
    text = prose("results/README.md")
    tests = [r["test_accuracy"] for r in runs]
    assert f"at {min(tests):.1f}-{max(tests):.1f} %" in text
    peaked, swung, at_best = [], [], []
    for r in runs:
        dev = dev_by_epoch(r)
        last = max(dev)
        peak = max(dev, key=lambda e: (dev[e], -e))
        if dev[last] >= dev[peak]:
            at_best.append(r)
        elif peak <= last - 5:
            peaked.append((r["config"]["seed"], peak, dev[peak], dev[peak] - dev[last]))
        else:
            swung.append(r)
    seeds = sorted(seed for seed, *_ in peaked)
    assert len(peaked) == 3 and len(swung) == 1 and len(at_best) == 1
    assert (f"Three (seeds {seeds[0]}, {seeds[1]}, {seeds[2]}) peaked at epochs "
            f"{min(p[1] for p in peaked)}-{max(p[1] for p in peaked)} with "
            f"{min(p[2] for p in peaked):.1f}-{max(p[2] for p in peaked):.1f} % dev and ended "
            f"{round(min(p[3] for p in peaked))}-{round(max(p[3] for p in peaked))} points lower") in text
    dev = dev_by_epoch(swung[0])
    last_five = [dev[e] for e in sorted(dev)[-5:]]
    assert (f"seed {swung[0]['config']['seed']} swung between {round(min(last_five))} and "
            f"{round(max(last_five))} % dev over its last five measurements") in text
    assert (f"only seed {at_best[0]['config']['seed']} ended at its best "
            f"({at_best[0]['dev_accuracy']:.1f} % dev)") in text


def lstm_L1000_runs():
    """Per seed, the finished record or else the checkpoint of the run in progress."""
    folder = os.path.join(ROOT, "results", "reach", "modern", "runs")
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "lstm_L1000_seed*.ckpt"))):
        state = torch.load(path, weights_only=True)
        runs[state["config"]["seed"]] = state
    for record in records("results/reach/modern", "lstm", 1000):
        runs[record["config"]["seed"]] = record
    return runs


def test_an_L1000_lstm_epoch_takes_what_the_reach_readme_says():
    per_epoch = [run["train_seconds"] / run["epochs_run"] for run in lstm_L1000_runs().values()]
    assert len(per_epoch) >= 2
    assert f"at {round(min(per_epoch))}-{round(max(per_epoch))} s an epoch" in prose("results/reach/README.md")


def test_seed_0_at_L1000_is_described_as_its_record_shows():
    (run,) = [r for r in records("results/reach/modern", "lstm", 1000) if r["config"]["seed"] == 0]
    dev = dev_by_epoch(run)
    left = min(e for e in dev if e >= 1 and dev[e] > 40)           # the first epoch off the plateau
    from_30 = [dev[e] for e in dev if e >= 30]
    text = prose("results/reach/README.md")
    assert (f"Seed 0 left the plateau at epoch {left} ({dev[left]:.1f} % dev), ranged "
            f"{round(min(from_30))}-{round(max(from_30))} % dev from epoch 30 on and ended at "
            f"{run['test_accuracy']:.1f} % test") in text


def test_the_35_unit_clockwork_inherits_the_50_unit_rate_without_a_sweep():
    swept = records("results/reach/sweep", "clockwork")
    narrow = records("results/reach/modern", "clockwork")
    assert swept and {r["config"]["hidden"] for r in swept} == {50}
    rates = {hidden: {r["config"]["lr"] for r in narrow if r["config"]["hidden"] == hidden}
             for hidden in (35, 50)}
    assert rates[35] == rates[50] and len(rates[35]) == 1
    (rate,) = rates[35]
    written = f"{rate:.0e}".replace("e-0", "e-")
    assert (f"Clockwork(1,2,4,8) P=35 has no sweep of its own and inherits the P = 50 network's "
            f"rate, {written}") in prose("results/reach/README.md")
    assert math.isclose(rate, 1e-3)

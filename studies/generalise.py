"""Trained networks tested on other lengths: trained at L, does a network still add at L/2 .. 10L?

    python -m studies.generalise              # RETRAINED's solved rungs, seeds 0-4, at L/2 .. 10L
    python -m studies.generalise --networks results/reach/sweep_recipes/L2000
                                  # another folder's solved networks: into generalise/sweep_recipes_L2000
    python -m studies.generalise --report     # generalise.md and .png again from generalise.csv
    python -m studies.generalise --quick      # the whole path in seconds, into a temporary folder

Every other result tests a network at the length it was trained on. This one tests each
trained network at L/2 (rounded down; none below 2), L, 2L, 5L and 10L.

The networks. RETRAINED names solved rungs of the reach ladders (results/reach/README.md),
trained again with seeds 0-4 into results/reach/generalise/runs/, since the ladders' records
kept no weights: their configurations are built as studies/reach.py builds its ladder's, so
each is the same run as the ladder's record, and grid.train_grid keeps every run's final
weights beside its record. Then every record with kept weights in the --networks folders
(default: the study's own) whose test accuracy is at least SOLVED (95 %) is tested, its
network back from its weights (experiment.networks.load_network); records without weights
are counted in one line and skipped. The study trains RETRAINED only into a folder it tests.

The test sets. At the trained L, the record's own test split (the data set its configuration
names, generated where missing), on which the network must give the record's test accuracy
exactly; the report says whether every one does. At every other length, a fresh test set of
--samples samples (1000), one per length and shared by every network, drawn by the data's
own generator (generate_data_adding_problem.adding_problem) from a stream no data set uses.
A data set of data seed S and length L draws its three splits from default_rng([S, L]), that
is, from the 32-bit words of S followed by those of L. The fresh set of length L' draws from
SeedSequence([2021, L'], spawn_key=(1,)), the second child of the data stream of L' (its
.spawn(2)[1]), which numpy feeds the words [2021, L', 0, 0, 1]. A data set's words end with
the highest word of its length, so the same words would need a length whose highest word is
1: L = 1, which the generator refuses, or L >= 2^32, a sample of 32 GiB. No data set of any
seed and length draws from this stream: numpy mixes a list of five words as given (a shorter
list counts as padded with zeros to four words, so [S, L] and [S, L, 0, 0] are one stream),
and only these five words give it; tests/test_generalise.py checks it too.

The measures, per network and tested length: accuracy as the project scores it
(training.accuracy: the share of samples with |y - t| < 0.1), the mean and the median |y - t|
(a non-finite output, of a state that overflowed, counts as an infinite error, and is counted);
for the clocked networks also the accuracy of the samples with both, one or none of their two
markers on a tick of the slowest layer (studies/marker_gradients.py), and the size of each
group. At 10L, the norm of the state the output layer reads (nn.RNN's and nn.LSTM's hidden
state h, not the LSTM's cell state; Layer_rec1's z_0 of a clocked network, read as
studies/collapse.py reads it) after steps L/2, L, 2L, 5L and 10L: the median and the largest over
the samples. Evaluation is in batches of at most STEPS_PER_BATCH sample-steps (at the trained
L, of training.eval_batch(L) samples, as the run measured its test accuracy), on one thread.

Writes generalise.csv (one row per network and tested length), generalise.md and
generalise.png into results/reach/generalise, or, for other --networks or --samples, into a
folder of their own in it (--samples 200: samples200); other --epochs, --train, --dev or
--test train other runs, and the study's files go to a folder of their own named after them
(epochs10), runs/ included.
"""
import argparse
import math
import os
import sys
from types import SimpleNamespace
from typing import NamedTuple

from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import torch
from tabulate import tabulate
from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import cluster, configs, grid, report, runs, stats, training, weights
from experiment.networks import load_network
from lib.atomic_files import atomic_write_text, check_writable
from lib.bptt import limit_blas_to_one_thread
from lib.cli_types import given_options, positive_int, refuse_repeats
from models import MODELS, AlarmworkRNN, ClockworkRNN, SimpleRNN
from studies.collapse import state_sequence
from studies.common import (add_study_arguments, changed_settings, parse_model, prepare_study,
                            results_folder, study_command, write_outputs)
from studies.marker_gradients import WHERE, accuracy_by_ticks, markers_on_tick, slow_period
from studies import reach

MODULE = "studies.generalise"
STEM = "generalise"
RETRAINED_CSV = "retrained.csv"     # the runs trained again beside their ladder records
REACH_DIR = reach.RESULTS_DIR
RESULTS_DIR = os.path.join(REACH_DIR, "generalise")
# (model as a study names it, recipe, trained lengths): solved rungs of the reach ladders
RETRAINED = (
    ("lstm", "integrator", (100, 500)),
    ("simple_rnn", "integrator_smaller_rate", (100, 500)),
    ("alarmwork", "integrator", (100, 200)),               # the assignment's wiring, "slower"
    ("alarmwork:all", "integrator", (500,)),
)
SEEDS = (0, 1, 2, 3, 4)
SOLVED = stats.SOLVED_ACCURACY                 # 95 %: a network tested has solved its own length
RATIOS = (0.5, 1, 2, 5, 10)                    # tested length / trained length
STATE_RATIOS = (0.5, 1, 2, 5, 10)              # the steps, in L, at which the state is read at 10L
SAMPLES = 1000
STEPS_PER_BATCH = 1_000_000                    # samples x steps a batch: 20 samples at L = 50,000
FRESH_DATA_SEED = data.DEFAULT_SEED
FRESH_SPAWN_KEY = 1                            # the second child of a length's data stream
# --quick: every rung at a short length, one seed, tiny data, a few epochs; no run solves its
# length then, so every network with kept weights is tested
QUICK = {"lengths": {100: 10, 200: 20, 500: 20}, "seeds": (0,), "epochs": 2, "train": 100,
         "dev": 50, "test": 50, "samples": 100, "solved": 0.0}
# the options that set the runs apart (a folder of their own, runs/ included), and their names
RUN_SETTINGS = {"epochs": "epochs", "train": "train", "dev": "dev", "test": "test"}


# ------------------------------------------------------------------------------ the networks

def retrained_configs(data_options, epochs=50, lengths=None, seeds=SEEDS):
    """The configuration of every run of RETRAINED, built as studies/reach.py builds its ladder's
    (reach.run_config); `data_options`: {L: generator options}; `lengths` maps each trained
    length to the one trained instead (--quick)."""
    ladder = SimpleNamespace(periods=list(configs.DEFAULT_PERIODS), epochs=epochs)
    lengths = lengths or {}
    return [reach.run_config(parse_model(model), lengths.get(L, L), seed,
                             data_options[lengths.get(L, L)], recipe, ladder)
            for model, recipe, trained in RETRAINED for L in trained for seed in seeds]


class Network(NamedTuple):
    """A trained network to test: its record's path, the record, and the network itself."""
    path: str
    record: dict
    model: torch.nn.Module


def runs_folder(folder):
    """The folder of records a --networks folder names: its runs/, or the folder itself."""
    inner = os.path.join(folder, "runs")
    return inner if os.path.isdir(inner) else folder


def saved_records(folder):
    """(path, record) of every whole record in a --networks folder, by file name; a corrupt one
    is said and left out."""
    return runs.records_in(runs_folder(folder))


def is_solved(record, threshold=SOLVED):
    """Whether a run's test accuracy is at least `threshold` (a diverged run has none)."""
    accuracy = record["test_accuracy"]
    return accuracy is not None and not math.isnan(accuracy) and accuracy >= threshold


def find_networks(folders, threshold=SOLVED):
    """(networks, records without weights): every record with kept weights in `folders` whose
    test accuracy is at least `threshold`, with its network loaded; a record whose weights file
    is missing or changed is said and left out."""
    networks, unweighted = [], []
    for folder in folders:
        for path, record in saved_records(folder):
            if "weights_file" not in record:
                unweighted.append(record)
            elif is_solved(record, threshold):
                try:
                    networks.append(Network(path, record, load_network(path)))
                except weights.WeightsError as error:
                    tqdm.write(f"warning: {error}; that network is left out")
    networks.sort(key=lambda n: network_order(n.record["config"]) + (n.path,))
    return networks, unweighted


def network_order(config):
    """Where a network goes in the tables: by model as models.MODELS lists them, the slower
    wiring first, then by recipe, trained length and seed."""
    return (list(MODELS).index(config["model"]), configs.setting(config, "wiring") != "slower",
            recipe_text(config), config["seq_len"], config["seed"])


def recipe_text(config):
    """The recipe a run followed, with the settings in which it differs from it: 'integrator',
    or 'integrator + warmup_steps 500, adam_eps 0.001, end_frozen True' for a candidate of
    studies/sweep_recipes.py."""
    name = configs.setting(config, "recipe")
    try:
        recipe = configs.training_settings({"model": config["model"], **configs.resolve_recipe(
            config["model"], config["seq_len"], name, wiring=configs.setting(config, "wiring"))})
    except configs.ConfigError:
        return name
    have = configs.training_settings(config)
    changed = [f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
               for key, value in have.items() if recipe.get(key) != value]
    return name + (" + " + ", ".join(changed) if changed else "")


# ------------------------------------------------------------------------------ test sets

def tested_lengths(seq_len):
    """[(ratio, tested length)]: L/2 rounded down (left out below 2), L, 2L, 5L, 10L."""
    tested = [(ratio, seq_len // 2 if ratio == 0.5 else ratio * seq_len) for ratio in RATIOS]
    return [(ratio, length) for ratio, length in tested if length >= 2]


def fresh_test_set(seq_len, samples=SAMPLES):
    """(x, t) of the fresh test set of a length: `samples` samples drawn by the data's own
    generator from the second child of the length's data stream, which no data set draws from
    (the rule in this module's text). The same on every call."""
    seed = np.random.SeedSequence([FRESH_DATA_SEED, seq_len], spawn_key=(FRESH_SPAWN_KEY,))
    return data.adding_problem(samples, seq_len, np.random.default_rng(seed))


def own_test_split(data_dir, options):
    """(x, t) of the test split of the data set `options` describe (a record's
    config["data"]), generated into `data_dir` where missing; data.DataError for a file that
    cannot be used."""
    seq_len = options["seq_len"]
    path = data.data_path(data_dir, seq_len)
    if not os.path.exists(path):
        sizes = {split: options[f"n_{split}"] for split in data.SPLITS}
        tqdm.write(f"{path} is missing: generating it ({data.describe(options)})")
        data.write_data_set(data_dir, seq_len, sizes, options["seed"])
    arrays = data.load_data_set(data_dir, seq_len, options)
    return arrays["x_test"], arrays["t_test"]


# ------------------------------------------------------------------------------ evaluation

def batch_size(seq_len, trained_length):
    """Samples a batch: at the trained length training.eval_batch's, as the run's own test;
    else at most STEPS_PER_BATCH sample-steps, so that 1000 samples at L = 50,000 fit in memory."""
    if trained_length:
        return training.eval_batch(seq_len)
    return max(1, min(training.EVAL_BATCH, STEPS_PER_BATCH // seq_len))


def outputs_and_states(model, x, steps):
    """(y (N, 1), {step: |state| after that 1-based step, (N,)}) of one batch: the state the
    output layer reads, nn.RNN's or nn.LSTM's h, or a clocked network's z_0
    (collapse.state_sequence, bit for bit its forward pass's); y is computed from it as the
    model's forward pass computes it."""
    with torch.no_grad():
        if isinstance(model, (AlarmworkRNN, ClockworkRNN)):
            states = state_sequence(model, x)                       # (L, N, P)
            y = torch.tanh(states[-1] @ model.W_out.T + model.b_out)
            at = {step: states[step - 1] for step in steps}
        else:
            layer = model.rnn if isinstance(model, SimpleRNN) else model.lstm
            states, _ = layer(x)                                    # (N, L, P)
            y = model.linear(states[:, -1])
            at = {step: states[:, step - 1] for step in steps}
    return y, {step: state.double().norm(dim=1) for step, state in at.items()}


def run_network(model, x, batch, period=None, steps=()):
    """(y (N,), markers on a slow tick (N,) or None, {step: state norms (N,)}) of the network on
    the samples x (NumPy, (N, L, 2)), `batch` samples at a time; the tick counts where the
    network has a clock (its slowest period), the state norms at `steps` where asked. A state
    that overflows is a result here (a non-finite output, counted), so NumPy's warnings of it in
    the bptt engine's forward pass are not printed."""
    ys, counts, norms = [], [], {step: [] for step in steps}
    with torch.no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for i in range(0, len(x), batch):
            x_batch = torch.from_numpy(x[i:i + batch])
            if steps:
                y, at = outputs_and_states(model, x_batch, steps)
                for step in steps:
                    norms[step].append(at[step])
            else:
                y = model(x_batch)
            ys.append(y.reshape(-1))
            if period is not None:
                counts.append(markers_on_tick(x_batch, period))
    return (torch.cat(ys), torch.cat(counts) if counts else None,
            {step: torch.cat(parts) for step, parts in norms.items()})


def measures(y, t, counts=None):
    """{accuracy, mean_abs_error, median_abs_error, nonfinite}, and with `counts` (markers on a
    slow tick per sample) the accuracy and size of each group: accuracy_both, n_both, ..."""
    t = torch.as_tensor(t)
    error = (y.double() - t.double().reshape(-1)).abs().numpy()
    error[~np.isfinite(error)] = np.inf                         # NaN: as wrong as can be
    row = {"accuracy": training.accuracy(y, t), "mean_abs_error": float(error.mean()),
           "median_abs_error": float(np.median(error)),
           "nonfinite": int((~torch.isfinite(y)).sum())}
    if counts is not None:
        split = accuracy_by_ticks(y, t, counts)
        for where in WHERE:
            row[f"accuracy_{where}"], row[f"n_{where}"] = split[f"dev_{where}"], split[f"n_{where}"]
    return row


def state_step(ratio, seq_len):
    """The 1-based step at which the state is read: ratio x L, rounded down, at least 1."""
    return max(1, int(ratio * seq_len))


def state_columns(norms, seq_len):
    """{state_median_at_<r>L, state_max_at_<r>L} of the norms after steps r * L."""
    row = {}
    for ratio in STATE_RATIOS:
        values = norms[state_step(ratio, seq_len)].numpy()
        row[f"state_median_at_{ratio:g}L"] = float(np.median(values))
        row[f"state_max_at_{ratio:g}L"] = float(values.max())
    return row


def describe_network(network, threshold):
    """The columns that name a network: its model, run and record."""
    config = network.record["config"]
    return {"model": report.model_label(config), "wiring": configs.setting(config, "wiring"),
            "recipe": recipe_text(config), "seed": config["seed"], "trained_L": config["seq_len"],
            "record_test_accuracy": network.record["test_accuracy"], "threshold": threshold,
            "record": network.path}


def evaluate(networks, data_dir, samples=SAMPLES, threshold=SOLVED):
    """One row per (network, tested length): tested_L, ratio, the test set's samples, the
    measures, and at 10L the state norms; each test set made once, the evaluations in its order."""
    todo = []                       # (test set, network's place, network, ratio, tested length)
    for place, network in enumerate(networks):
        config = network.record["config"]
        for ratio, seq_len in tested_lengths(config["seq_len"]):
            source = (("own", data.describe(config["data"])) if ratio == 1 else ("fresh", ""))
            todo.append(((seq_len, *source), place, network, ratio, seq_len))
    todo.sort(key=lambda job: job[:2])
    rows, current, test_set = [], None, None
    for key, place, network, ratio, seq_len in tqdm(todo, desc="evaluations", unit="test"):
        config = network.record["config"]
        if key != current:
            test_set = None                                          # free the last one first
            try:
                test_set = (own_test_split(data_dir, config["data"]) if ratio == 1
                            else fresh_test_set(seq_len, samples))
            except (data.DataError, OSError) as error:
                sys.exit(f"error: {error}")
            current = key
        x, t = test_set
        trained = config["seq_len"]
        steps = [state_step(r, trained) for r in STATE_RATIOS] if ratio == max(RATIOS) else []
        steps = sorted(set(steps) | {seq_len})          # and the last: what the readout reads
        period = slow_period(config)
        y, counts, norms = run_network(network.model, x, batch_size(seq_len, ratio == 1), period,
                                       steps)
        row = {"place": place, **describe_network(network, threshold), "tested_L": seq_len,
               "ratio": ratio,
               "samples": len(x), **measures(y, torch.from_numpy(t), counts)}
        row["final_state_median"] = float(np.median(norms[seq_len].numpy()))
        row["final_state_max"] = float(norms[seq_len].max())
        if ratio == max(RATIOS):
            row.update(state_columns(norms, trained))
        rows.append(row)
    rows = pd.DataFrame(rows).sort_values(["place", "ratio"], kind="stable")   # network by network
    return order_columns(rows.reset_index(drop=True))


def order_columns(rows):
    """The csv's columns in their order: the network, the test, the measures, the tick split,
    the state norms, the record."""
    first = ["model", "wiring", "recipe", "seed", "trained_L", "tested_L", "ratio", "samples",
             "accuracy", "mean_abs_error", "median_abs_error", "nonfinite", "record_test_accuracy",
             "threshold"]
    split = [f"{name}_{where}" for where in WHERE for name in ("accuracy", "n")]
    states = ["final_state_median", "final_state_max"] + [
        f"state_{what}_at_{r:g}L" for r in STATE_RATIOS for what in ("median", "max")]
    for column in split + states:
        if column not in rows:
            rows[column] = math.nan
    return rows[first + split + states + ["record"]]


# ------------------------------------------------------------------------------ report

def with_designs(rows):
    """The rows with their design, as the tables group the runs: 'LSTM [integrator]'."""
    rows = rows.copy()
    rows["design"] = [f"{m} [{r}]" for m, r in zip(rows["model"], rows["recipe"])]
    return rows


def groups(rows):
    """(design, trained L, ratio) groups, in the order of the rows' designs."""
    order = {name: i for i, name in enumerate(dict.fromkeys(rows["design"]))}
    keys = sorted(rows.groupby(["design", "trained_L", "ratio"]).groups,
                  key=lambda k: (order[k[0]], k[1], k[2]))
    return [(key, rows[(rows["design"] == key[0]) & (rows["trained_L"] == key[1])
                       & (rows["ratio"] == key[2])]) for key in keys]


def number(value, digits=1):
    """A percentage as the tables write it, '-' for none."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else f"{value:.{digits}f}"


def short(value):
    """A measure in three significant digits, '-' for none."""
    return "-" if math.isnan(value) else f"{value:.3g}"


def tested_text(of_group):
    lengths = sorted(set(of_group["tested_L"]))
    return ", ".join(map(str, lengths))


def ratio_text(ratio):
    return f"{ratio:g}"


def accuracy_table(rows):
    """One line per design, trained L and ratio: runs, median accuracy, runs solved there."""
    lines = []
    for (name, trained, ratio), of_group in groups(rows):
        lines.append({
            "design": name, "trained L": str(trained), "tested / trained": ratio_text(ratio),
            "tested L": tested_text(of_group), "runs": str(len(of_group)),
            "median accuracy %": number(of_group["accuracy"].median()),
            f"runs >= {SOLVED:g} %": str(int((of_group["accuracy"] >= SOLVED).sum())),
            "median |y - t| (median of runs)": short(of_group["median_abs_error"].median()),
            "non-finite outputs": str(int(of_group["nonfinite"].sum()))})
    return lines


def group_size(values):
    """The sizes of one tick group over the runs: '247', or a range '234-262'."""
    sizes = sorted(set(int(v) for v in values))
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"


def tick_table(rows):
    """The clocked designs: median accuracy of the samples with both, one or none of their
    markers on a slow tick, and each group's size."""
    lines = []
    for (name, trained, ratio), of_group in groups(rows):
        if of_group["n_both"].isna().all():
            continue
        line = {"design": name, "trained L": str(trained), "tested / trained": ratio_text(ratio),
                "runs": str(len(of_group))}
        for where in WHERE:
            line[f"{where} on a tick: median % (samples)"] = (
                f"{number(of_group[f'accuracy_{where}'].median())} "
                f"({group_size(of_group[f'n_{where}'])})")
        lines.append(line)
    return lines


def state_table(rows):
    """Per design and trained L: the norm of the state the readout reads at the last step of the
    samples of each tested length (the median of the runs' medians); and on the samples of
    length 10L, that norm after L/2, L, 2L, 5L, 10L steps, the median of the runs' medians and
    the largest of their largest."""
    lines = []
    for (name, trained, ratio), of_group in groups(rows):
        if ratio != max(RATIOS):
            continue
        of_line = rows[(rows["design"] == name) & (rows["trained_L"] == trained)]
        line = {"design": name, "trained L": str(trained), "runs": str(len(of_group))}
        line["median |state| at the last step of samples of length " + " / ".join(
            ratio_text(r) + "L" for r in RATIOS)] = " / ".join(
            short(of_line.loc[of_line["ratio"] == r, "final_state_median"].median()) for r in RATIOS)
        line["median |state| after L/2 / L / 2L / 5L / 10L"] = " / ".join(
            short(of_group[f"state_median_at_{r:g}L"].median()) for r in STATE_RATIOS)
        line["largest |state| after L/2 / L / 2L / 5L / 10L"] = " / ".join(
            short(of_group[f"state_max_at_{r:g}L"].max()) for r in STATE_RATIOS)
        lines.append(line)
    return lines


def own_check(rows):
    """Whether, at the trained L, every network gave its record's test accuracy."""
    own = rows[rows["ratio"] == 1]
    same = own["accuracy"] == own["record_test_accuracy"]
    text = (f"At the trained L, on its record's own test split, {int(same.sum())} of {len(own)} "
            f"networks give their record's test accuracy exactly")
    if same.all():
        return text + "."
    differ = "; ".join(f"{r.model} L={r.trained_L} seed={r.seed}: {r.accuracy:g} % here, "
                       f"{r.record_test_accuracy:g} % in {r.record}"
                       for r in own[~same].itertuples())
    return text + f"; not: {differ}."


def table(lines):
    """Rows of text as a GitHub Markdown table."""
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


def report_text(rows, command, retrained=None):
    """generalise.md, from the rows (and the reproduction rows, where the study trained)."""
    rows = with_designs(rows)
    threshold = rows["threshold"].min()
    samples = sorted(set(rows.loc[rows["ratio"] != 1, "samples"]))
    text = (f"# Trained at L, tested at other lengths\n\nMade by: `{command}`\n\n"
            f"{rows[['record']].drop_duplicates().shape[0]} trained networks, each with kept "
            f"weights and a test accuracy of at least {threshold:g} % at the length L it was "
            f"trained on"
            + (f" (lowered from {SOLVED:g} % for a check of the whole path: none of its runs "
               f"solves its length)" if threshold < SOLVED else "")
            + f", tested at L/2 (rounded down), L, 2L, 5L and 10L. At L the test set is the "
            f"record's own test split; at the other lengths a fresh test set of "
            f"{', '.join(map(str, samples))} samples per length, shared by every network and "
            f"drawn from a stream no data set uses (studies/generalise.py says how). Accuracy: "
            f"the share of samples with |y - t| < {data.SUCCESS_TOLERANCE:g}; a network solves "
            f"a length at >= {SOLVED:g} %. A design is a network under a recipe; its runs are "
            f"its seeds. Per network and length: generalise.csv.\n\n"
            f"{own_check(rows)}\n\n{table(accuracy_table(rows))}\n")
    ticks = tick_table(rows)
    if ticks:
        text += (f"\nThe clocked networks, split by how many of a sample's two markers fall on a "
                 f"tick of the slowest layer (0-based step m with m % T == 0, T its period: "
                 f"AlarmworkNet's 1-based odd steps; studies/marker_gradients.py): the median "
                 f"accuracy of the runs in each group, and the group's size:\n\n"
                 f"{table(ticks)}\n")
    states = state_table(rows)
    if states:
        text += (f"\nThe state the output layer reads (nn.RNN's and nn.LSTM's h, not the LSTM's "
                 f"cell state; a clocked network's Layer_rec1 state z_0): first its norm at the "
                 f"last step of the samples of each tested length, where the readout reads it "
                 f"(the median over the samples, then over the runs); then, on the samples of "
                 f"length 10L, its norm after L/2, L, 2L, 5L and 10L steps, per run the median "
                 f"and the largest over the samples, here the median of the runs' medians and "
                 f"the largest of their largest (inf: float32 overflowed). The markers of a "
                 f"sample of length 10L fall in its steps [0, 5L) and [5L, 10L), so most of "
                 f"those samples have met no marker yet after L or 2L steps:\n\n"
                 f"{table(states)}\n")
    if retrained is not None:
        text += reproduction_text(retrained)
    return text


def plot(rows, path):
    """Accuracy against tested L / trained L (log scale): a dot per run, a line per design and
    trained L through the medians."""
    rows = with_designs(rows)
    figure = Figure(figsize=(7.6, 4.8))
    axes = figure.subplots()
    names = list(dict.fromkeys(rows["design"]))
    styles = ("-", "--", ":", "-.")
    lines = list(dict.fromkeys(zip(rows["design"], rows["trained_L"])))
    for i, (name, trained) in enumerate(lines):
        of_line = rows[(rows["design"] == name) & (rows["trained_L"] == trained)]
        color = f"C{names.index(name)}"
        lengths_of_design = sorted(set(rows.loc[rows["design"] == name, "trained_L"]))
        style = styles[lengths_of_design.index(trained) % len(styles)]
        shift = 1.0 + 0.03 * (i - (len(lines) - 1) / 2)            # side by side on the log axis
        axes.scatter(of_line["ratio"] * shift, of_line["accuracy"], s=10, color=color, alpha=0.5)
        medians = of_line.groupby("ratio")["accuracy"].median()
        axes.plot(medians.index * shift, medians.values, color=color, linestyle=style,
                  label=f"{name}, L = {trained}")
    report.plot_solved_threshold(axes)
    axes.set_xscale("log")
    axes.set_xticks(list(RATIOS), [ratio_text(r) for r in RATIOS])
    axes.minorticks_off()
    axes.set_xlabel("tested length / trained length L (log scale)")
    axes.set_ylabel("test accuracy (%)\ndots: runs, line: median")
    axes.set_ylim(-3, 102)
    axes.grid(alpha=0.3)
    axes.set_title("Trained at L, tested at L/2 .. 10L", fontsize=10)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    report.save_figure(figure, path, tight=True)         # the legend beside the axes


def write_report(rows, results_dir, command):
    """generalise.md and generalise.png rebuilt from the rows, and from retrained.csv where the
    study trained (--report); returns the text."""
    path = os.path.join(results_dir, RETRAINED_CSV)
    text = report_text(rows, command, pd.read_csv(path) if os.path.exists(path) else None)
    atomic_write_text(os.path.join(results_dir, f"{STEM}.md"), text)
    plot(rows, os.path.join(results_dir, f"{STEM}.png"))
    return text


# ------------------------------------------------------------------------------ command line

def folder_name(folder):
    """A --networks folder as a folder name: its path in results/reach with '_' for '/'
    (results/reach/sweep_recipes/L2000: sweep_recipes_L2000), else its last name."""
    path = os.path.normpath(folder)
    if os.path.basename(path) == "runs":
        path = os.path.dirname(path)
    inside = os.path.relpath(os.path.abspath(path), os.path.abspath(REACH_DIR))
    return (inside if not inside.startswith("..") else os.path.basename(path)).replace(os.sep, "_")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Test trained networks at other lengths than their own: L/2, L, 2L, 5L, "
                    "10L. Trains the solved rungs of the reach ladders again, seeds "
                    f"{SEEDS[0]}-{SEEDS[-1]}, keeping their weights ("
                    + "; ".join(f"{m} {r} at L = {', '.join(map(str, Ls))}"
                                for m, r, Ls in RETRAINED)
                    + f"), then tests every network with kept weights and a test accuracy of at "
                      f"least {SOLVED:g} % in the --networks folders.")
    parser.add_argument("--networks", nargs="+", metavar="FOLDER",
                        help="folders of the networks to test, each a results folder (its runs/) "
                             "or a runs/ folder; the study trains its own runs where its folder "
                             f"is among them (default: the study's folder, {RESULTS_DIR})")
    parser.add_argument("--samples", type=positive_int, default=SAMPLES,
                        help="samples of each fresh test set (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the whole path in seconds: every rung trained at L = "
                             f"{' or '.join(map(str, sorted(set(QUICK['lengths'].values()))))}, "
                             f"seed 0, {QUICK['train']} training samples, {QUICK['epochs']} "
                             f"epochs, {QUICK['samples']} samples a fresh test set, every "
                             f"network tested whatever its accuracy, into a temporary folder")
    add_study_arguments(parser, None, f"runs/ and {STEM}.{{csv,md,png}} (default: {RESULTS_DIR}; "
                                      f"for other settings a folder in it named after them; with "
                                      f"--quick a temporary folder)")
    options = parser.parse_args(argv)
    options.given = given_options(parser, argv)
    if options.networks:
        refuse_repeats(parser, options, ("networks",))
    if options.quick:                     # what the command line does not say, --quick chooses
        for name in ("epochs", "train", "dev", "test", "samples"):
            if name not in options.given:
                setattr(options, name, QUICK[name])
        if "jobs" not in options.given:
            options.jobs = 1              # in this process: no pool to start
    options.runs_dir = results_folder(options, RESULTS_DIR,
                                      changed_settings(parser, options, RUN_SETTINGS), STEM)
    if options.quick and "data_dir" not in options.given:
        options.data_dir = os.path.join(options.runs_dir, "data")
    own = os.path.normpath(options.runs_dir)
    options.networks = options.networks or [options.runs_dir]
    options.trains = not options.report and own in {os.path.normpath(f) for f in options.networks}
    settings = []
    if {os.path.normpath(f) for f in options.networks} != {own}:
        settings.append("-".join(folder_name(f) for f in options.networks))
    if options.samples != SAMPLES and not options.quick:
        settings.append(f"samples{options.samples}")
    options.results_dir = (os.path.join(options.runs_dir, "_".join(settings))
                           if settings and options.results_dir is None and not options.quick
                           else options.runs_dir)
    options.threshold = QUICK["solved"] if options.quick else SOLVED
    if not options.report:
        for folder in options.networks:
            if not os.path.isdir(folder) and os.path.normpath(folder) != own:
                parser.error(f"--networks {folder}: no such folder")
    return options


def read_rows(results_dir):
    """The rows of generalise.csv in `results_dir`; one line and exit where there is none."""
    path = os.path.join(results_dir, f"{STEM}.csv")
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        sys.exit(f"error: {path}: cannot be read ({getattr(error, 'strerror', None) or error}); "
                 "run the study without --report first")


def train_retrained(options):
    """Train the runs of RETRAINED that are not saved in the study's folder, weights kept;
    returns reproduction_rows of them."""
    lengths = QUICK["lengths"] if options.quick else {}
    trained = sorted({lengths.get(L, L) for _, _, Ls in RETRAINED for L in Ls})
    data_options = prepare_study(options, trained, [options.runs_dir])
    todo = retrained_configs(data_options, options.epochs, lengths,
                             QUICK["seeds"] if options.quick else SEEDS)
    records = grid.train_grid(todo, options.data_dir, options.runs_dir,
                              cluster.executor_from(options), options.force)[0]
    return reproduction_rows(todo, records)


def reproduction_rows(todo, records):
    """One row per run trained again: its outcome beside its ladder record's (found in the
    ladder's folder, results/reach/<recipe>), and the CPU each was trained on. A run trained
    again on another kind of CPU may differ: float sums differ between kernels."""
    rows = []
    for config, record in zip(todo, records):
        ladder = runs.find_record(os.path.join(REACH_DIR, configs.setting(config, "recipe")), config)
        row = {"model": report.model_label(config), "recipe": configs.setting(config, "recipe"),
               "L": config["seq_len"], "seed": config["seed"]}
        for name, of in (("ladder", ladder), ("again", record)):
            row[f"{name}_test_accuracy"] = of["test_accuracy"] if of else math.nan
            row[f"{name}_epochs"] = of["epochs_run"] if of else math.nan
            row[f"{name}_cpu"] = (f"{of.get('cpu', 'not said')}, "
                                  f"{of.get('torch_cpu_capability', 'not said')}" if of else "")
        row["same"] = bool(ladder) and (ladder["test_accuracy"], ladder["epochs_run"]) == (
            record["test_accuracy"], record["epochs_run"])
        rows.append(row)
    return pd.DataFrame(rows)


def reproduction_text(rows):
    """The runs trained again against their ladder records, as Markdown."""
    rows = rows[rows["ladder_test_accuracy"].notna()]      # those with a ladder record
    if rows.empty:
        return ""
    same_cpu = rows["ladder_cpu"] == rows["again_cpu"]
    lines = [{"model": r.model, "recipe": r.recipe, "L": str(r.L), "seed": str(r.seed),
              "ladder: test % (epochs)": f"{r.ladder_test_accuracy:g} ({r.ladder_epochs:g})",
              "again: test % (epochs)": f"{r.again_test_accuracy:g} ({r.again_epochs:g})",
              "same": "yes" if r.same else "no", "ladder's CPU": r.ladder_cpu}
             for r in rows.itertuples()]
    same = rows["same"]
    here = ", ".join(sorted(set(rows["again_cpu"])))
    return (f"\nThe runs trained again against their ladder records: {int(same.sum())} of "
            f"{len(rows)} give the record's test accuracy after the record's epochs. Trained "
            f"again on {here} (torch's capability included): of the runs whose record was made "
            f"on the same kind, {int(same[same_cpu].sum())} of {int(same_cpu.sum())} match; of "
            f"those made on another kind, {int(same[~same_cpu].sum())} of "
            f"{int((~same_cpu).sum())}. Float sums differ between CPU kernels, so a run trained "
            f"on another kind may follow another path:\n\n{table(lines)}\n")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    command = study_command(MODULE, argv)
    if options.report:
        text = write_report(read_rows(options.results_dir), options.results_dir, command)
        print(text)
        return
    check_writable(options.results_dir)
    retrained = train_retrained(options) if options.trains else None
    networks, unweighted = find_networks(options.networks, options.threshold)
    if unweighted:
        solved = sum(is_solved(r) for r in unweighted)
        print(f"skipped {len(unweighted)} record(s) that kept no weights (trained before the "
              f"weights were kept), {solved} of them solved")
    if not networks:
        sys.exit(f"error: no network with kept weights and a test accuracy of at least "
                 f"{options.threshold:g} % in {', '.join(options.networks)}")
    if options.quick:
        print(f"--quick: no run solves its length in {options.epochs} epochs, so every network "
              f"with kept weights is tested (the solved threshold lowered from {SOLVED:g} % to "
              f"{options.threshold:g} %)")
    torch.set_num_threads(1)                # as the runs measured their test accuracy
    limit_blas_to_one_thread()
    rows = evaluate(networks, options.data_dir, options.samples, options.threshold)
    if retrained is not None:
        atomic_write_text(os.path.join(options.results_dir, RETRAINED_CSV),
                          retrained.to_csv(index=False))
    write_outputs(options.results_dir, STEM, rows, report_text(rows, command, retrained),
                  lambda path: plot(rows, path))


if __name__ == "__main__":
    main()

"""What a network has learned to carry: the output's gradient at each marker, epoch by epoch.

    python -m studies.marker_gradients             # SimpleRNN and AlarmworkNet, integrator recipe, L = 500, seed 0
    python -m studies.marker_gradients --models clockwork --length 100
                                   # Clockwork(1,2,4,8), where its ladder stopped: into clockwork_L100/
    python -m studies.marker_gradients --quick     # the whole path in seconds, into a temporary folder

A network that solves the adding problem answers y = v[m1] + v[m2], so the gradient of its
output with respect to the value channel is 1 at both marked steps and 0 everywhere else.
This trains runs of the reach ladder again (the same configuration and data; the dev accuracy
of every epoch must equal the saved record's, and the report says whether it does) and, at
the start of every epoch and after the last, measures on the dev samples the mean
|dy/dx_value| at the first marker (m1, in the first half, 250-499 steps from the end at
L = 500), at the second (m2, in the second half) and at the unmarked steps. It shows which
of the two values a network carries, and from which epoch on. The measurement uses
torch.autograd.grad with respect to the input only, so the run's own gradients are not
touched.

A clocked layer reads the input only on the steps it fires. For the clocked networks
(AlarmworkNet, Clockwork, either wiring) each marker is also placed against the slowest
layer's period T: on its tick when its 0-based step m has m % T == 0 (AlarmworkNet: the
1-based odd steps, at which Layer_rec2 fires). The study then splits the gradient at each
marker by whether it falls on a tick, and the dev accuracy (on every dev sample, scored as
the run scores it) by how many of a sample's two markers do: both, one or none. Writes
marker_gradients.csv (every epoch), .md and .png into results/reach/marker_gradients, or for
other settings into a folder of their own in it, named after the models, the length and the
other settings changed (--models alarmwork:all: alarmwork_all_L500). The runs train one after
another in this process, measured between epochs here, so the command has no --jobs or
--scheduler.
"""
import argparse
import math
import os
import sys

from matplotlib.figure import Figure
import pandas as pd
import torch
from tabulate import tabulate

import generate_data_adding_problem as data
from experiment import configs, recipes, report, training
from experiment.runs import find_record
from lib.atomic_files import check_writable
from lib.cli_types import non_negative_int, positive_int, refuse_repeats, sequence_length
from studies.common import (ModelSpec, changed_settings, one_length_data, parse_model, results_folder,
                            study_command, write_outputs)
from studies.divergence import reproduces

RESULTS_DIR = os.path.join("results", "reach", "marker_gradients")
LADDER_DIR = os.path.join("results", "reach")
DEFAULT_MODELS = (ModelSpec("simple_rnn"), ModelSpec("alarmwork"))
SHOWN_EPOCHS = (0, 1, 2, 5, 10, 20, 30, 40, 50)   # the report's split table; every epoch: the csv
WHERE = ("both", "one", "none")          # how many of a sample's two markers fall on a slow tick
# the options that set a run's files apart, and their names in its folder: the models and the
# length name every folder of other settings (alarmwork_L500, clockwork_L100)
SETTINGS = {"models": "", "recipe": "", "length": "L", "seed": "seed", "probe": "probe"}


def marker_positions(x):
    """(m1, m2): each sample's 0-based marked steps, m1 in the first half, m2 in the second."""
    marked = x[:, :, 1] > 0.5
    first = marked.float().argmax(dim=1)
    second = x.shape[1] - 1 - marked.flip(1).float().argmax(dim=1)
    return first, second


def slow_period(config):
    """The period T of a clocked network's slowest layer (AlarmworkNet: 2); None for the others."""
    if config["model"] == "alarmwork":
        return 2
    if config["model"] == "clockwork":
        return max(config["periods"])
    return None


def on_slow_tick(steps, period):
    """Whether each 0-based step is a tick of the slowest layer: step % T == 0 (SPEC.md,
    section 2: AlarmworkNet's Layer_rec2 fires at the 1-based odd steps)."""
    return steps % period == 0


def input_gradient(model, x):
    """|dy_n / dx_value[n, l]| for every sample n and step l, and the predictions y."""
    x = x.clone().requires_grad_()
    y = model(x)
    (gradient,) = torch.autograd.grad(y.sum(), x)         # samples are independent
    return gradient[:, :, 0].abs(), y.detach()


def marker_gradients(model, x):
    """(mean |dy/dx_value| at m1, at m2, at the unmarked steps) over the samples of x."""
    gradient, _ = input_gradient(model, x)
    first, second = marker_positions(x)
    rows = torch.arange(len(x))
    unmarked = gradient[~(x[:, :, 1] > 0.5)].mean()
    return float(gradient[rows, first].mean()), float(gradient[rows, second].mean()), float(unmarked)


def mean_or_nan(values):
    return float(values.mean()) if len(values) else math.nan


def tick_split(gradient, x, period):
    """The gradient at each marker split by whether the marker falls on a slow tick: {m1_on,
    m1_off, m2_on, m2_off, on, off (both markers pooled)} and the number of samples of each."""
    first, second = marker_positions(x)
    rows = torch.arange(len(x))
    split = {}
    pooled = {True: [], False: []}
    for name, steps in (("m1", first), ("m2", second)):
        at_marker, on = gradient[rows, steps], on_slow_tick(steps, period)
        for flag, suffix in ((True, "on"), (False, "off")):
            split[f"{name}_{suffix}"] = mean_or_nan(at_marker[on == flag])
            split[f"n_{name}_{suffix}"] = int((on == flag).sum())
            pooled[flag].append(at_marker[on == flag])
    split["on"], split["off"] = (mean_or_nan(torch.cat(pooled[flag])) for flag in (True, False))
    return split


def markers_on_tick(x, period):
    """How many of each sample's two markers fall on a tick of the slowest layer (0, 1 or 2)."""
    first, second = marker_positions(x)
    return on_slow_tick(first, period).long() + on_slow_tick(second, period).long()


def accuracy_by_ticks(y, t, counts):
    """{dev_both, dev_one, dev_none: accuracy (%) of the samples with 2, 1, 0 markers on a slow
    tick; n_both, n_one, n_none: their numbers}; NaN accuracy where a group is empty."""
    hits = (y.reshape(-1) - t.reshape(-1)).abs() < data.SUCCESS_TOLERANCE
    split = {}
    for where, count in zip(WHERE, (2, 1, 0)):
        group = counts == count
        split[f"n_{where}"] = int(group.sum())
        split[f"dev_{where}"] = (100.0 * int(hits[group].sum()) / int(group.sum()) if group.any()
                                 else math.nan)
    return split


class EpochProbe:
    """Called by the training step after every backward pass; measures at each epoch's start
    (the first batch's backward pass comes before the optimizer's step, so the weights are those
    the epoch's dev accuracy was measured with)."""

    def __init__(self, probe_x, batches_per_epoch, dev=None, period=None):
        self.probe_x, self.batches_per_epoch = probe_x, batches_per_epoch
        self.dev, self.period = dev, period          # dev: (x_dev, t_dev), for the accuracy split
        self.batches, self.rows, self.model = 0, [], None

    def measure(self, model, epoch):
        gradient, _ = input_gradient(model, self.probe_x)
        first, second = marker_positions(self.probe_x)
        rows = torch.arange(len(self.probe_x))
        row = {"epoch": epoch, "first_marker": float(gradient[rows, first].mean()),
               "second_marker": float(gradient[rows, second].mean()),
               "unmarked": float(gradient[~(self.probe_x[:, :, 1] > 0.5)].mean())}
        if self.dev is not None:
            x_dev, t_dev = self.dev
            y_dev = training.predict(model, x_dev)   # what the dev accuracy scores
            row["dev_accuracy_measured"] = training.accuracy(y_dev, t_dev)
            if self.period is not None:
                row.update(tick_split(gradient, self.probe_x, self.period))
                row.update(accuracy_by_ticks(y_dev, t_dev, markers_on_tick(x_dev, self.period)))
        self.rows.append(row)

    def __call__(self, model, x, loss):
        self.model = model
        if self.batches % self.batches_per_epoch == 0:
            self.measure(model, self.batches // self.batches_per_epoch)
        self.batches += 1


def probed_run(config, arrays, probe_samples=None):
    """Train `config` as the ladder does, measured at every epoch's start and after the last
    (the gradients on the first `probe_samples` dev samples, all where None; the accuracy split
    on every dev sample); (record, one row per measurement with the epoch's dev accuracy)."""
    probe_x = torch.from_numpy(arrays["x_dev"][:probe_samples])
    dev = (torch.from_numpy(arrays["x_dev"]), torch.from_numpy(arrays["t_dev"]))
    batches = -(-len(arrays["x_train"]) // config["batch_size"])
    probe = EpochProbe(probe_x, batches, dev, slow_period(config))
    record = training.train_run(config, arrays, watch=probe)
    if probe.model is not None:
        probe.measure(probe.model, record["epochs_run"])
    rows = pd.DataFrame(probe.rows)
    rows["dev_accuracy"] = [h["dev_accuracy"] for h in record["history"]][:len(rows)]
    rows.insert(0, "model", report.model_label(config))
    return record, rows


def clocked(run):
    """Whether a model's rows hold the tick split (a clocked network)."""
    return "on" in run and run["on"].notna().any()


def plot(rows, seq_len, path):
    labels = list(dict.fromkeys(rows["model"]))
    figure = Figure(figsize=(4.4 * len(labels), 8.4))
    grid = figure.subplots(3, len(labels), squeeze=False, sharex="col")
    for column, label in enumerate(labels):
        run = rows[rows["model"] == label]
        ax, split_ax, dev_ax = grid[:, column]
        ax.semilogy(run["epoch"], run["first_marker"], marker=".", label="|dy/dx_value| at m1")
        ax.semilogy(run["epoch"], run["second_marker"], marker=".", label="at m2")
        ax.semilogy(run["epoch"], run["unmarked"], marker=".", label="at unmarked steps")
        ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        ax.axhline(0.5, color="grey", lw=0.6, ls="--")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(run["epoch"], run["dev_accuracy"], color="k", lw=0.8, ls="--", label="dev accuracy")
        twin.set_ylim(0, 102)
        twin.set_ylabel("dev accuracy (%)", fontsize=8)
        if not clocked(run):
            for empty in (split_ax, dev_ax):
                empty.text(0.5, 0.5, "no clock: no tick to split by", ha="center", va="center",
                           transform=empty.transAxes)
                empty.set_yticks([])
            dev_ax.set_xlabel("epoch")
            continue
        for name, style in (("m1", "-"), ("m2", "--")):
            split_ax.semilogy(run["epoch"], run[f"{name}_on"], color="C0", ls=style, marker=".",
                              label=f"at {name}, on a slow tick")
            split_ax.semilogy(run["epoch"], run[f"{name}_off"], color="C3", ls=style, marker=".",
                              label=f"at {name}, off it")
        split_ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        split_ax.grid(alpha=0.3)
        last = run.iloc[-1]
        for i, where in enumerate(WHERE):
            dev_ax.plot(run["epoch"], run[f"dev_{where}"], color=f"C{i + 4}", marker=".",
                        label=f"{where} on a slow tick (n = {int(last[f'n_{where}'])})")
        dev_ax.set_ylim(0, 102)
        dev_ax.set_xlabel("epoch")
        dev_ax.grid(alpha=0.3)
        dev_ax.legend(fontsize=7, title="markers", title_fontsize=7)
        split_ax.legend(fontsize=7)
    grid[0, 0].set_ylabel("mean |dy / dx_value|")
    grid[0, 0].legend(fontsize=7, loc="center right")
    grid[1, 0].set_ylabel("mean |dy / dx_value| at the markers,\nby the marker's phase")
    grid[2, 0].set_ylabel("dev accuracy (%), by where\nthe two markers fall")
    figure.suptitle(f"L = {seq_len}: the output's gradient at each marker, epoch by epoch "
                    "(1 at both: the task solved; 0.5 at both: half the sum), and split by the "
                    "slowest layer's tick", fontsize=9)
    figure.tight_layout()
    report.save_figure(figure, path)


def summary(rows):
    """Per model: the first epoch at which each marker's gradient passed 0.5, and the last values."""
    lines = []
    for label, run in rows.groupby("model", sort=False):
        line = {"model": label, "epochs": int(run["epoch"].max())}
        for column, name in (("first_marker", "m1"), ("second_marker", "m2")):
            passed = run[run[column] > 0.5]
            line[f"{name} > 0.5 from epoch"] = str(int(passed["epoch"].iloc[0])) if len(passed) else "never"
        last = run.iloc[-1]
        line.update({"at the end: m1": f"{last['first_marker']:.2f}", "m2": f"{last['second_marker']:.2f}",
                     "unmarked": f"{last['unmarked']:.3f}", "dev %": f"{last['dev_accuracy']:.1f}"})
        lines.append(line)
    return lines


def pair(a, b):
    return " / ".join("-" if math.isnan(v) else f"{v:.2g}" for v in (a, b))


def split_summary(rows, shown=SHOWN_EPOCHS):
    """Per clocked model, at the epochs `shown` and the last: the gradient at m1 / m2 on a slow
    tick and off it, and the dev accuracy of the samples with both, one or no marker on one."""
    lines = []
    for label, run in rows.groupby("model", sort=False):
        if not clocked(run):
            continue
        last = int(run["epoch"].max())
        for _, row in run[run["epoch"].isin(set(shown) | {last})].iterrows():
            lines.append({
                "model": label, "epoch": str(int(row["epoch"])), "dev %": f"{row['dev_accuracy']:.1f}",
                "m1 / m2 on a slow tick": pair(row["m1_on"], row["m2_on"]),
                "off it": pair(row["m1_off"], row["m2_off"]),
                **{f"dev %: {where}" + (" on a tick" if where == "both" else ""):
                   "-" if math.isnan(row[f"dev_{where}"]) else f"{row[f'dev_{where}']:.1f}"
                   for where in WHERE}})
    return lines


def split_notes(rows):
    """One line per clocked model: its period, and how many samples each group holds."""
    notes = []
    for label, run in rows.groupby("model", sort=False):
        if not clocked(run):
            continue
        last = run.iloc[-1]
        notes.append(f"- {label}: markers on a slow tick at m1 in {int(last['n_m1_on'])} of "
                     f"{int(last['n_m1_on'] + last['n_m1_off'])} samples measured, at m2 in "
                     f"{int(last['n_m2_on'])}; of the dev samples, both markers on a tick in "
                     f"{int(last['n_both'])}, one in {int(last['n_one'])}, none in {int(last['n_none'])}")
    return notes


def scored_as_the_run(rows):
    """Whether the probe's own dev accuracy equals the run's at every measured epoch."""
    if "dev_accuracy_measured" not in rows:
        return "not measured"
    same = (rows["dev_accuracy_measured"] == rows["dev_accuracy"]).all()
    return "yes, at every epoch" if same else "NO"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train runs of the reach ladder again and measure, epoch by epoch, the "
                    "output's gradient at the first and second marker: which value each "
                    "network carries, and from when; for the clocked networks split by whether "
                    "each marker falls on a tick of the slowest layer, with the dev accuracy "
                    "split by how many of a sample's markers do.")
    parser.add_argument("--models", nargs="+", type=parse_model, metavar="MODEL[:P][:WIRING]",
                        default=list(DEFAULT_MODELS),
                        help="models, e.g. alarmwork, clockwork, alarmwork:all (SPEC.md, section 7) "
                             "(default: simple_rnn alarmwork)")
    parser.add_argument("--recipe", choices=list(recipes.RECIPES), default="integrator",
                        help="the ladder's recipe (default: %(default)s)")
    parser.add_argument("--length", type=sequence_length, default=500, help="L (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the run's seed (default: %(default)s)")
    parser.add_argument("--probe", type=positive_int, default=None,
                        help="dev samples the gradients are measured on (default: all; the "
                             "accuracy split always uses all)")
    parser.add_argument("--data-dir", default="data", help="folder of the .npz files (default: %(default)s)")
    parser.add_argument("--results-dir",
                        help=f"folder of marker_gradients.{{csv,md,png}} (default: {RESULTS_DIR}; "
                             f"for other settings a folder in it named after them, e.g. "
                             f"clockwork_L100; with --quick a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="L = 20, 200 training samples, 2 epochs")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, ("models",))
    settings = changed_settings(parser, args, SETTINGS, always=("models", "length"))
    args.results_dir = results_folder(args, RESULTS_DIR, settings, "marker_gradients")
    check_writable(args.results_dir)        # before hours of training, not after
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    sizes, epochs = dict(data.DEFAULT_SIZES), 50
    if args.quick:
        args.length, args.probe, epochs = 20, 20, 2
        sizes.update(train=200, dev=50, test=50)
    data_options, arrays = one_length_data(args.data_dir, args.length, sizes)
    try:
        config_of = {spec: configs.run_config(spec.name, args.length, args.seed, data_options, args.recipe,
                                              epochs=epochs, hidden=spec.hidden, wiring=spec.wiring)
                     for spec in args.models}
    except configs.ConfigError as error:
        sys.exit(f"error: {error}")
    torch.set_num_threads(1)
    all_rows, checks = [], []
    for config in config_of.values():
        saved = find_record(os.path.join(LADDER_DIR, args.recipe), config)
        record, rows = probed_run(config, arrays, args.probe)
        all_rows.append(rows)
        checks.append(f"- {rows['model'].iloc[0]}: reproduces the ladder's record: {reproduces(record, saved)}; "
                      f"the split scores the dev samples as the run does: {scored_as_the_run(rows)}")
    rows = pd.concat(all_rows, ignore_index=True)
    command = study_command("studies.marker_gradients", argv)
    probed = (f"the first {args.probe}" if args.probe and args.probe < len(arrays["x_dev"])
              else f"all {len(arrays['x_dev'])}")
    text = (f"# The output's gradient at each marker, epoch by epoch\n\nMade by: `{command}`\n\n"
            f"The {args.recipe} recipe at L = {args.length}, seed {args.seed}: mean |dy/dx_value| "
            f"over {probed} dev samples at the first marker m1, the second m2 and the "
            f"unmarked steps, at the start of every epoch and after the last (a network that "
            f"solves the task has 1, 1 and 0). Per epoch: marker_gradients.csv.\n\n"
            f"{tabulate(summary(rows), headers='keys', tablefmt='github', disable_numparse=True)}\n")
    split = split_summary(rows)
    if split:
        text += (f"\nThe clocked networks, split by the slowest layer's tick (0-based step m with "
                 f"m % T == 0, T its period: AlarmworkNet's 1-based odd steps): the mean "
                 f"|dy/dx_value| at m1 / m2 over the samples whose marker falls on a tick and over "
                 f"those whose marker does not, and the dev accuracy of the samples with both "
                 f"markers on a tick, one, none (all {len(arrays['x_dev'])} dev samples); at epochs "
                 f"{', '.join(map(str, SHOWN_EPOCHS))} and the last, every epoch in the csv:\n\n"
                 f"{tabulate(split, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
                 + "\n".join(split_notes(rows)) + "\n")
    text += "\n" + "\n".join(checks) + "\n"
    write_outputs(args.results_dir, "marker_gradients", rows, text,
                  lambda path: plot(rows, args.length, path))


if __name__ == "__main__":
    main()

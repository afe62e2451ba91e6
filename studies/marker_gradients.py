"""What a network has learned to carry: the output's gradient at each marker, epoch by epoch.

    python -m studies.marker_gradients             # SimpleRNN and AlarmworkNet, integrator recipe, L = 500, seed 0
    python -m studies.marker_gradients --quick     # the whole path in seconds (the tests run it)

A network that solves the adding problem answers y = v[m1] + v[m2], so the gradient of its
output with respect to the value channel is 1 at both marked steps and 0 everywhere else.
This trains runs of the reach ladder again (the same configuration and data; the dev accuracy
of every epoch must equal the saved record's, and the report says whether it does) and, at
the start of every epoch and after the last, measures on the first dev samples the mean
|dy/dx_value| at the first marker (m1, in the first half, 250-499 steps from the end at
L = 500), at the second (m2, in the second half) and at the unmarked steps. It shows which
of the two values a network carries, and from which epoch on. The measurement uses
torch.autograd.grad with respect to the input only, so the run's own gradients are not
touched. Writes marker_gradients.csv, .md and .png.
"""
import argparse
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
from models import MODELS
from studies.common import one_length_data, study_command, write_outputs
from studies.divergence import reproduces

RESULTS_DIR = os.path.join("results", "reach", "marker_gradients")
LADDER_DIR = os.path.join("results", "reach")
PROBE_SAMPLES = 200


def marker_gradients(model, x):
    """(mean |dy/dx_value| at m1, at m2, at the unmarked steps) over the samples of x."""
    x = x.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(model(x).sum(), x)   # samples are independent
    gradient = gradient[:, :, 0].abs()
    marked = x[:, :, 1].detach() > 0.5
    first = marked.float().argmax(dim=1)                         # m1 lies in the first half
    second = x.shape[1] - 1 - marked.flip(1).float().argmax(dim=1)
    rows = torch.arange(len(x))
    unmarked = gradient[~marked].mean()
    return float(gradient[rows, first].mean()), float(gradient[rows, second].mean()), float(unmarked)


class EpochProbe:
    """Called by the training step after every backward pass; measures at each epoch's start."""

    def __init__(self, probe_x, batches_per_epoch):
        self.probe_x, self.batches_per_epoch = probe_x, batches_per_epoch
        self.batches, self.rows, self.model = 0, [], None

    def measure(self, model, epoch):
        self.rows.append(dict(zip(("epoch", "first_marker", "second_marker", "unmarked"),
                                  (epoch, *marker_gradients(model, self.probe_x)))))

    def __call__(self, model, x, loss):
        self.model = model
        if self.batches % self.batches_per_epoch == 0:
            self.measure(model, self.batches // self.batches_per_epoch)
        self.batches += 1


def probed_run(config, arrays, probe_samples):
    """Train `config` as the ladder does, measured at every epoch's start and after the last;
    (record, one row per measurement with the epoch's dev accuracy)."""
    probe_x = torch.from_numpy(arrays["x_dev"][:probe_samples])
    batches = -(-len(arrays["x_train"]) // config["batch_size"])
    probe = EpochProbe(probe_x, batches)
    record = training.train_run(config, arrays, watch=probe)
    if probe.model is not None:
        probe.measure(probe.model, record["epochs_run"])
    rows = pd.DataFrame(probe.rows)
    rows["dev_accuracy"] = [h["dev_accuracy"] for h in record["history"]][:len(rows)]
    rows.insert(0, "model", report.model_label(config))
    return record, rows


def plot(rows, seq_len, path):
    labels = list(dict.fromkeys(rows["model"]))
    figure = Figure(figsize=(4.2 * len(labels), 3.6))
    axes = figure.subplots(1, len(labels), squeeze=False)[0]
    for ax, label in zip(axes, labels):
        run = rows[rows["model"] == label]
        ax.semilogy(run["epoch"], run["first_marker"], marker=".", label="|dy/dx_value| at m1")
        ax.semilogy(run["epoch"], run["second_marker"], marker=".", label="at m2")
        ax.semilogy(run["epoch"], run["unmarked"], marker=".", label="at unmarked steps")
        ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        ax.axhline(0.5, color="grey", lw=0.6, ls="--")
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(run["epoch"], run["dev_accuracy"], color="k", lw=0.8, ls="--", label="dev accuracy")
        twin.set_ylim(0, 102)
        twin.set_ylabel("dev accuracy (%)", fontsize=8)
    axes[0].set_ylabel("mean |dy / dx_value|")
    axes[0].legend(fontsize=7, loc="center right")
    figure.suptitle(f"L = {seq_len}: the output's gradient at each marker, epoch by epoch "
                    "(1 at both: the task solved; 0.5 at both: half the sum)", fontsize=9)
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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description="Train runs of the reach ladder again and measure, epoch by epoch, the "
                    "output's gradient at the first and second marker: which value each "
                    "network carries, and from when.")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["simple_rnn", "alarmwork"],
                        help="models (default: %(default)s)")
    parser.add_argument("--recipe", choices=list(recipes.RECIPES), default="integrator",
                        help="the ladder's recipe (default: %(default)s)")
    parser.add_argument("--length", type=sequence_length, default=500, help="L (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the run's seed (default: %(default)s)")
    parser.add_argument("--probe", type=positive_int, default=PROBE_SAMPLES,
                        help="dev samples measured (default: %(default)s)")
    parser.add_argument("--data-dir", default="data", help="folder of the .npz files (default: %(default)s)")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="folder of marker_gradients.{csv,md,png} (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="L = 20, 200 training samples, 2 epochs")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, ("models",))
    check_writable(args.results_dir)        # before hours of training, not after
    sizes, epochs = dict(data.DEFAULT_SIZES), 50
    if args.quick:
        args.length, args.probe, epochs = 20, 20, 2
        sizes.update(train=200, dev=50, test=50)
    data_options, arrays = one_length_data(args.data_dir, args.length, sizes)
    try:
        config_of = {m: configs.run_config(m, args.length, args.seed, data_options, args.recipe,
                                           epochs=epochs) for m in args.models}
    except configs.ConfigError as error:
        sys.exit(f"error: {error}")
    torch.set_num_threads(1)
    all_rows, checks = [], []
    for model, config in config_of.items():
        saved = find_record(os.path.join(LADDER_DIR, args.recipe), config)
        record, rows = probed_run(config, arrays, args.probe)
        all_rows.append(rows)
        checks.append(f"- {rows['model'].iloc[0]}: reproduces the ladder's record: {reproduces(record, saved)}")
    rows = pd.concat(all_rows, ignore_index=True)
    command = study_command("studies.marker_gradients", argv)
    text = (f"# The output's gradient at each marker, epoch by epoch\n\nMade by: `{command}`\n\n"
            f"The {args.recipe} recipe at L = {args.length}, seed {args.seed}: mean |dy/dx_value| "
            f"over the first {args.probe} dev samples at the first marker m1, the second m2 and the "
            f"unmarked steps, at the start of every epoch and after the last (a network that "
            f"solves the task has 1, 1 and 0). Per epoch: marker_gradients.csv.\n\n"
            f"{tabulate(summary(rows), headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            + "\n".join(checks) + "\n")
    write_outputs(args.results_dir, "marker_gradients", rows, text,
                  lambda path: plot(rows, args.length, path))


if __name__ == "__main__":
    main()

"""Why a ReLU network started as an integrator diverges: the ladder's runs again, batch by batch.

    python -m studies.divergence                       # SimpleRNN, integrator recipe, L = 500, seeds 0, 2, 3, 4
    python -m studies.divergence --quick               # the whole path in seconds, into a temporary folder

The integrator recipe's SimpleRNN (ReLU, weight_hh = I at the start) lost two of its five
runs at L = 500 to a non-finite loss. This trains the same runs again, the same configuration
on the same data, and after every batch's backward pass records what the run's record does
not hold: the loss; the gradient of each weight before clipping; the spectral radius rho (the
largest |eigenvalue|) and the spectral norm (the largest singular value) of weight_hh; and the
largest hidden-state norm over the batch and the steps. A ReLU state has no ceiling: along a
direction that weight_hh amplifies by rho and the ReLU lets through, it grows as rho^l, and
float32 overflows (3.4e38) once rho^L > 3.4e38, that is rho > 3.4e38^(1/L): 1.19 at L = 500,
1.09 at L = 1000, against 2.4 at L = 100. The training is the ladder's own (experiment.training.train_run), only watched, so
the dev accuracy of every epoch must equal the saved record's; the report says whether it does.
Writes divergence.csv (one row per batch), divergence.md and divergence.png into
results/reach/divergence, or for other settings into a folder of their own in it, named after
them (--length 1000: L1000). The runs train one after another in this process, each batch
watched here, so the command has no --jobs or --scheduler.
"""
import argparse
import math
import os
import sys

from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import torch
from tabulate import tabulate

import generate_data_adding_problem as data
from experiment import configs, report, training
from experiment.runs import find_record
from lib.atomic_files import check_writable
from lib.cli_types import non_negative_int, positive_int, refuse_repeats, sequence_length
from studies.common import (changed_settings, one_length_data, results_folder, study_command,
                            write_outputs)

FLOAT32_MAX = float(torch.finfo(torch.float32).max)
RESULTS_DIR = os.path.join("results", "reach", "divergence")
LADDER_DIR = os.path.join("results", "reach")         # where the ladder's records are
WEIGHTS = {"weight_hh": ("rnn.weight_hh_l0",), "weight_ih": ("rnn.weight_ih_l0",),
           "biases": ("rnn.bias_ih_l0", "rnn.bias_hh_l0"), "output": ("linear.weight", "linear.bias")}


def overflow_radius(seq_len):
    """The spectral radius above which rho^L passes float32's largest number."""
    return math.exp(math.log(FLOAT32_MAX) / seq_len)


class Watcher:
    """Called by the training step after every backward pass; keeps one row per batch."""

    def __init__(self, seed, batches_per_epoch):
        self.seed, self.batches_per_epoch, self.rows = seed, batches_per_epoch, []

    def __call__(self, model, x, loss):
        parameters = dict(model.named_parameters())
        batch = len(self.rows)
        row = {"seed": self.seed, "epoch": batch // self.batches_per_epoch, "batch": batch,
               "loss": loss.item()}
        for name, members in WEIGHTS.items():
            squares = sum(float(parameters[m].grad.double().pow(2).sum()) for m in members)
            row[f"grad_{name}"] = math.sqrt(squares)
        with torch.no_grad():
            weight_hh = parameters["rnn.weight_hh_l0"].double()
            finite = bool(torch.isfinite(weight_hh).all())
            row["spectral_radius"] = (float(torch.linalg.eigvals(weight_hh).abs().max())
                                      if finite else math.nan)
            row["spectral_norm"] = float(torch.linalg.matrix_norm(weight_hh, 2)) if finite else math.nan
            states, _ = model.rnn(x)                              # (N, L, P), every step
            row["state_norm_max"] = float(states.double().norm(dim=2).max())
        self.rows.append(row)


def watched_run(config, arrays, watcher_type=None):
    """Train `config` as the ladder does, watched by a `watcher_type(seed, batches_per_epoch)`
    (this study's Watcher where none is given); (record, rows of every batch)."""
    watcher = (watcher_type or Watcher)(config["seed"],
                                        math.ceil(len(arrays["x_train"]) / config["batch_size"]))
    record = training.train_run(config, arrays, watch=watcher)
    return record, pd.DataFrame(watcher.rows)


def reproduces(record, saved):
    """Whether the watched run's dev accuracy at every epoch equals the saved run's."""
    if saved is None:
        return "no saved run to compare"
    ours = [h["dev_accuracy"] for h in record["history"]]
    theirs = [h["dev_accuracy"] for h in saved["history"]][:len(ours)]
    if ours == theirs:
        return f"yes, dev accuracy equal at epochs 0-{len(ours) - 1}"
    return f"NO: dev accuracy {ours} here, {theirs} in the record"


def summary_row(rows, record, saved, seq_len):
    """What happened in one run: where the state first passed 1e6 and where the loss stopped
    being finite, and rho and the gradients there."""
    big = rows[rows["state_norm_max"] > 1e6]
    broken = rows[~np.isfinite(rows["loss"])]
    first_big = big.iloc[0] if len(big) else None
    line = {"seed": int(rows["seed"].iloc[0]),
            "saved run": (saved["status"] + (f" in epoch {saved['diverged_epoch']}"
                                             if saved["status"] == "diverged" else
                                             f", test {saved['test_accuracy']:.1f} %"))
            if saved else "none",
            "batches": len(rows),
            "rho at start": f"{rows['spectral_radius'].iloc[0]:.3f}",
            "max rho": f"{rows['spectral_radius'].max():.3f}",
            "batches with rho > rho*": int((rows["spectral_radius"] > overflow_radius(seq_len)).sum()),
            "batches with state > 1e6": len(big),
            "first state > 1e6": ("-" if first_big is None else
                               f"batch {int(first_big['batch'])} (rho {first_big['spectral_radius']:.3f})"),
            "first non-finite loss": ("-" if not len(broken) else
                                      f"batch {int(broken.iloc[0]['batch'])} "
                                      f"(rho {broken.iloc[0]['spectral_radius']:.3f})"),
            "reproduces the record": reproduces(record, saved)}
    return line


def gradient_shares(rows):
    """Per run: each weight's share of the squared gradient, median over ordinary batches (state
    under 1e6) and over the batches whose state passed 1e6."""
    lines = []
    for seed, run in rows.groupby("seed"):
        for label, part in (("state <= 1e6", run[run["state_norm_max"] <= 1e6]),
                            ("state > 1e6", run[run["state_norm_max"] > 1e6])):
            squares = part[[f"grad_{w}" for w in WEIGHTS]].pow(2)
            finite = squares[np.isfinite(squares).all(axis=1) & (squares.sum(axis=1) > 0)]
            if not len(finite):
                continue
            shares = finite.div(finite.sum(axis=1), axis=0).median()
            lines.append({"seed": seed, "batches": label, "n": len(finite),
                          **{w: f"{100 * shares[f'grad_{w}']:.1f} %" for w in WEIGHTS}})
    return lines


def seed_columns(rows):
    """A figure of three panels a seed, one column each, sharing the batch axis: (figure, axes,
    [(seed, the seed's rows, its three panels)]); the top panel is titled with the seed."""
    seeds = sorted(rows["seed"].unique())
    figure = Figure(figsize=(3.2 * len(seeds), 6.4))
    axes = figure.subplots(3, len(seeds), sharex="col", squeeze=False)
    for column, seed in enumerate(seeds):
        axes[0, column].set_title(f"seed {seed}")
    return figure, axes, [(seed, rows[rows["seed"] == seed], axes[:, column])
                          for column, seed in enumerate(seeds)]


def finish_columns(figure, axes, ylabels, title, path):
    """Label the left column's panels, legend the middle one, title the figure and save it."""
    for ax, label in zip(axes[:, 0], ylabels):
        ax.set_ylabel(label)
    axes[1, 0].legend(fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    report.save_figure(figure, path)


def plot(rows, seq_len, path):
    figure, axes, columns = seed_columns(rows)
    for seed, run, (top, middle, bottom) in columns:
        top.semilogy(run["batch"], run["loss"].where(np.isfinite(run["loss"])), lw=0.6)
        middle.plot(run["batch"], run["spectral_radius"], lw=0.8, label="spectral radius rho")
        middle.plot(run["batch"], run["spectral_norm"], lw=0.8, label="spectral norm")
        middle.axhline(overflow_radius(seq_len), color="C3", ls="--", lw=0.8,
                       label=f"rho* = {overflow_radius(seq_len):.3f}")
        bottom.semilogy(run["batch"], run["state_norm_max"].where(np.isfinite(run["state_norm_max"])),
                        lw=0.6, color="C2")
        broken = run[~np.isfinite(run["loss"])]
        for ax in (top, middle, bottom):
            ax.grid(alpha=0.3)
            if len(broken):
                ax.axvline(broken["batch"].iloc[0], color="k", lw=0.6, ls=":")
        bottom.set_xlabel("batch (500 an epoch)")
    finish_columns(figure, axes, ("training loss", "weight_hh", "largest |h[l]| in the batch"),
                   f"SimpleRNN, integrator recipe, L = {seq_len}: batch by batch "
                   "(dotted: first non-finite loss)", path)


def add_watch_arguments(parser, length, seeds, epochs, results_dir, stem, quick_epochs,
                        epochs_help="epochs watched per run"):
    """The options of a study that trains ladder runs again, watched (this one, studies.collapse)."""
    parser.add_argument("--length", type=sequence_length, default=length, help="L (default: %(default)s)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=seeds,
                        help="the ladder's seeds to train again (default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=epochs,
                        help=f"{epochs_help} (default: %(default)s)")
    parser.add_argument("--data-dir", default="data", help="folder of the .npz files (default: %(default)s)")
    parser.add_argument("--results-dir",
                        help=f"folder of {stem}.{{csv,md,png}} (default: {results_dir}; for other "
                             f"settings a folder in it named after them, e.g. L100_seeds0-1; with "
                             f"--quick a temporary folder)")
    parser.add_argument("--quick", action="store_true",
                        help=f"L = 30, 200 training samples, seeds 0 and 1, {quick_epochs} "
                             f"epoch{'s' if quick_epochs > 1 else ''}")


WATCH_SETTINGS = {"length": "L", "seeds": "seeds", "epochs": "epochs"}   # their folder names


def watched_folder(parser, args, study_folder, stem, settings=WATCH_SETTINGS):
    """After parsing: a seed named twice refused, the results folder chosen (results_folder,
    `settings` naming the options that set it apart) and checked, before hours of training,
    not after."""
    refuse_repeats(parser, args, ("seeds",))
    args.results_dir = results_folder(args, study_folder, changed_settings(parser, args, settings),
                                      stem)
    check_writable(args.results_dir)
    return args


def watched_data(args, quick_epochs):
    """--quick applied; one thread; (data options, arrays) of the length."""
    sizes = dict(data.DEFAULT_SIZES)
    if args.quick:
        args.length, args.seeds, args.epochs = 30, [0, 1], quick_epochs
        sizes.update(train=200, dev=50, test=50)
    torch.set_num_threads(1)
    return one_length_data(args.data_dir, args.length, sizes)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the integrator recipe's SimpleRNN runs of the reach ladder again, "
                    "batch by batch: loss, each weight's gradient, weight_hh's spectral radius "
                    "and norm, and the largest hidden state, to see why runs diverge.")
    add_watch_arguments(parser, 500, [0, 2, 3, 4], 3, RESULTS_DIR, "divergence", quick_epochs=2,
                        epochs_help="epochs watched per run; a run that diverges stops there")
    return watched_folder(parser, parser.parse_args(argv), RESULTS_DIR, "divergence")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    data_options, arrays = watched_data(args, quick_epochs=2)
    all_rows, summaries = [], []
    for seed in args.seeds:
        config = configs.run_config("simple_rnn", args.length, seed, data_options, "integrator")
        saved = find_record(os.path.join(LADDER_DIR, "integrator"), config)
        record, rows = watched_run({**config, "epochs": args.epochs}, arrays)
        all_rows.append(rows)
        summaries.append(summary_row(rows, record, saved, args.length))
    rows = pd.concat(all_rows, ignore_index=True)
    command = study_command("studies.divergence", argv)
    text = (f"# Divergence of the integrator SimpleRNN, batch by batch\n\nMade by: `{command}`\n\n"
            f"SimpleRNN (ReLU, weight_hh = I at the start), integrator recipe, L = {args.length}, "
            f"the ladder's runs trained again for at most {args.epochs} epochs. rho is weight_hh's "
            f"spectral radius; a state along its leading eigenvector grows as rho^l, so float32 "
            f"overflows at L = {args.length} once rho > rho* = {overflow_radius(args.length):.3f}. "
            f"The state is the largest hidden-state norm |h[l]| in the batch, over every step. Per "
            f"batch: "
            f"divergence.csv.\n\n"
            f"{tabulate(summaries, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            f"Each weight's share of the squared gradient before clipping, median over the "
            f"batches with a finite gradient:\n\n"
            f"{tabulate(gradient_shares(rows), headers='keys', tablefmt='github', disable_numparse=True)}\n")
    write_outputs(args.results_dir, "divergence", rows, text,
                  lambda path: plot(rows, args.length, path))


if __name__ == "__main__":
    main()

"""Why an all-wired clocked run collapses: the ladder's first epoch again, batch by batch.

    python -m studies.collapse                  # the all-wired AlarmworkNet, L = 1000, seeds 0-4
    python -m studies.collapse --lr 3e-5        # the same runs at another Adam rate (into lr3e-5/)
    python -m studies.collapse --quick          # the whole path in seconds, into a temporary folder

Some runs of the all-wired clocked networks (SPEC.md, section 7) end at 0 % dev accuracy with
a training loss of 1.04-1.05 from their first epoch on: the output y = tanh(a_out) is pinned
at +-1 for every sample. In float32, tanh(a) is exactly +-1 once |a| passes about 9, its
derivative 1 - y^2 is then exactly 0, and no gradient reaches any weight: such a run cannot
recover. This trains the ladder's runs again for their first epoch(s), the same configuration
on the same data, and after every batch's backward pass (before the weights move) records:
the loss; the gradient norm before clipping; the largest norm over the batch of the state the
output reads, |z_0[L]|; the largest output pre-activation |a_out|; and the fraction of the
batch whose output is exactly +-1. The training is the ladder's own
(experiment.training.train_run), only watched, so the dev accuracy of every epoch must equal
the saved record's; the report says whether it does. Writes collapse.csv (one row per
batch), collapse.md and collapse.png into results/reach/collapse, or for other settings into
a folder of their own in it, named after them (--model clockwork:all: clockwork_all; --lr
3e-5: lr3e-5). The runs train one after another in this process, each batch watched here, so
the command has no --jobs or --scheduler.
"""
import argparse
import math
import os
import sys

import pandas as pd
import torch
from tabulate import tabulate

from experiment import configs, report
from experiment.runs import find_record
from lib.cli_types import positive_float
from studies.common import ModelSpec, parse_model, study_command, write_outputs
from studies import divergence

RESULTS_DIR = os.path.join("results", "reach", "collapse")
LADDER_DIR = os.path.join("results", "reach")         # where the ladder's records are
RECIPE = "integrator"                                  # the all-wired networks' recipe
CLOCKED = ("alarmwork", "clockwork")
# the options that set a run's files apart, and their names in its folder: clockwork_all, lr3e-5
SETTINGS = {"model": "", **divergence.WATCH_SETTINGS, "lr": "lr"}


class Watcher:
    """Called by the training step after every backward pass; keeps one row per batch."""

    def __init__(self, seed, batches_per_epoch):
        self.seed, self.batches_per_epoch, self.rows = seed, batches_per_epoch, []

    def __call__(self, model, x, loss):
        gradient = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
        with torch.no_grad():
            state = model.recurrent_layers_bptt(x)             # z_0[L], what the output reads
            a_out = state @ model.W_out.T + model.b_out
        batch = len(self.rows)
        self.rows.append({
            "seed": self.seed, "epoch": batch // self.batches_per_epoch, "batch": batch,
            "loss": loss.item(), "grad_norm": gradient,
            "state_norm_max": float(state.double().norm(dim=1).max()),
            "a_out_max": float(a_out.abs().max()),
            "pinned_fraction": float((torch.tanh(a_out).abs() == 1).double().mean())})


def watched_run(config, arrays):
    """Train `config` as the ladder does, watched; (record, rows of every batch)."""
    return divergence.watched_run(config, arrays, Watcher)


def saved_text(saved):
    if saved is None:
        return "none"
    if saved["status"] == "diverged":
        return f"diverged in epoch {saved['diverged_epoch']}"
    return f"test {saved['test_accuracy']:.1f} % after {saved['epochs_run']} epochs"


def summary_row(rows, record, saved):
    """What happened in one run: the start, the first batch whose every output is pinned at
    +-1, and how many batches had no gradient at all."""
    start = rows.iloc[0]
    pinned = rows[rows["pinned_fraction"] == 1.0]
    return {
        "seed": int(start["seed"]),
        "saved run": saved_text(saved),
        "batches": len(rows),
        "at the start: state / a_out / gradient": (
            f"{start['state_norm_max']:.3g} / {start['a_out_max']:.3g} / {start['grad_norm']:.3g}"),
        "after one step: state / a_out / pinned": (
            "-" if len(rows) < 2 else
            f"{rows['state_norm_max'].iloc[1]:.3g} / {rows['a_out_max'].iloc[1]:.3g} / "
            f"{100 * rows['pinned_fraction'].iloc[1]:.0f} %"),
        "first batch all pinned": "-" if not len(pinned) else str(int(pinned["batch"].iloc[0])),
        "batches all pinned": len(pinned),
        "batches with gradient 0": int((rows["grad_norm"] == 0).sum()),
        "largest state": f"{rows['state_norm_max'].max():.3g}",
        "dev % after": ", ".join(f"{h['dev_accuracy']:.1f}" for h in record["history"][1:]),
        "reproduces the record": divergence.reproduces(record, saved)}


def plot(rows, title, path):
    figure, axes, columns = divergence.seed_columns(rows)
    for seed, run, (top, middle, bottom) in columns:
        top.plot(run["batch"], run["loss"], lw=0.6)
        middle.semilogy(run["batch"], run["a_out_max"], lw=0.8, label="largest |a_out|")
        middle.semilogy(run["batch"], run["state_norm_max"], lw=0.8, label="largest state")
        middle.axhline(9.0, color="C3", ls="--", lw=0.8, label="|a_out| = 9: tanh = +-1")
        bottom.plot(run["batch"], run["pinned_fraction"], lw=0.8, color="C2")
        for ax in (top, middle, bottom):
            ax.grid(alpha=0.3)
        bottom.set_xlabel("batch")
    divergence.finish_columns(figure, axes, ("training loss", "in the batch", "outputs pinned at +-1"),
                              title, path)


def clocked_model(text):
    spec = parse_model(text)
    if spec.name not in CLOCKED:
        raise argparse.ArgumentTypeError(f"'{text}': the study watches a clocked network "
                                         f"({', '.join(CLOCKED)}), got {spec.name}")
    return spec


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the reach ladder's runs of a clocked network again for their first "
                    "epoch(s), batch by batch: the loss, the gradient, the state the output "
                    "reads and whether the output is pinned at +-1, to see why runs collapse.")
    parser.add_argument("--model", type=clocked_model, default=ModelSpec("alarmwork", wiring="all"),
                        metavar="MODEL[:P][:WIRING]",
                        help="a clocked network, e.g. alarmwork:all or clockwork:all "
                             "(default: alarmwork:all)")
    divergence.add_watch_arguments(parser, 1000, [0, 1, 2, 3, 4], 1, RESULTS_DIR, "collapse",
                                   quick_epochs=1)
    parser.add_argument("--lr", type=positive_float, default=None,
                        help=f"Adam's rate, in place of the {RECIPE} recipe's (default: the "
                             f"recipe's); the runs then differ from the ladder's records")
    return divergence.watched_folder(parser, parser.parse_args(argv), RESULTS_DIR, "collapse",
                                     SETTINGS)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    data_options, arrays = divergence.watched_data(args, quick_epochs=1)
    overrides = {} if args.lr is None else {"lr": args.lr}
    spec = args.model
    try:                                    # every run's configuration before any training
        runs = [configs.run_config(spec.name, args.length, seed, data_options, RECIPE,
                                   hidden=spec.hidden, wiring=spec.wiring, **overrides)
                for seed in args.seeds]
    except configs.ConfigError as error:
        sys.exit(f"error: {error}")
    all_rows, summaries = [], []
    for config in runs:
        saved = find_record(os.path.join(LADDER_DIR, RECIPE), config)
        record, rows = watched_run({**config, "epochs": args.epochs}, arrays)
        all_rows.append(rows)
        summaries.append(summary_row(rows, record, saved))
    rows = pd.concat(all_rows, ignore_index=True)
    label = report.model_label(config)
    title = (f"{label}, {RECIPE} recipe, Adam {config['lr']:g}, L = {args.length}: "
             f"the first {args.epochs} epoch(s), batch by batch")
    text = (f"# Collapse of the {label}, batch by batch\n\n"
            f"Made by: `{study_command('studies.collapse', argv)}`\n\n"
            f"{title}: the ladder's runs trained again, watched after every batch's backward "
            f"pass, before the weights move (so batch 0 is the untrained network, batch 1 the "
            f"network after one Adam step). state is the largest norm |z_0[L]| over the batch of "
            f"the state the output reads, a_out the largest output pre-activation |a_out|, and "
            f"an output is pinned when tanh(a_out) is exactly +-1 in float32 (|a_out| above "
            f"about 9): its gradient is then exactly 0. pinned: the share of the batch pinned; "
            f"dev % after: the dev accuracy after each epoch. Per batch: "
            f"collapse.csv.\n\n"
            f"{tabulate(summaries, headers='keys', tablefmt='github', disable_numparse=True)}\n")
    write_outputs(args.results_dir, "collapse", rows, text, lambda path: plot(rows, title, path))


if __name__ == "__main__":
    main()

"""Choose each model's Adam learning rate for the `modern` recipe, on dev data only.

    python -m studies.sweep_learning_rates              # 4 models x 4 rates x seeds 100, 101 at L = 100
    python -m studies.sweep_learning_rates --report     # rebuild sweep.md, sweep.csv, sweep.png

Every run is the modern recipe (Adam, clipping at 1.0, LSTM forget-gate bias 1) with one of
the rates below, on seeds kept apart from the study's (0..4), saved like any train_rnn.py
run under results/reach/sweep/runs/. The rule: per model, the rate with the highest mean
dev accuracy at the end of training wins (ties: fewer mean epochs, then the larger rate);
where no rate's mean dev accuracy leaves the plateau (PLATEAU_EXIT), the model keeps
FALLBACK_RATE. The test accuracy of these runs is recorded by the protocol and never read
here. training.RECIPES["modern"] holds the winners (tests/test_sweep_learning_rates.py
checks that it matches the committed sweep.csv).
"""
import argparse
import os
import sys

import pandas as pd
from tabulate import tabulate

import generate_data_adding_problem as data
from experiment import report
import train_rnn
from lib.atomic_files import atomic_write_text
from lib.cli_types import sequence_length
from experiment.runs import load_record, record_path

RATES = (1e-4, 3e-4, 1e-3, 3e-3)
SEEDS = (100, 101)            # apart from the study's seeds 0..4
SEQ_LEN = 100
MODELS = ("simple_rnn", "lstm", "alarmwork", "clockwork")
PLATEAU_EXIT = 50.0           # dev %: the plateau of answering ~0 lies near 35 %
FALLBACK_RATE = 1e-3          # PyTorch's default Adam rate, kept where no rate learns
RESULTS_DIR = os.path.join("results", "reach", "sweep")


# ------------------------------------------------------------------------------ the choice

def sweep_table(records):
    """One row per (model, rate): mean final dev accuracy over the seeds, and mean epochs."""
    rows = pd.DataFrame([{
        "model": r["config"]["model"], "label": report.model_label(r["config"]),
        "lr": r["config"]["lr"], "seed": r["config"]["seed"],
        # a diverged run learned nothing: it counts as 0 % in its rate's mean
        "dev_accuracy": r["dev_accuracy"] if r["dev_accuracy"] is not None else 0.0,
        "diverged": r["dev_accuracy"] is None,
        "epochs_run": r["epochs_run"],
    } for r in records])
    table = rows.groupby(["model", "lr"], sort=False).agg(
        label=("label", "first"), seeds=("seed", "count"), mean_dev_accuracy=("dev_accuracy", "mean"),
        dev_accuracies=("dev_accuracy", lambda a: " / ".join(f"{v:.1f}" for v in a)),
        diverged=("diverged", "sum"),
        mean_epochs=("epochs_run", "mean")).reset_index()
    return table


def choose_rates(table):
    """{model: (rate, reason)} by the rule of this module's docstring; dev accuracy only."""
    chosen = {}
    for model, rows in table.groupby("model", sort=False):
        best = rows.sort_values(["mean_dev_accuracy", "mean_epochs", "lr"],
                                ascending=[False, True, False]).iloc[0]
        if best["mean_dev_accuracy"] < PLATEAU_EXIT:
            chosen[model] = (FALLBACK_RATE, f"no rate leaves the plateau (best mean dev "
                                            f"{best['mean_dev_accuracy']:.1f} %): fallback")
        else:
            chosen[model] = (float(best["lr"]), f"highest mean dev accuracy "
                                                f"({best['mean_dev_accuracy']:.1f} %)")
    return chosen


# ------------------------------------------------------------------------------ runs

def sweep_args(model, rate, seed, options):
    """train_rnn.py's options of one sweep run: the modern recipe at one rate."""
    return train_rnn.parse_args([
        "--recipe", "modern", "--models", model, "--lr", repr(rate), "--lengths", str(options.length),
        "--seed", str(seed), "--results-dir", options.results_dir, *train_rnn.study_run_argv(options)])


def sweep_configs(options):
    configs = []
    for model in options.models:
        for rate in RATES:
            for seed in SEEDS:
                args = sweep_args(model, rate, seed, options)
                configs += train_rnn.make_configs(args, train_rnn.data_options_of(args))
    return configs


# ------------------------------------------------------------------------------ report

def write_sweep_report(records, results_dir, command):
    """sweep.csv, sweep.md and sweep.png; returns the Markdown text."""
    table = sweep_table(records)
    chosen = choose_rates(table)
    table["chosen"] = [chosen[m][0] == lr for m, lr in zip(table["model"], table["lr"])]
    atomic_write_text(os.path.join(results_dir, "sweep.csv"), table.to_csv(index=False))
    lines = [{"model": r.label, "Adam lr": f"{r.lr:g}",
              "dev % per seed": r.dev_accuracies, "mean dev %": f"{r.mean_dev_accuracy:.1f}",
              "mean epochs": f"{r.mean_epochs:.1f}", "chosen": "yes" if r.chosen else ""}
             for r in table.itertuples()]
    labels = dict(zip(table["model"], table["label"]))
    choice = "\n".join(f"- {labels[m]}: {rate:g} ({reason})" for m, (rate, reason) in chosen.items())
    text = (f"# Learning rates of the modern recipe, chosen on dev data\n\n"
            f"Made by: `{command}`\n\n"
            f"The modern recipe (Adam, gradient clipping at 1.0, LSTM forget-gate bias 1) at "
            f"L = {int(records[0]['config']['seq_len'])}, seeds {', '.join(map(str, SEEDS))} "
            f"(the study uses 0..4). Dev accuracy at the end of training (%); the highest mean "
            f"wins; where no rate reaches a mean of {PLATEAU_EXIT:g} % the model keeps "
            f"{FALLBACK_RATE:g}. No test accuracy is read.\n\n"
            f"{tabulate(lines, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            f"Chosen:\n\n{choice}\n")
    atomic_write_text(os.path.join(results_dir, "sweep.md"), text)
    plot_sweep(table, chosen, os.path.join(results_dir, "sweep.png"))
    return text


def plot_sweep(table, chosen, path):
    """Mean final dev accuracy against the rate, one line per model, the winner circled."""
    plt = report.plt
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for i, (model, rows) in enumerate(table.groupby("model", sort=False)):
        axes.semilogx(rows["lr"], rows["mean_dev_accuracy"], marker="o", color=f"C{i}",
                      label=rows["label"].iloc[0])
        rate = chosen[model][0]
        winner = rows[rows["lr"] == rate]
        if len(winner):
            axes.scatter(winner["lr"], winner["mean_dev_accuracy"], s=160, facecolors="none",
                         edgecolors=f"C{i}", linewidths=2)
    axes.axhline(PLATEAU_EXIT, color="grey", linestyle=":", linewidth=1,
                 label=f"plateau exit ({PLATEAU_EXIT:g} %)")
    axes.set_xlabel("Adam learning rate")
    axes.set_ylabel("mean dev accuracy at the end (%)")
    axes.set_ylim(0, 102)
    axes.set_title("Modern recipe: dev accuracy per learning rate (circled: chosen)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    report.save_figure(figure, path)


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train the modern recipe at each of the learning rates "
                    f"{', '.join(f'{r:g}' for r in RATES)} on seeds {', '.join(map(str, SEEDS))} "
                    "and choose each model's rate by its dev accuracy.")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL",
                        help=f"models to sweep, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--length", type=sequence_length, default=SEQ_LEN,
                        help="sequence length L of the sweep (default: %(default)s)")
    train_rnn.add_study_arguments(parser, RESULTS_DIR, "runs/ and sweep.{csv,md,png}")
    return parser.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    configs = sweep_configs(options)
    args = sweep_args(options.models[0], RATES[0], SEEDS[0], options)
    if options.report:
        records = [r for r in (load_record(record_path(options.results_dir, c), c) for c in configs) if r]
        if not records:
            sys.exit(f"error: no sweep runs are saved in {options.results_dir}; run the sweep first")
        if len(records) < len(configs):
            print(f"{len(configs) - len(records)} of {len(configs)} run(s) are not saved yet; "
                  "reporting the others")
    else:
        try:
            train_rnn.prepare_data(args, train_rnn.data_options_of(args))
            train_rnn.check_writable(options.results_dir)
        except (data.DataError, OSError) as error:
            sys.exit(f"error: {error}")
        records = train_rnn.run_grid(configs, args)
    command = train_rnn.study_command("studies.sweep_learning_rates", argv)
    print(write_sweep_report(records, options.results_dir, command))


if __name__ == "__main__":
    main()

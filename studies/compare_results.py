"""Compare two results folders of train_rnn.py cell by cell: a table and a figure.

    python -m studies.compare_results results results/clip1.0 --labels protocol "clip 1.0"

Each folder's accuracy.csv (one row per run) and runs/ records are read; the comparison is
written to results/comparison.md and results/comparison.png (see --output). Per cell, the
solved counts of each setting are tested against the first (the reference) with Fisher's
exact test (stats.py).

Each setting is one configuration, as train_rnn.py --report groups runs
(`selection.by_configuration`): a folder whose runs form several (say, with and without
clipping) is refused with an error naming them, unless --select picks one:

    python -m studies.compare_results results results --labels protocol "clip 1.0" \
        --select clip_grad_norm=none clip_grad_norm=1.0
"""
import argparse
import os
import shlex
import sys

from matplotlib.figure import Figure
import numpy as np
import pandas as pd
from tabulate import tabulate

from experiment import report
from experiment import selection
from experiment import stats
from experiment.runs import load_records, run_key
from lib.atomic_files import atomic_write_text, check_writable
from lib.cli_types import NONE

ALL = "all"   # a --select entry that takes a folder's runs as they are


def load_runs(results_dir, select=None):
    """The accuracy.csv of a results folder, each row with its per-epoch history: the runs
    that `select` ({option: value as text}) picks, which must form one configuration.

    Raises ValueError, naming the configurations, when they form several.
    """
    path = os.path.join(results_dir, "accuracy.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; run train_rnn.py (or --report) for it first")
    # a run of several configurations' tables has a row in each
    runs = pd.read_csv(path).drop_duplicates("run").reset_index(drop=True)
    # the "run" column is each run's key today; a record written before a recipe added since
    # renamed its run keeps its former file name, so records are matched by key, not opened by it
    saved = {run_key(record["config"]): record for record in load_records(results_dir)}
    missing = [key for key in runs["run"] if key not in saved]
    if missing:
        raise FileNotFoundError(f"{path} names {len(missing)} run(s) with no record in "
                                f"{results_dir}/runs (e.g. {missing[0]}); rebuild it with "
                                f"python train_rnn.py --report --results-dir {results_dir}")
    records = [saved[key] for key in runs["run"]]
    runs["history"] = [record["history"] for record in records]
    options = [selection.configuration_of(record["config"]) for record in records]
    if select:
        known = set().union(*options)
        unknown = sorted(set(select) - known)
        if unknown:
            raise ValueError(f"--select {unknown[0]}: no run in {results_dir} has that option "
                             f"(its runs have {', '.join(sorted(known))})")
        picked = [all(name not in o or reads_as(o[name], text) for name, text in select.items())
                  for o in options]
        if not any(picked):
            raise ValueError(f"--select {selection_text(select)} picks none of the {len(runs)} "
                             f"runs in {results_dir}")
        runs = runs[picked].reset_index(drop=True)
        records = [record for record, keep in zip(records, picked) if keep]
    _, titles = selection.by_configuration(records)
    if titles:
        configurations = list(dict.fromkeys(titles))
        example = next((title.split(", ")[0].replace(" = ", "=") for title in configurations
                        if " = " in title), "KEY=VALUE")
        raise ValueError(
            f"the runs in {results_dir}{' that --select picks' if select else ''} form "
            f"{len(configurations)} configurations ({'; '.join(configurations)}); compare one "
            f"with --select, e.g. --select {example}, or keep each in a results folder of its own")
    return runs


def reads_as(value, text):
    """Whether an option's value is what `text` writes: 'none' for None, a number by its
    value (1 is 1.0), anything else by its text in any case."""
    if value is None:
        return text.lower() == NONE
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(text) == value
        except ValueError:
            return False
    return str(value).lower() == text.lower()


def selection_argument(text):
    """One --select entry: {option: value as text} from 'KEY=VALUE[,KEY=VALUE...]', or None
    for 'all'."""
    if text.lower() == ALL:
        return None
    pairs = [pair.partition("=") for pair in text.split(",")]
    if not all(name.strip() and equals and value.strip() for name, equals, value in pairs):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE...] or '{ALL}', "
                                         f"got '{text}'")
    return {name.strip(): value.strip() for name, _, value in pairs}


def selection_text(select):
    """A --select entry as written: 'clip_grad_norm=1.0,lr=0.01'."""
    return ",".join(f"{name}={value}" for name, value in select.items())


def common_runs(settings):
    """Keep the (model, length, seed) runs that every setting has: each cell then compares
    the same initializations, even where one setting has more seeds than another."""
    def keys(runs):
        return set(zip(runs["model"], runs["seq_len"], runs["seed"]))
    shared = set.intersection(*(keys(runs) for _, runs in settings))
    return [(label, runs[[key in shared for key in zip(runs["model"], runs["seq_len"], runs["seed"])]])
            for label, runs in settings]


def difference_text(reference_accuracies, accuracies):
    """Whether two cells' solved counts differ at the 5 % level, with Fisher's two-sided p:
    'yes (p = 0.003)', 'no (p = 0.17)'."""
    p = stats.fisher_p(sum(map(stats.solved, reference_accuracies)), len(reference_accuracies),
                       sum(map(stats.solved, accuracies)), len(accuracies))
    return f"{'yes' if p < stats.SIGNIFICANCE_LEVEL else 'no'} (p {p_text(p)})"


def p_text(p):
    """'= 0.17', '= 0.044', '< 0.001': two significant digits, and never a rounded 0.05."""
    if p < 0.001:
        return "< 0.001"
    digits = f"{p:.2g}"
    return f"= {p:.3g}" if float(digits) == stats.SIGNIFICANCE_LEVEL else f"= {digits}"


def comparison_table(settings):
    """One row per (model, length): each setting's accuracy cell, its gradient norm and, for
    a setting that clips, the per cent of batches clipped; for each setting after the first,
    whether its solved count differs from the first's (Fisher's exact test)."""
    first = settings[0][1]
    clips = [bool(runs["clipped_fraction"].notna().any()) for _, runs in settings]
    rows = []
    for model in dict.fromkeys(first["model"]):
        for seq_len in sorted(set(first["seq_len"])):
            row = [model, seq_len]
            cells = [runs[(runs["model"] == model) & (runs["seq_len"] == seq_len)]
                     for _, runs in settings]
            for cell, clip in zip(cells, clips):
                row.append(report.cell_text(list(cell["test_accuracy"])) if len(cell) else "")
                row.append(f"{cell['max_epoch_grad_norm'].median():.3g}" if len(cell) else "")
                if clip:
                    row.append(f"{100 * cell['clipped_fraction'].mean():.1f}" if len(cell) else "")
            for cell in cells[1:]:
                row.append(difference_text(list(cells[0]["test_accuracy"]),
                                           list(cell["test_accuracy"])) if len(cell) else "")
            rows.append(row)
    headers = ["model", "L"]
    for (label, _), clip in zip(settings, clips):
        headers += [f"{label}: test %", f"{label}: grad norm"] + [f"{label}: clipped %"] * clip
    headers += [f"{label}: difference" for label, _ in settings[1:]]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def plot_comparison(settings, path):
    """Top: test accuracy against L per model and setting (median, bar from min to max).
    Bottom: gradient norm per epoch."""
    models = list(dict.fromkeys(settings[0][1]["model"]))
    longest = max(settings[0][1]["seq_len"])
    figure = Figure(figsize=(4.2 * len(models), 7.2))
    axes = figure.subplots(2, len(models), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for column, model in enumerate(models):
        top, bottom = axes[0][column], axes[1][column]
        for (label, runs), style in zip(settings, styles):
            of_model = runs[runs["model"] == model]
            lengths, medians, bars = report.median_and_range(of_model)
            top.errorbar(lengths, medians, yerr=bars, linestyle=style, marker="o", capsize=4,
                         label=label)
            histories = [h for h, L in zip(of_model["history"], of_model["seq_len"]) if L == longest]
            norms = [[e["grad_norm"] for e in h if "grad_norm" in e] for h in histories]
            width = max((len(n) for n in norms), default=0)
            if width:
                padded = np.array([n + [np.nan] * (width - len(n)) for n in norms])
                bottom.semilogy(np.arange(1, width + 1), np.nanmedian(padded, axis=0),
                                linestyle=style, label=f"{label} (median of {len(norms)} runs)")
        report.plot_solved_threshold(top)
        top.set_title(model)
        top.set_xlabel("sequence length L (time steps)")
        top.set_ylim(0, 102)
        top.set_xticks(sorted(set(settings[0][1]["seq_len"])))
        top.grid(alpha=0.3)
        top.legend(fontsize=8, loc="lower left")
        bottom.set_title(f"{model}, L = {longest}")
        bottom.set_xlabel("epoch")
        bottom.grid(alpha=0.3, which="both")
        bottom.legend(fontsize=8)
    axes[0][0].set_ylabel("test accuracy (%), median and min–max")
    axes[1][0].set_ylabel("mean gradient norm in the epoch\n(before clipping)")
    figure.suptitle(" vs ".join(label for label, _ in settings))
    figure.tight_layout()
    report.save_figure(figure, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare results folders of train_rnn.py, one configuration each (the "
                    "options apart from model, length and seed, as train_rnn.py --report "
                    "groups them); a folder whose runs form several is an error that names "
                    "them, unless --select picks one.")
    parser.add_argument("folders", nargs="+", help="results folders, the reference first")
    parser.add_argument("--labels", nargs="+", help="a name for each folder (default: the paths)")
    parser.add_argument("--select", nargs="+", type=selection_argument, metavar="KEY=VALUE",
                        help="the runs to compare from a folder of several configurations: "
                             "KEY=VALUE[,KEY=VALUE...] over the options the error names "
                             f"(e.g. clip_grad_norm=1.0; '{NONE}' for an option that is off), "
                             "one entry per folder in their order, or one for every folder; "
                             f"'{ALL}' takes a folder's runs as they are")
    parser.add_argument("--output", default="results",
                        help="folder of comparison.md and comparison.png (default: %(default)s)")
    args = parser.parse_args(argv)
    labels = args.labels or args.folders
    if len(labels) != len(args.folders):
        parser.error(f"{len(args.folders)} folders but {len(labels)} labels")
    selects = args.select or [None]
    if len(selects) not in (1, len(args.folders)):
        parser.error(f"{len(args.folders)} folders but {len(selects)} --select entries "
                     "(give one per folder, or one for all)")
    selects = selects * len(args.folders) if len(selects) == 1 else selects
    check_writable(args.output, flag="--output")
    try:
        settings = [(label, load_runs(folder, select))
                    for label, folder, select in zip(labels, args.folders, selects)]
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f"error: {error}")
    settings = common_runs(settings)
    table = comparison_table(settings)
    reference = labels[0]
    text = ("Test accuracy (%), as in accuracy.md: solved/n [95 % interval of the solved rate]; "
            "median (min–max). A run solves the task when its test accuracy is >= "
            f"{stats.SOLVED_ACCURACY:g} %; each cell compares the seeds that every setting has for "
            "it. grad norm: the largest epoch-mean gradient norm of a run, before clipping (median "
            "over the runs); clipped %: batches whose gradient was rescaled, over all epochs and "
            f"runs. difference: whether the solved count differs from {reference}'s at the "
            f"{100 * stats.SIGNIFICANCE_LEVEL:g} % level, by Fisher's exact test (two-sided p).\n"
            f"Made by: python -m studies.compare_results {shlex.join(argv if argv is not None else sys.argv[1:])}"
            f"\n\n{table}\n")
    atomic_write_text(os.path.join(args.output, "comparison.md"), text)
    plot_comparison(settings, os.path.join(args.output, "comparison.png"))
    print(text)


if __name__ == "__main__":
    main()

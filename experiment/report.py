"""Tables and figures derived from run records (one record per trained run).

accuracy.csv holds one row per run; cells.csv, accuracy.md, accuracy.png and
learning_curves.png are computed from the same records, so they can always be rebuilt
(`train_rnn.py --report`). Runs of several configurations (say, with and without gradient
clipping) get one table each, titled by what differs; their rows then say which table they
belong to. What "solved" means, and the statistics of a cell: stats.py.
"""
import math
import os

import numpy as np
import pandas as pd
from tabulate import tabulate

from experiment import stats
from lib.atomic_files import atomic_write, atomic_write_text
import models
from experiment.runs import run_key


DEFAULT_HIDDEN = 50  # the assignment's P; a model of another width says so in its label


def model_label(config):
    """A run's model in tables: 'LSTM', 'Clockwork(1,2,4,8)', 'Clockwork(1,2,4,8) P=35', and
    'AlarmworkNet all-wired' for a clocked network whose every layer reads every layer."""
    label = models.display_name(config["model"], config.get("periods"))
    if config.get("wiring", "slower") != "slower":
        label += f" {config['wiring']}-wired"
    return label if config["hidden"] == DEFAULT_HIDDEN else f"{label} P={config['hidden']}"


def describe_run(record):
    """One line about a finished run, e.g. 'LSTM L=50 seed=0: test 99.8 % after 12 epochs (41 s)'."""
    config = record["config"]
    where = f"{model_label(config)} L={config['seq_len']} seed={config['seed']}"
    if record["status"] == "diverged":
        return f"{where}: diverged (non-finite loss) in epoch {record['diverged_epoch']}"
    frozen = (f", frozen for good (exactly zero gradient) from epoch {record['frozen_epoch']}"
              if record["status"] == "frozen" else "")
    return (f"{where}: test {record['test_accuracy']:.1f} % after {record['epochs_run']} "
            f"epochs ({record['train_seconds']:.0f} s){frozen}")


def runs_table(records):
    """One row per run."""
    rows = []
    for record in records:
        config = record["config"]
        rows.append({
            "model": model_label(config), "seq_len": config["seq_len"],
            "seed": config["seed"], "status": record["status"],
            "epochs_run": record["epochs_run"], "diverged_epoch": record["diverged_epoch"],
            "dev_accuracy": record["dev_accuracy"], "test_accuracy": record["test_accuracy"],
            "train_seconds": record["train_seconds"], "engine": config["engine"],
            "clip_grad_norm": config["clip_grad_norm"], "shuffle": config["shuffle"],
            "epochs": config["epochs"], "lr": config["lr"], "hidden": config["hidden"],
            "max_epoch_grad_norm": history_stat(record, "grad_norm", max),
            "max_batch_grad_norm": history_stat(record, "grad_norm_max", max),
            "clipped_fraction": history_stat(record, "clipped_fraction", np.mean),
            "run": run_key(config),
        })
    return pd.DataFrame(rows).astype({"diverged_epoch": "Int64"})  # an integer column with gaps


def history_stat(record, key, reduce):
    """`reduce` over the epochs of one per-epoch quantity; None if the record has none."""
    values = [epoch[key] for epoch in record["history"] if key in epoch]
    return float(reduce(values)) if values else None


def cell_text(test_accuracies):
    """One cell of runs in words: '97.4' for one run; for several, the solved count with the
    95 % interval of the solved rate, then the median and range of the test accuracy:
    '3/5 solved [23–88 %]; median 96.1 (33.0–99.2)'."""
    if len(test_accuracies) == 1:
        (accuracy,) = test_accuracies
        return "diverged" if stats.diverged(accuracy) else f"{accuracy:.1f}"
    cell = stats.summarize_cell(test_accuracies)
    text = (f"{cell['solved']}/{cell['runs']} solved [{100 * cell['solved_rate_ci_low']:.0f}–"
            f"{100 * cell['solved_rate_ci_high']:.0f} %]")
    if cell["diverged"]:
        text += f", {cell['diverged']} diverged"
    if cell["diverged"] < cell["runs"]:
        text += f"; median {cell['median']:.1f} ({cell['min']:.1f}–{cell['max']:.1f})"
    return text


def cells_table(runs):
    """One row per (model, length): run counts, solved-rate interval, accuracy statistics."""
    rows = []
    for model in dict.fromkeys(runs["model"]):
        for seq_len in sorted(set(runs["seq_len"])):
            cell = runs[(runs["model"] == model) & (runs["seq_len"] == seq_len)]
            if len(cell):
                rows.append({"model": model, "seq_len": seq_len,
                             **stats.summarize_cell(list(cell["test_accuracy"]))})
    return pd.DataFrame(rows)


def accuracy_table(runs):
    """Models as rows, lengths as columns, test accuracy in % per cell."""
    models = list(dict.fromkeys(runs["model"]))
    lengths = sorted(set(runs["seq_len"]))
    rows = []
    for model in models:
        row = [model]
        for seq_len in lengths:
            cell = runs[(runs["model"] == model) & (runs["seq_len"] == seq_len)]
            row.append(cell_text(list(cell["test_accuracy"])) if len(cell) else "")
        rows.append(row)
    return tabulate(rows, headers=["model"] + [f"L = {L}" for L in lengths], tablefmt="github",
                    disable_numparse=True)


def accuracy_caption():
    """What a cell of accuracy.md says; the threshold of "solved" is named here, once."""
    return ("Test accuracy (%) on the adding problem, one run per seed. A run solves the task "
            f"when its test accuracy is >= {stats.SOLVED_ACCURACY:g} % (the plateau of answering "
            "about 0 lies near 35 %). A cell of n runs: solved/n, [the 95 % Wilson interval of the "
            "solved rate], then the median test accuracy (min–max); a cell of one run: its test "
            "accuracy. A diverged run (non-finite loss) counts as not solved and is left out of "
            "the median and range. Per cell, with mean and std: cells.csv; per run: accuracy.csv.")


def report_tables(records, configurations=None):
    """(the runs table, the cells table, the Markdown text, each record's label in the figures).

    `configurations`, for runs of several configurations: one title per record (records of a
    title together), e.g. 'clip_grad_norm = 1.0'. Each title gets its own table, and the CSV
    files a `configuration` column; the figures label each model with its configuration.
    """
    runs = runs_table(records)
    labels = [model_label(r["config"]) for r in records]
    if configurations is not None and len(set(configurations)) > 1:
        runs.insert(0, "configuration", configurations)
        groups = {title: runs[runs["configuration"] == title]
                  for title in dict.fromkeys(configurations)}
        text = "\n\n".join([accuracy_caption()] + [f"**{title}**\n\n{accuracy_table(group)}"
                                                    for title, group in groups.items()])
        cells = pd.concat([cells_table(group).assign(configuration=title)
                           for title, group in groups.items()])
        cells = cells[["configuration"] + [c for c in cells.columns if c != "configuration"]]
        labels = [f"{label} [{title}]" for label, title in zip(labels, configurations)]
    else:
        text = f"{accuracy_caption()}\n\n{accuracy_table(runs)}"
        cells = cells_table(runs)
    return runs, cells, text, labels


def write_report(records, results_dir, configurations=None):
    """Write accuracy.csv, cells.csv, accuracy.md and the figures of the records (every run of
    a results folder: these files describe what the folder holds); returns the tables as text."""
    runs, cells, text, labels = report_tables(records, configurations)
    several = "configuration" in runs
    atomic_write_text(os.path.join(results_dir, "accuracy.csv"), runs.to_csv(index=False))
    atomic_write_text(os.path.join(results_dir, "cells.csv"), cells.to_csv(index=False))
    atomic_write_text(os.path.join(results_dir, "accuracy.md"), text + "\n")
    plot_accuracy(runs.assign(model=labels), os.path.join(results_dir, "accuracy.png"), several)
    plot_learning_curves(records, os.path.join(results_dir, "learning_curves.png"), labels, several)
    return text


# ------------------------------------------------------------------------------ figures

def save_figure(figure, path, tight=False):
    """Save as PNG; `tight` grows the canvas to hold what lies outside the axes (a legend)."""
    box = "tight" if tight else None
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=120, bbox_inches=box),
                 binary=True)


def median_and_range(runs):
    """Per length: the median test accuracy and its distance to the min and max, as
    (lengths, medians, [below, above]) for errorbar; diverged runs are left out."""
    finished = runs.dropna(subset=["test_accuracy"])
    by_length = finished.groupby("seq_len")["test_accuracy"].agg(["median", "min", "max"])
    bars = [by_length["median"] - by_length["min"], by_length["max"] - by_length["median"]]
    return by_length.index, by_length["median"], bars


def plot_solved_threshold(axes):
    axes.axhline(stats.SOLVED_ACCURACY, color="grey", linestyle="--", linewidth=1,
                 label=f"solved (>= {stats.SOLVED_ACCURACY:g} %)")


def plot_accuracy(runs, path, legend_below=False):
    """Test accuracy against sequence length, one line per model: each run a dot, the median
    a line, a bar from the lowest to the highest run (a split cell shows as a long bar).
    `legend_below` puts the legend under the axes, for long labels."""
    from matplotlib.figure import Figure   # imported when drawing: a worker never draws
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    finished = runs.dropna(subset=["test_accuracy"])
    span = max(runs["seq_len"]) - min(runs["seq_len"]) or 1
    for i, model in enumerate(dict.fromkeys(runs["model"])):
        of_model = finished[finished["model"] == model]
        if of_model.empty:
            continue
        color = f"C{i}"
        lengths, medians, bars = median_and_range(of_model)
        axes.errorbar(lengths, medians, yerr=bars, marker="o", capsize=4, color=color,
                      label=f"{model} (median, min–max)")
        jitter = (i - 1) * 0.01 * span  # the single runs sideways, so they do not hide each other
        axes.scatter(of_model["seq_len"] + jitter, of_model["test_accuracy"], s=12,
                     color=color, alpha=0.35)
    plot_solved_threshold(axes)
    axes.set_xlabel("sequence length L (time steps)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Adding problem: test accuracy (dots: single runs)")
    axes.set_ylim(0, 102)
    axes.set_xticks(sorted(set(runs["seq_len"])))
    axes.grid(alpha=0.3)
    if not legend_below:
        axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    if legend_below:
        figure.legend(*axes.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0, 0),
                      fontsize=7)
    save_figure(figure, path, tight=legend_below)


def plot_learning_curves(records, path, labels=None, legend_below=False):
    """Dev accuracy per epoch, one panel per length, median and min-max band across seeds;
    one line per label (`labels`: one per record, by default its model's). `legend_below`: one
    legend for all panels, under them, for long labels."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    lengths = sorted({r["config"]["seq_len"] for r in records})
    labels = labels or [model_label(r["config"]) for r in records]
    columns = min(len(lengths), 2)
    rows = math.ceil(len(lengths) / columns)
    figure = Figure(figsize=(4.8 * columns, 3.4 * rows + 0.6))
    panels = figure.subplots(rows, columns, sharey=True, squeeze=False)
    for panel in panels.flat[len(lengths):]:
        panel.set_visible(False)
    for panel, seq_len in zip(panels.flat, lengths):
        for i, label in enumerate(dict.fromkeys(labels)):
            curves = [[h["dev_accuracy"] for h in r["history"]] for r, of in zip(records, labels)
                      if of == label and r["config"]["seq_len"] == seq_len]
            if not curves:
                continue
            # a run that stopped early (solved, or diverged) keeps its last dev accuracy
            width = max(len(c) for c in curves)
            padded = np.array([c + [c[-1]] * (width - len(c)) for c in curves])
            epochs = np.arange(width)
            panel.plot(epochs, np.median(padded, axis=0), color=f"C{i}",
                       label=label if legend_below else f"{label} ({len(curves)} run(s))")
            if len(curves) > 1:
                panel.fill_between(epochs, padded.min(axis=0), padded.max(axis=0),
                                   color=f"C{i}", alpha=0.2)
        panel.set_title(f"L = {seq_len}")
        panel.set_xlabel("epochs trained")
        panel.set_ylabel("dev accuracy (%)")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        if not legend_below:
            panel.legend(fontsize=7, loc="lower right")
    panels[0][0].set_ylim(0, 102)
    figure.suptitle("Dev accuracy during training: median across seeds, band = min to max")
    figure.tight_layout()
    if legend_below:
        handles = [Line2D([], [], color=f"C{i}", label=label)
                   for i, label in enumerate(dict.fromkeys(labels))]
        figure.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 0), fontsize=7)
    save_figure(figure, path, tight=legend_below)

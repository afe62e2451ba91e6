"""Tables and figures derived from run records (one record per trained run).

accuracy.csv holds one row per run; accuracy.md, accuracy.png and learning_curves.png
are computed from the same records, so they can always be rebuilt (`train_rnn.py --report`).
"""
import math
import os

import matplotlib
import numpy as np
import pandas as pd
from tabulate import tabulate

from atomic_files import atomic_write, atomic_write_text
from models import MODELS
from runs import run_key

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

SOLVED_ACCURACY = 99.0  # per cent of test samples; a run at or above it solved the task


def display_name(model):
    return MODELS[model][0]


def describe_run(record):
    """One line about a finished run, e.g. 'LSTM L=50 seed=0: test 99.8 % after 12 epochs (41 s)'."""
    config = record["config"]
    where = f"{display_name(config['model'])} L={config['seq_len']} seed={config['seed']}"
    if record["status"] == "diverged":
        return f"{where}: diverged (non-finite loss) in epoch {record['diverged_epoch']}"
    return (f"{where}: test {record['test_accuracy']:.1f} % after {record['epochs_run']} "
            f"epochs ({record['train_seconds']:.0f} s)")


def runs_table(records):
    """One row per run."""
    rows = []
    for record in records:
        config = record["config"]
        rows.append({
            "model": display_name(config["model"]), "seq_len": config["seq_len"],
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
    """'97.4' for one run; 'mean ± std (solved/runs)' for several; 'diverged' if all diverged."""
    values = np.array([a for a in test_accuracies if a is not None and not pd.isna(a)], dtype=float)
    num_diverged = len(test_accuracies) - len(values)
    if len(values) == 0:
        return "diverged"
    if len(test_accuracies) == 1:
        return f"{values[0]:.1f}"
    solved = int((values >= SOLVED_ACCURACY).sum())
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    text = f"{values.mean():.1f} ± {std:.1f} ({solved}/{len(test_accuracies)})"
    return text + (f" [{num_diverged} diverged]" if num_diverged else "")


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


def write_report(records, results_dir):
    """Write accuracy.csv, accuracy.md and the figures; returns the table as text."""
    runs = runs_table(records)
    seeds = sorted(set(runs["seed"]))
    table = accuracy_table(runs)
    caption = (f"Test accuracy (%), {len(seeds)} seed(s) per cell"
               + (": mean ± standard deviation (runs with test accuracy >= "
                  f"{SOLVED_ACCURACY:.0f} % / runs)" if len(seeds) > 1 else "") + ".")
    atomic_write_text(os.path.join(results_dir, "accuracy.csv"), runs.to_csv(index=False))
    atomic_write_text(os.path.join(results_dir, "accuracy.md"), f"{caption}\n\n{table}\n")
    plot_accuracy(runs, os.path.join(results_dir, "accuracy.png"))
    plot_learning_curves(records, os.path.join(results_dir, "learning_curves.png"))
    return f"{caption}\n\n{table}"


# ------------------------------------------------------------------------------ figures

def save_figure(figure, path):
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=120), binary=True)
    plt.close(figure)


def error_bars(stats):
    """Mean ± std as (below, above) for errorbar, cut at 0 and 100 %: accuracy stays in range."""
    below = stats["mean"] - (stats["mean"] - stats["std"]).clip(lower=0)
    above = (stats["mean"] + stats["std"]).clip(upper=100) - stats["mean"]
    return [below, above]


def plot_accuracy(runs, path):
    """Test accuracy against sequence length, one line per model, error bars across seeds."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    finished = runs.dropna(subset=["test_accuracy"])
    span = max(runs["seq_len"]) - min(runs["seq_len"]) or 1
    for i, model in enumerate(dict.fromkeys(runs["model"])):
        of_model = finished[finished["model"] == model]
        if of_model.empty:
            continue
        stats = of_model.groupby("seq_len")["test_accuracy"].agg(["mean", "std"]).fillna(0.0)
        color = f"C{i}"
        axes.errorbar(stats.index, stats["mean"], yerr=error_bars(stats), marker="o", capsize=4,
                      color=color, label=f"{model} (mean ± std)")
        jitter = (i - 1) * 0.01 * span  # the single runs sideways, so they do not hide each other
        axes.scatter(of_model["seq_len"] + jitter, of_model["test_accuracy"], s=12,
                     color=color, alpha=0.35)
    axes.axhline(SOLVED_ACCURACY, color="grey", linestyle="--", linewidth=1,
                 label=f"solved ({SOLVED_ACCURACY:.0f} %)")
    axes.set_xlabel("sequence length L (time steps)")
    axes.set_ylabel("test accuracy (%)")
    seeds = runs["seed"].nunique()
    axes.set_title(f"Adding problem: test accuracy, {seeds} seed(s) per point (dots: single runs)")
    axes.set_ylim(0, 102)
    axes.set_xticks(sorted(set(runs["seq_len"])))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def plot_learning_curves(records, path):
    """Dev accuracy per epoch, one panel per length, mean and min-max band across seeds."""
    lengths = sorted({r["config"]["seq_len"] for r in records})
    models = list(dict.fromkeys(r["config"]["model"] for r in records))
    columns = min(len(lengths), 2)
    rows = math.ceil(len(lengths) / columns)
    figure, panels = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.4 * rows + 0.6),
                                  sharey=True, squeeze=False)
    for panel in panels.flat[len(lengths):]:
        panel.set_visible(False)
    for panel, seq_len in zip(panels.flat, lengths):
        for i, model in enumerate(models):
            curves = [[h["dev_accuracy"] for h in r["history"]] for r in records
                      if r["config"]["model"] == model and r["config"]["seq_len"] == seq_len]
            if not curves:
                continue
            # a run that stopped early (solved, or diverged) keeps its last dev accuracy
            width = max(len(c) for c in curves)
            padded = np.array([c + [c[-1]] * (width - len(c)) for c in curves])
            epochs = np.arange(width)
            panel.plot(epochs, padded.mean(axis=0), color=f"C{i}",
                       label=f"{display_name(model)} ({len(curves)} run(s))")
            if len(curves) > 1:
                panel.fill_between(epochs, padded.min(axis=0), padded.max(axis=0),
                                   color=f"C{i}", alpha=0.2)
        panel.set_title(f"L = {seq_len}")
        panel.set_xlabel("epochs trained")
        panel.set_ylabel("dev accuracy (%)")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7, loc="lower right")
    panels[0][0].set_ylim(0, 102)
    figure.suptitle("Dev accuracy during training: mean across seeds, band = min to max")
    figure.tight_layout()
    save_figure(figure, path)

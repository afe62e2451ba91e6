"""How much of the output's gradient reaches each input step, in untrained networks.

    python -m studies.gradient_paths                  # L = 100, 5 initializations per model
    python -m studies.gradient_paths --quick          # the whole path in seconds (the tests run it)

To learn the adding problem a network must first feel the marked values, which lie up to
L steps before the output. Before any training, this measures |dy / dx_value[l]|, the
gradient of the output with respect to the value channel at step l, averaged over a batch
of real samples, for every step l, for each model at its initialization (LSTM with
PyTorch's forget-gate bias, with bias 1 and with chrono biases; and every network started as
the integrator recipe starts it). A gradient that fades over the distance from
l to the end is a signal the optimizer barely sees. Writes gradient_paths.csv, .md and .png.
"""
import argparse
import os
import sys

from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import torch
from tabulate import tabulate

import generate_data_adding_problem as data
from experiment import recipes, report, training
from lib.atomic_files import check_writable
from lib.cli_types import positive_int, sequence_length
from models import DEFAULT_PERIODS
from studies.common import study_command, write_outputs

CLOCKS = {"periods": list(DEFAULT_PERIODS)}
INTEGRATOR = {"nonlinearity": "relu", "recurrent_init": "integrator"}   # the integrator recipe's start
# (label, registry name, options for training.make_model's config; "L" is the length measured)
MODELS = [
    ("SimpleRNN", "simple_rnn", {}),
    ("LSTM (PyTorch's forget bias, about 0)", "lstm", {}),
    ("LSTM (forget bias 1)", "lstm", {"lstm_forget_bias": 1.0}),
    ("AlarmworkNet", "alarmwork", {}),
    ("Clockwork(1,2,4,8)", "clockwork", CLOCKS),
    ("SimpleRNN, ReLU integrator", "simple_rnn", INTEGRATOR),
    ("LSTM, chrono T_max = L", "lstm", {"lstm_chrono": recipes.SEQ_LEN}),
    ("AlarmworkNet, ReLU integrator", "alarmwork", INTEGRATOR),
    ("Clockwork(1,2,4,8), ReLU integrator", "clockwork", {**CLOCKS, **INTEGRATOR}),
]
DISTANCES = (0, 10, 25, 50, 75, 92)   # steps before the last one, shown in the table
WINDOW = 8   # steps averaged per distance: the clocked layers read x on some steps only


def gradient_profile(model, x):
    """Mean over the batch of |dy/dx_value[l]| for every step l; shape (L,)."""
    x = x.clone().requires_grad_()
    model(x).sum().backward()          # samples are independent: one backward gives every dy_n/dx_n
    return x.grad[:, :, 0].abs().mean(dim=0).numpy()


def measure(seq_len, seeds, batch, hidden):
    """One row per (model, initialization seed, step)."""
    x, _ = data.adding_problem(batch, seq_len, np.random.default_rng(0))
    x = torch.from_numpy(x)
    rows = []
    for label, name, options in MODELS:
        for seed in range(seeds):
            config = {"model": name, "hidden": hidden, "engine": "bptt",
                      **{k: seq_len if v == recipes.SEQ_LEN else v for k, v in options.items()}}
            torch.manual_seed(seed)
            model = training.make_model(config)
            for step, gradient in enumerate(gradient_profile(model, x)):
                rows.append({"model": label, "seed": seed, "step": step,
                             "distance_to_end": seq_len - 1 - step, "gradient": float(gradient)})
    return pd.DataFrame(rows)


def windowed(rows):
    """Per model and distance d: the gradient averaged over the distances d .. d + WINDOW - 1
    (fewer near the start), median over the initializations."""
    per_seed = rows.pivot_table(index=["model", "seed"], columns="distance_to_end", values="gradient",
                                sort=False).sort_index(axis=1)       # distances 0, 1, 2, ...
    # the window looks back in time: distance d averages d .. d + WINDOW - 1
    smooth = per_seed.T.iloc[::-1].rolling(WINDOW, min_periods=1).mean().iloc[::-1].T
    return smooth.groupby(level="model", sort=False).median()


def summary_table(rows):
    """The windowed gradient at a few distances from the end."""
    medians = windowed(rows)
    distances = [d for d in DISTANCES if d in medians.columns]
    lines = []
    for label, values in medians.iterrows():
        line = {"model": label}
        for d in distances:
            line[f"{d}-{d + WINDOW - 1} steps back"] = f"{values[d]:.2g}"
        lines.append(line)
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


def plot(rows, path, seq_len):
    figure = Figure(figsize=(6.8, 4.2))
    axes = figure.subplots()
    for i, (label, values) in enumerate(windowed(rows).iterrows()):
        axes.semilogy(values.index, values.values, color=f"C{i}", label=label)
    axes.set_xlabel("distance from the input step to the output (steps)")
    axes.set_ylabel(f"|dy / dx_value|, mean over samples and\n{WINDOW} steps, median over initializations")
    axes.set_title(f"Untrained networks, L = {seq_len}: how much gradient reaches each step")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    figure.tight_layout()
    report.save_figure(figure, path)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Measure how much of the output's gradient "
                                                 "reaches each input step in untrained networks.")
    parser.add_argument("--length", type=sequence_length, default=100, help="L (default: %(default)s)")
    parser.add_argument("--seeds", type=positive_int, default=5,
                        help="initializations per model (default: %(default)s)")
    parser.add_argument("--batch", type=positive_int, default=200,
                        help="samples the gradient is averaged over (default: %(default)s)")
    parser.add_argument("--hidden", type=positive_int, default=50, help="units P (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="L = 12, 2 seeds, 10 samples")
    parser.add_argument("--results-dir", default=os.path.join("results", "reach"),
                        help="folder of gradient_paths.{csv,md,png} (default: %(default)s)")
    args = parser.parse_args(argv)
    check_writable(args.results_dir)
    if args.quick:
        args.length, args.seeds, args.batch = 12, 2, 10
    torch.set_num_threads(1)
    rows = measure(args.length, args.seeds, args.batch, args.hidden)
    command = study_command("studies.gradient_paths", argv)
    text = (f"# Gradient paths at initialization\n\nMade by: `{command}`\n\n"
            f"|dy / dx_value[l]| of untrained networks at L = {args.length}, mean over {args.batch} "
            f"samples and over {WINDOW} consecutive steps (the clocked layers read x on some "
            f"steps only), median over {args.seeds} initializations (seeds 0..{args.seeds - 1}), "
            f"P = {args.hidden}; per step and seed: gradient_paths.csv.\n\n{summary_table(rows)}\n")
    write_outputs(args.results_dir, "gradient_paths", rows, text,
                  lambda path: plot(rows, path, args.length))


if __name__ == "__main__":
    main()

"""How much of the output's gradient reaches each input step, in untrained networks.

    python -m studies.gradient_paths                  # L = 100, 5 initializations per model
    python -m studies.gradient_paths --quick          # the whole path in seconds, into a temporary folder

To learn the adding problem a network must first feel the marked values, which lie up to
L steps before the output. Before any training, this measures |dy / dx_value[l]|, the
gradient of the output with respect to the value channel at step l, averaged over a batch
of real samples, for every step l, for each model at its initialization (LSTM with
PyTorch's forget-gate bias, with bias 1 and with chrono biases; the clocked networks wired as
the assignment's, where a layer reads its own and the slower layers' states, and wired "all",
where every layer reads every layer (SPEC.md, section 7); and every network started as the
integrator recipe starts it). A gradient that fades over the distance from l to the end is a
signal the optimizer barely sees.

A clocked layer reads the input only on the steps it fires, so for the clocked networks the
steps are also split by their phase against the slowest layer's period T (0-based step l,
phase l % T; phase 0 is a tick of the slowest layer: AlarmworkNet's Layer_rec2 fires at the
1-based odd steps, Clockwork(1,2,4,8)'s period-8 layer at every eighth step from the first):
the gradient on its ticks and off them, and for T > 2 per phase. Writes gradient_paths.csv
(with each step's phase), .md and .png into results/reach, or for other settings into a folder
of their own in results/reach/gradient_paths, named after them (--length 200: L200).
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
from studies.common import changed_settings, results_folder, study_command, write_outputs

RESULTS_DIR = os.path.join("results", "reach")
OTHER_SETTINGS_DIR = os.path.join(RESULTS_DIR, "gradient_paths")
# the options that set a measurement's files apart, and their names in its folder: L200_seeds3
SETTINGS = {"length": "L", "seeds": "seeds", "batch": "batch", "hidden": "P"}
CLOCKS = {"periods": list(DEFAULT_PERIODS)}
ALL = {"wiring": "all"}                  # every layer reads every layer (SPEC.md, section 7)
INTEGRATOR = {"nonlinearity": "relu", "recurrent_init": "integrator"}   # the integrator recipe's start
# (label, registry name, options for training.make_model's config; "L" is the length measured)
MODELS = [
    ("SimpleRNN", "simple_rnn", {}),
    ("LSTM (PyTorch's forget bias, about 0)", "lstm", {}),
    ("LSTM (forget bias 1)", "lstm", {"lstm_forget_bias": 1.0}),
    ("AlarmworkNet", "alarmwork", {}),
    ("Clockwork(1,2,4,8)", "clockwork", CLOCKS),
    ("AlarmworkNet all-wired", "alarmwork", ALL),
    ("Clockwork(1,2,4,8) all-wired", "clockwork", {**CLOCKS, **ALL}),
    ("SimpleRNN, ReLU integrator", "simple_rnn", INTEGRATOR),
    ("LSTM, chrono T_max = L", "lstm", {"lstm_chrono": recipes.SEQ_LEN}),
    ("AlarmworkNet, ReLU integrator", "alarmwork", INTEGRATOR),
    ("Clockwork(1,2,4,8), ReLU integrator", "clockwork", {**CLOCKS, **INTEGRATOR}),
    ("AlarmworkNet all-wired, ReLU integrator", "alarmwork", {**ALL, **INTEGRATOR}),
    ("Clockwork(1,2,4,8) all-wired, ReLU integrator", "clockwork", {**CLOCKS, **ALL, **INTEGRATOR}),
]
DISTANCES = (0, 10, 25, 50, 75, 92)   # steps before the last one, shown in the table
WINDOW = 8   # steps averaged per distance: the clocked layers read x on some steps only
FAR = 50     # the table by phase averages the steps at least this far back


def slow_period(name, options):
    """The period T of a clocked network's slowest layer (AlarmworkNet: 2); None for the others."""
    if name == "alarmwork":
        return 2
    if name == "clockwork":
        return max(options.get("periods", DEFAULT_PERIODS))
    return None


def phase(step, period):
    """The phase of 0-based step `step` against a period: step % period. Phase 0 is a tick, a
    step at which a layer of that period fires (with period 2, the 1-based odd steps at which
    AlarmworkNet's Layer_rec2 fires; SPEC.md, section 2)."""
    return step % period


def gradient_profile(model, x):
    """Mean over the batch of |dy/dx_value[l]| for every step l; shape (L,)."""
    x = x.clone().requires_grad_()
    model(x).sum().backward()          # samples are independent: one backward gives every dy_n/dx_n
    return x.grad[:, :, 0].abs().mean(dim=0).numpy()


def measure(seq_len, seeds, batch, hidden, models=MODELS):
    """One row per (model, initialization seed, step), for the (label, name, options) of
    `models`; a clocked network's rows name the slowest layer's period, the step's phase
    against it and whether the step is a tick of that layer."""
    x, _ = data.adding_problem(batch, seq_len, np.random.default_rng(0))
    x = torch.from_numpy(x)
    rows = []
    for label, name, options in models:
        for seed in range(seeds):
            config = {"model": name, "hidden": hidden, "engine": "bptt",
                      **{k: seq_len if v == recipes.SEQ_LEN else v for k, v in options.items()}}
            torch.manual_seed(seed)
            model = training.make_model(config)
            period = slow_period(name, options)
            for step, gradient in enumerate(gradient_profile(model, x)):
                rows.append({"model": label, "seed": seed, "step": step,
                             "distance_to_end": seq_len - 1 - step, "gradient": float(gradient),
                             "slow_period": period,
                             "phase": None if period is None else phase(step, period),
                             "on_slow_tick": None if period is None else phase(step, period) == 0})
    rows = pd.DataFrame(rows)
    for column in ("slow_period", "phase"):
        rows[column] = rows[column].astype("Int64")      # empty for the networks without a clock
    return rows


def windowed(rows, keys=("model",)):
    """Per `keys` (the model, and e.g. whether the step is on the slowest layer's tick) and
    distance d: the gradient averaged over those of its steps that lie d .. d + WINDOW - 1 steps
    back (fewer near the start; NaN where the window holds none), median over the
    initializations."""
    keys = list(keys)
    per_seed = rows.pivot_table(index=[*keys, "seed"], columns="distance_to_end", values="gradient",
                                sort=False).sort_index(axis=1)       # distances 0, 1, 2, ...
    # the window looks back in time: distance d averages d .. d + WINDOW - 1
    smooth = per_seed.T.iloc[::-1].rolling(WINDOW, min_periods=1).mean().iloc[::-1].T
    return smooth.groupby(level=keys[0] if len(keys) == 1 else keys, sort=False).median()


def clocked(rows):
    return rows[rows["slow_period"].notna()]


def number(value):
    return "-" if pd.isna(value) else f"{value:.2g}"


def tick_split(rows):
    """Per clocked model and distance d: (on, off), the windowed gradient of the steps d .. d +
    WINDOW - 1 back that fall on a tick of the slowest layer and of those that do not."""
    split = windowed(clocked(rows), ("model", "on_slow_tick"))
    return {label: (split.loc[(label, True)], split.loc[(label, False)])
            for label in dict.fromkeys(clocked(rows)["model"])}


def tick_table(rows):
    """The tick split at the summary table's distances, 'on / off' in each cell."""
    distances = [d for d in DISTANCES if d in set(rows["distance_to_end"])]
    lines = []
    for label, (on, off) in tick_split(rows).items():
        line = {"model": label}
        for d in distances:
            line[f"{d}-{d + WINDOW - 1} back: on / off"] = f"{number(on[d])} / {number(off[d])}"
        lines.append(line)
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


def by_phase(rows, far=FAR):
    """{label: {phase: gradient}} for the clocked models whose slowest period is above 2: the
    gradient averaged over the steps of each phase at least `far` steps back, median over the
    initializations."""
    slow = clocked(rows)
    slow = slow[(slow["slow_period"] > 2) & (slow["distance_to_end"] >= far)]
    means = slow.groupby(["model", "phase", "seed"], sort=False)["gradient"].mean()
    medians = means.groupby(level=["model", "phase"], sort=False).median()
    return {label: medians.loc[label].sort_index().to_dict() for label in dict.fromkeys(slow["model"])}


def phase_table(rows, far=FAR):
    """by_phase as a table, a column per phase, naming the periods that fire at it."""
    phases = by_phase(rows, far)
    if not phases:
        return ""
    periods = {label: options.get("periods", DEFAULT_PERIODS) for label, name, options in MODELS}
    lines = []
    for label, values in phases.items():
        line = {"model": label}
        for p, value in values.items():
            firing = ",".join(str(t) for t in periods.get(label, DEFAULT_PERIODS) if p % t == 0)
            line[f"phase {p}: {firing}"] = number(value)
        lines.append(line)
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


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
    figure = Figure(figsize=(13.6, 4.6))
    axes, split_axes = figure.subplots(1, 2)
    for i, (label, values) in enumerate(windowed(rows).iterrows()):
        axes.semilogy(values.index, values.values, color=f"C{i % 10}",
                      ls="-" if i < 10 else "--", label=label)
    axes.set_xlabel("distance from the input step to the output (steps)")
    axes.set_ylabel(f"|dy / dx_value|, mean over samples and\n{WINDOW} steps, median over initializations")
    axes.set_title(f"Untrained networks, L = {seq_len}: how much gradient reaches each step", fontsize=9)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=6)
    integrators = {label: split for label, split in tick_split(rows).items() if "integrator" in label}
    for i, (label, (on, off)) in enumerate(integrators.items()):
        split_axes.semilogy(on.index, on.values, color=f"C{i}", label=f"{label}: on the slow tick")
        split_axes.semilogy(off.index, off.values, color=f"C{i}", ls=":", label="off it")
    split_axes.set_xlabel("distance from the input step to the output (steps)")
    split_axes.set_title("The clocked networks started as integrators: steps on a tick of the "
                         "slowest layer\nand off it (a zero gradient is not drawn)", fontsize=9)
    split_axes.grid(alpha=0.3, which="both")
    split_axes.legend(fontsize=6)
    figure.tight_layout()
    report.save_figure(figure, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Measure how much of the output's gradient "
                                                 "reaches each input step in untrained networks.")
    parser.add_argument("--length", type=sequence_length, default=100, help="L (default: %(default)s)")
    parser.add_argument("--seeds", type=positive_int, default=5,
                        help="initializations per model (default: %(default)s)")
    parser.add_argument("--batch", type=positive_int, default=200,
                        help="samples the gradient is averaged over (default: %(default)s)")
    parser.add_argument("--hidden", type=positive_int, default=50, help="units P (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="L = 12, 2 seeds, 10 samples")
    parser.add_argument("--results-dir",
                        help=f"folder of gradient_paths.{{csv,md,png}} (default: {RESULTS_DIR}; for "
                             f"other settings a folder in {OTHER_SETTINGS_DIR} named after them, "
                             f"e.g. L200; with --quick a temporary folder)")
    args = parser.parse_args(argv)
    settings = changed_settings(parser, args, SETTINGS)
    args.results_dir = results_folder(args, OTHER_SETTINGS_DIR if settings else RESULTS_DIR,
                                      settings, "gradient_paths")
    check_writable(args.results_dir)
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.quick:
        args.length, args.seeds, args.batch = 12, 2, 10
    torch.set_num_threads(1)
    rows = measure(args.length, args.seeds, args.batch, args.hidden)
    command = study_command("studies.gradient_paths", argv)
    text = (f"# Gradient paths at initialization\n\nMade by: `{command}`\n\n"
            f"|dy / dx_value[l]| of untrained networks at L = {args.length}, mean over {args.batch} "
            f"samples and over {WINDOW} consecutive steps (the clocked layers read x on some "
            f"steps only), median over {args.seeds} initializations (seeds 0..{args.seeds - 1}), "
            f"P = {args.hidden}; per step and seed: gradient_paths.csv.\n\n{summary_table(rows)}\n\n"
            f"The clocked networks, split by the step's phase against the slowest layer's period T "
            f"(2 for AlarmworkNet, 8 for Clockwork(1,2,4,8)): in each window, on = the mean over "
            f"its steps on a tick of that layer (0-based l % T = 0: AlarmworkNet's 1-based odd "
            f"steps), off = over the others; median over the initializations, '0' where every "
            f"gradient is exactly 0 in float32:\n\n{tick_table(rows)}\n")
    far = min(FAR, args.length // 2)
    phases = phase_table(rows, far)
    if phases:
        text += (f"\nBy phase, mean over the steps at least {far} steps back, median over the "
                 f"initializations; phase p is l % T = p, and its column names the periods of the layers "
                 f"that fire at it:\n\n{phases}\n")
    write_outputs(args.results_dir, "gradient_paths", rows, text,
                  lambda path: plot(rows, path, args.length))


if __name__ == "__main__":
    main()

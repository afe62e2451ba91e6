"""How much slower is the scalar form of Layer_out than the vector form, and why.

    python benchmark_scalar_vs_vector.py            # about a minute; results/scalar_vs_vector.*
    python benchmark_scalar_vs_vector.py --quick    # the whole path in seconds, into a temporary folder

Both forms compute a_out = W_out z + b_out (SPEC.md, section "2. The models"):
the vector form in one product over
the batch, the scalar form one multiply-add at a time in Python loops. Before timing
anything the script checks that both give the same outputs and gradients, and refuses to
report otherwise. Then it times, with torch.utils.benchmark (median and IQR of blocks):

  1. Layer_out alone, forward and forward+backward, at batch 20 and P = 50;
  2. one training step of the whole AlarmworkNet (forward, MSE, backward, SGD step) at
     L = 10 and L = 100, and the projected time of a 50-epoch run of 10,000 samples;
  3. Layer_out forward+backward against batch size and against hidden size.

Every measurement is one row of scalar_vs_vector.csv; the tables (scalar_vs_vector.md)
and the log-log figure (scalar_vs_vector.png) are derived from those rows. Another --threads
writes them into a folder of its own, results/scalar_vs_vector/threads<N>.
"""
import argparse
import os
import shlex
import sys

from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import torch
from tabulate import tabulate
from torch import nn
from torch.utils import benchmark
from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import configs, training
from lib.atomic_files import atomic_write, atomic_write_text, check_writable
from lib.bptt import limit_blas_to_one_thread
from lib.cli_types import positive_int
from lib.machine import blas_threads, cpu_model, load_average
from models import AlarmworkRNN
from studies.common import changed_settings, results_folder

BATCH_SIZE = 20       # the protocol's mini-batch
NUM_HIDDEN = 50       # P
STEPS_PER_EPOCH = 10_000 // BATCH_SIZE
EPOCHS = 50
TOLERANCE = 1e-5      # float32: the two forms sum the same products in a different order
FORMS = ("vector", "scalar")

# The scalar form at batch 100 runs ~0.1-0.2 s a call; 2 s per measurement still gives ten blocks.
FULL = {"min_run_time": 2.0, "seq_lens": (10, 100),
        "batch_sizes": (1, 20, 100), "hidden_sizes": (10, 50, 200)}
QUICK = {"min_run_time": 0.02, "seq_lens": (10, 100),
         "batch_sizes": (1, 20), "hidden_sizes": (10, 50)}
RESULTS_DIR = "results"
OTHER_SETTINGS_DIR = os.path.join(RESULTS_DIR, "scalar_vs_vector")   # of another --threads


# ------------------------------------------------------------------------------ agreement check

class FormsDisagree(Exception):
    """The scalar and vector forms gave different outputs or gradients."""


def twin_models(num_hidden=NUM_HIDDEN, seed=0):
    """(vector, scalar): two AlarmworkRNNs with the same weights, differing only in Layer_out.

    The biases are made non-zero, so a form that drops b_out changes the output too.
    """
    torch.manual_seed(seed)
    vector = AlarmworkRNN(num_hidden=num_hidden, scalar_out=False)
    with torch.no_grad():
        for bias in (vector.b_in1, vector.b_in2, vector.b_out):
            bias.uniform_(-0.1, 0.1)
    scalar = AlarmworkRNN(num_hidden=num_hidden, scalar_out=True, engine=vector.engine)
    scalar.load_state_dict(vector.state_dict())
    return vector, scalar


def adding_batch(batch_size, seq_len, seed=0):
    """One batch of the adding problem as tensors: x (N, L, 2) and t (N, 1)."""
    x, t = data.adding_problem(batch_size, seq_len, np.random.default_rng(seed))
    return torch.from_numpy(x), torch.from_numpy(t).unsqueeze(1)


def check_forms_agree(vector_model, scalar_model, x, t, tolerance=TOLERANCE):
    """Raise FormsDisagree unless both models give the same y and parameter gradients on (x, t).

    Returns the largest absolute difference seen. The models must hold the same weights.
    """
    vector_params = dict(vector_model.named_parameters())
    scalar_params = dict(scalar_model.named_parameters())
    if vector_params.keys() != scalar_params.keys() or not all(
            torch.equal(vector_params[name], scalar_params[name]) for name in vector_params):
        raise ValueError("the two models must hold the same weights "
                         "(load one state_dict into both)")
    results = []
    for model in (vector_model, scalar_model):
        model.zero_grad(set_to_none=True)
        y = model(x)
        nn.functional.mse_loss(y, t).backward()
        results.append({"output y": y.detach(), **{
            f"gradient of {name}": torch.zeros_like(p) if p.grad is None else p.grad  # no path: 0
            for name, p in model.named_parameters()}})
        model.zero_grad(set_to_none=True)
    largest = 0.0
    for what, expected in results[0].items():
        got = results[1][what]
        if got.shape != expected.shape:
            raise FormsDisagree(f"the scalar form's {what} has shape {tuple(got.shape)}, "
                                f"the vector form's {tuple(expected.shape)}")
        difference = (got - expected).abs().max().item()
        if not difference <= tolerance:  # also catches NaN
            raise FormsDisagree(f"the scalar and vector forms of Layer_out disagree: {what} "
                                f"differs by up to {difference:.3g} (tolerance {tolerance:g})")
        largest = max(largest, difference)
    return largest


# ------------------------------------------------------------------------------ what is timed

def layer_out_call(model, form, batch_size, backward):
    """A no-argument function running one form of Layer_out on a (batch, P) input."""
    layer = model.layer_out_scalar if form == "scalar" else model.layer_out
    torch.manual_seed(1)
    z = torch.tanh(torch.randn(batch_size, model.W_out.shape[1])).requires_grad_()  # like z_in1
    if not backward:
        return lambda: layer(z)  # gradients on: the graph is built, as in training
    inputs = (model.W_out, model.b_out, z)
    return lambda: torch.autograd.grad(layer(z).sum(), inputs)


def training_step_call(model, seq_len):
    """A no-argument function running one training step of the protocol on one batch."""
    x, t = adding_batch(BATCH_SIZE, seq_len)
    _, step = training.training_step(configs.run_config("alarmwork", seq_len, 0, None), model)
    return lambda: step(x, t)


def plan(sizes):
    """Every table entry: section, what, batch, hidden, seq_len, form."""
    entries = [("layer_out", what, BATCH_SIZE, NUM_HIDDEN, None)
               for what in ("Layer_out forward", "Layer_out forward+backward")]
    entries += [("training_step", "training step", BATCH_SIZE, NUM_HIDDEN, L)
                for L in sizes["seq_lens"]]
    entries += [("batch_size", "Layer_out forward+backward", N, NUM_HIDDEN, None)
                for N in sizes["batch_sizes"]]
    entries += [("hidden_size", "Layer_out forward+backward", BATCH_SIZE, P, None)
                for P in sizes["hidden_sizes"]]
    return [dict(section=s, what=w, batch=N, hidden=P, seq_len=L, form=form)
            for s, w, N, P, L in entries for form in FORMS]


def measure(entry, threads, min_run_time):
    """Time one entry with blocked_autorange; returns its Measurement and the model's engine."""
    vector, scalar = twin_models(entry["hidden"])
    model = scalar if entry["form"] == "scalar" else vector
    if entry["what"] == "training step":
        call = training_step_call(model, entry["seq_len"])
    else:
        call = layer_out_call(model, entry["form"], entry["batch"],
                              backward=entry["what"].endswith("backward"))
    timer = benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads,
                            label=entry["what"], sub_label=entry["form"])
    return timer.blocked_autorange(min_run_time=min_run_time), model.engine


def run_plan(entries, threads, min_run_time):
    """One row per entry; an entry asked for in two sections is timed once."""
    measured, rows = {}, []
    for entry in tqdm(entries, desc="measurements", leave=False):
        key = tuple(entry[k] for k in ("what", "batch", "hidden", "seq_len", "form"))
        if key not in measured:
            measured[key] = measure(entry, threads, min_run_time)
        m, engine = measured[key]
        whole_model = entry["what"] == "training step"
        projected_run_s = m.median * STEPS_PER_EPOCH * EPOCHS if whole_model else None
        rows.append({**entry, "median_s": m.median, "iqr_s": m.iqr, "blocks": len(m.times),
                     "calls_per_block": m.number_per_run, "projected_run_s": projected_run_s,
                     "engine": engine if whole_model else None, "threads": threads})
    rows = pd.DataFrame(rows)
    rows["seq_len"] = rows["seq_len"].astype("Int64")  # blank where it does not apply
    return rows


# ------------------------------------------------------------------------------ tables

TIME_UNITS = (("h", 3600), ("min", 60), ("s", 1), ("ms", 1e-3), ("µs", 1e-6))


def time_unit(seconds):
    """The largest unit in which `seconds` reads as at least 1 after rounding to 3 digits."""
    return next((unit, scale) for unit, scale in TIME_UNITS
                if seconds >= 0.9995 * scale or unit == "µs")


def significant(value, digits):
    """`value` rounded to `digits` significant digits, written without an exponent: 150, 0.012."""
    return f"{float(f'{value:.{digits}g}'):g}"


def format_seconds(seconds):
    """'4.21 µs', '13.2 ms', '1.5 s', '3.4 min', '1.2 h'."""
    unit, scale = time_unit(seconds)
    return f"{significant(seconds / scale, 3)} {unit}"


def format_time(median, iqr, blocks):
    """'median ± IQR unit', both in the median's unit; no IQR from a single block."""
    unit, scale = time_unit(median)
    if blocks < 2:
        return f"{significant(median / scale, 3)} {unit} (1 block)"
    return f"{significant(median / scale, 3)} ± {significant(iqr / scale, 2)} {unit}"


def format_ratio(ratio):
    """'2,437' from 100 up, '19.9' below."""
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.1f}"


def paired(rows, keys):
    """One row per configuration with the vector and scalar measurements side by side."""
    return pd.merge(rows[rows.form == "vector"], rows[rows.form == "scalar"], on=keys,
                    suffixes=("_vector", "_scalar"))


def times_columns(pair):
    return {"vector": format_time(pair.median_s_vector, pair.iqr_s_vector, pair.blocks_vector),
            "scalar": format_time(pair.median_s_scalar, pair.iqr_s_scalar, pair.blocks_scalar),
            "scalar/vector": format_ratio(pair.median_s_scalar / pair.median_s_vector)}


def markdown_table(table):
    """The cells as formatted above (no re-parsing of numbers); measured columns right-aligned."""
    return tabulate(table, headers="keys", tablefmt="github", disable_numparse=True,
                    colalign=["left"] + ["right"] * (len(table[0]) - 1))


def tables(rows):
    """The three sections as Markdown tables, each under a heading."""
    parts = []
    section = paired(rows[rows.section == "layer_out"], ["what"])
    parts.append((f"1. Layer_out alone (batch {BATCH_SIZE}, P = {NUM_HIDDEN}), "
                  "median ± IQR per call",
                  [{"pass": p.what.removeprefix("Layer_out "), **times_columns(p)}
                   for p in section.itertuples()]))
    section = paired(rows[rows.section == "training_step"], ["seq_len"])
    engines = ", ".join(sorted(set(section.engine_vector) | set(section.engine_scalar)))
    parts.append((f"2. One training step of AlarmworkNet (batch {BATCH_SIZE}, P = {NUM_HIDDEN}, "
                  f"engine {engines}), and a {EPOCHS}-epoch run of "
                  f"{STEPS_PER_EPOCH * BATCH_SIZE:,} samples projected from it",
                  [{"L": p.seq_len, **times_columns(p),
                    f"{EPOCHS} epochs, vector": format_seconds(p.projected_run_s_vector),
                    f"{EPOCHS} epochs, scalar": format_seconds(p.projected_run_s_scalar)}
                   for p in section.itertuples()]))
    for name, column, fixed in (("batch_size", "batch", f"P = {NUM_HIDDEN}"),
                                ("hidden_size", "hidden", f"batch {BATCH_SIZE}")):
        section = paired(rows[rows.section == name], ["batch", "hidden"])
        parts.append((f"3{'ab'[name == 'hidden_size']}. Layer_out forward+backward against "
                      f"{name.replace('_', ' ')} ({fixed})",
                      [{column: getattr(p, column), "multiply-adds N·P": p.batch * p.hidden,
                        **times_columns(p)} for p in section.itertuples()]))
    return "\n\n".join(f"### {title}\n\n{markdown_table(table)}" for title, table in parts)



# ------------------------------------------------------------------------------ machine and files

def header(argv, threads, min_run_time, largest_difference, load_before):
    """The command and the machine, so that the tables can be read and reproduced."""
    command = shlex.join(["python", "benchmark_scalar_vs_vector.py", *argv])
    return (f"`{command}` — CPU: {cpu_model()} ({os.cpu_count()} logical cores, "
            f"load average {load_before} before the run), "
            f"{threads} torch thread{'s' * (threads != 1)} (NumPy BLAS: {blas_threads()}), "
            f"torch {torch.__version__}, "
            f"blocked_autorange(min_run_time={min_run_time:g} s) per measurement\n\n"
            f"Both forms agree before timing: outputs and the gradients of all parameters "
            f"differ by at most {largest_difference:.2g} (float32, tolerance {TOLERANCE:g}).")


def plot(rows, path):
    """Log-log time of Layer_out forward+backward against batch size and against hidden size."""
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (name, column, label, fixed) in zip(axes, (
            ("batch_size", "batch", "batch size N", f"P = {NUM_HIDDEN}"),
            ("hidden_size", "hidden", "hidden size P", f"batch {BATCH_SIZE}"))):
        section = paired(rows[rows.section == name], ["batch", "hidden"]).sort_values(column)
        for form, marker in (("scalar", "o"), ("vector", "s")):
            ax.plot(section[column], section[f"median_s_{form}"], marker=marker,
                    label=f"{form} form")
        for p in section.itertuples():  # the ratio above each scalar point
            ax.annotate(f"×{format_ratio(p.median_s_scalar / p.median_s_vector)}",
                        (getattr(p, column), p.median_s_scalar), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(section[column], [str(size) for size in section[column]])
        ax.minorticks_off()
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_title(f"against {label} ({fixed})")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center right")
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(low, high * 3)  # room for the ratio labels
    axes[0].set_ylabel("median time per call (s, log scale)")
    fig.suptitle("Layer_out forward+backward, scalar vs vector form (×: scalar/vector time)")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), binary=True)


def write_results(results_dir, rows, text):
    """scalar_vs_vector.csv, .md and .png under `results_dir`; returns their paths."""
    base = os.path.join(results_dir, "scalar_vs_vector")
    atomic_write_text(base + ".csv", rows.to_csv(index=False))
    atomic_write_text(base + ".md", f"# Scalar vs vector Layer_out\n\n{text}\n")
    plot(rows, base + ".png")
    return [base + ext for ext in (".csv", ".md", ".png")]


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time the scalar and the vector form of AlarmworkNet's Layer_out "
                    "(alone, in a training step, and against batch and hidden size).")
    parser.add_argument("--quick", action="store_true",
                        help="the whole path in a few seconds: short measurements, fewer sizes "
                             "(numbers are rough)")
    parser.add_argument("--results-dir",
                        help=f"folder of scalar_vs_vector.csv, .md and .png (default: {RESULTS_DIR}; "
                             f"for other settings a folder in {OTHER_SETTINGS_DIR} named after them, "
                             f"e.g. threads2; with --quick a temporary folder)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads while timing (default: %(default)s)")
    args = parser.parse_args(argv)
    settings = changed_settings(parser, args, {"threads": "threads"})
    args.results_dir = results_folder(args, OTHER_SETTINGS_DIR if settings else RESULTS_DIR,
                                      settings, "scalar_vs_vector")
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else map(str, argv))
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    limit_blas_to_one_thread()       # the engine's NumPy products, as in every training run
    try:
        largest_difference = check_forms_agree(*twin_models(), *adding_batch(4, 10))
    except FormsDisagree as error:
        sys.exit(f"error: {error}; not timing forms that compute different things")
    check_writable(args.results_dir)                  # fail now, not after the timing

    load_before = load_average()  # other work on the machine shows in the medians and IQRs
    rows = run_plan(plan(sizes), args.threads, sizes["min_run_time"])
    text = "\n\n".join([header(argv, args.threads, sizes["min_run_time"], largest_difference,
                               load_before), tables(rows)])
    print(text)
    try:
        paths = write_results(args.results_dir, rows, text)
    except OSError as error:
        sys.exit(f"error: cannot write results to '{args.results_dir}' ({error})")
    print(f"\nwritten: {', '.join(paths)}")


if __name__ == "__main__":
    main()

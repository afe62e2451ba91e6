"""Epoch time of every model at every length on one CPU thread, and how far from the hardware.

    python -m studies.benchmark_training_speed            # L = 10 50 70 100, about a minute
    python -m studies.benchmark_training_speed --quick    # the whole path in seconds, into a temporary folder
    python -m studies.benchmark_training_speed --models alarmwork_bptt --lengths 100
    python -m studies.benchmark_training_speed --models alarmwork_bptt alarmwork_all \
        clockwork_bptt clockwork_all --lengths 100 1000    # the all-wired networks (SPEC.md, section 7)

Every model trains on the same fixed batches (batch 20, P = 50) with the protocol's step,
experiment/training.py's `training_step` under the assignment's recipe (zero_grad, forward,
MSE, backward, gradient norm, SGD lr 0.01 momentum 0.9). The models take turns: in each repeat every
model runs a block of K steps, so machine noise hits them alike. The epoch time is the
median per-step time over the repeats x 500 steps (10,000 samples / batch 20).

Besides the time, the table gives the ratio to nn.LSTM at the same length and, for
AlarmworkNet and Clockwork(1,2,4,8), the GFLOP/s achieved against their arithmetic
(`alarmwork_flops`, `clockwork_flops`) and the
fraction of a nominal single-core peak that is.

Subnormal floats (below 1.2e-38 in float32) are computed as such, as in training, and on
some CPUs an operation on one costs many times a normal one: where a gradient vanishes
through hundreds of steps (nn.LSTM at L = 1000) or a network drifts into them while it trains
on the timed batches, they, not the engine, can set the time. --flush-denormal times the same
steps with them flushed to zero (torch.set_flush_denormal, the CPU's FTZ/DAZ flags, which
NumPy's loops obey too): the engines' cost without that penalty.

Both clocked networks are timed in the assignment's wiring (a layer reads itself and the
slower layers) and, on the hand-derived engine, in the wiring in which every layer reads every
layer (wiring="all", SPEC.md section 7; "AlarmworkNet all-wired", as the reports name it).

The default timing writes training_speed.csv, training_speed_calls.csv and training_speed.md
into results/; other settings write into a folder of their own in results/training_speed,
named after them (--models alarmwork_bptt --lengths 100: alarmwork_bptt_L100).
"""
import argparse
import math
import os
import shlex
import sys
import time
import timeit

import numpy as np
import pandas as pd
import torch
from tabulate import tabulate

import generate_data_adding_problem as data
from experiment import configs, training
from experiment.recipes import RECIPES
from lib.atomic_files import atomic_write_text, check_writable
from lib.bptt import check_wiring, limit_blas_to_one_thread
from lib.cli_types import positive_float, positive_int, sequence_length
from lib.machine import blas_threads, cpu_model
from models import DEFAULT_PERIODS, build_model
from studies.common import changed_settings, results_folder

ASSIGNMENT = RECIPES["assignment"]   # the recipe every model is timed with

BATCH_SIZE = 20
NUM_HIDDEN = 50       # P
NUM_INPUTS = 2
STEPS_PER_EPOCH = 10_000 // BATCH_SIZE

# Nominal peak of one AVX2 core in float32: 2 FMA units x 8 lanes x 2 flops x ~3 GHz.
# A figure from the data sheet's arithmetic, not a measurement; set --peak-gflops for yours.
NOMINAL_PEAK_GFLOPS = 2 * 8 * 2 * 3.0

# Command-line name: (display name, registry name in models.py, engine, wiring).
ENTRIES = {
    "simple_rnn": ("SimpleRNN", "simple_rnn", "nn.RNN", "slower"),
    "lstm": ("LSTM", "lstm", "nn.LSTM", "slower"),
    "alarmwork_bptt": ("AlarmworkNet", "alarmwork", "bptt", "slower"),
    "alarmwork_autograd": ("AlarmworkNet", "alarmwork", "autograd", "slower"),
    "clockwork_bptt": ("Clockwork(1,2,4,8)", "clockwork", "bptt", "slower"),
    "clockwork_autograd": ("Clockwork(1,2,4,8)", "clockwork", "autograd", "slower"),
    "alarmwork_all": ("AlarmworkNet all-wired", "alarmwork", "bptt", "all"),
    "clockwork_all": ("Clockwork(1,2,4,8) all-wired", "clockwork", "bptt", "all"),
}
CLOCKWORK_PERIODS = DEFAULT_PERIODS
PERIODS = {"alarmwork": (1, 2), "clockwork": CLOCKWORK_PERIODS}   # the hand-written models
REFERENCE = "lstm"    # the "x LSTM" column divides by this entry's step time

FULL = {"lengths": [10, 50, 70, 100], "repeats": 21, "steps": 40, "calls": 20_000}
RESULTS_DIR = "results"
OTHER_SETTINGS_DIR = os.path.join(RESULTS_DIR, "training_speed")
# the options that set a timing's files apart, and their names in its folder
SETTINGS = {"models": "", "lengths": "L", "repeats": "repeats", "steps": "steps",
            "peak_gflops": "peak", "flush_denormal": "flushed"}
QUICK = {"lengths": [4, 10], "repeats": 3, "steps": 3, "calls": 200}


# ------------------------------------------------------------------------------ arithmetic

def alarmwork_flops(seq_len, batch, hidden, inputs=NUM_INPUTS, outputs=1, wiring="slower"):
    """Floating-point operations of one AlarmworkNet training step (forward, backward, SGD).

    The clockwork count below with periods (1, 2); this docstring spells that case out.

    Counted from the equations of SPEC.md, section "2. The models",
    not from what an engine happens to do:
    a product of an (n x k) by a (k x m) matrix is 2*n*k*m flops; every elementwise
    add, subtract, multiply, and every tanh, is 1 flop per element (tanh costs more
    cycles than that, so the GFLOP/s derived from this count is on the low side).
    With N = batch, P = hidden, I = inputs, F = ceil(L/2) steps on which Layer_rec2 fires:

    forward, per step of Layer_rec1 (L of them) and of Layer_rec2 (F of them):
        W x + b               2*N*I*P + N*P
        W_rec z               2*N*P*P, + N*P to add the projection, + N*P for tanh
        z_in12 = z_in1 + z_in2  N*P                    (Layer_rec1 steps only)
    backward, per step of Layer_rec1 / Layer_rec2:
        d = g * (1 - z^2)     3*N*P
        W_rec^T d, dE/dW_rec  2 x 2*N*P*P              (gradient wrt the state and the weight)
        dE/dW_in, dE/db       2*N*I*P + N*P            (x needs no gradient)
        g2 += ...             N*P                      (Layer_rec1 steps only)
    Layer_out and loss: forward 2*N*P*O + N*O + N*O (tanh) + 3*N (MSE: subtract, square, sum);
        backward N (dE/dy) + 3*N*O (tanh) + 2 x 2*N*P*O + N*O.
    SGD with momentum: 4 flops per parameter (buf = m*buf + g; p -= lr*buf), `optimizer_flops`.
    The products with the zero initial state (step 0) are counted like any other step.
    With wiring="all" Layer_rec2 reads z_in12 too, which `clockwork_flops` counts.
    """
    return clockwork_flops(seq_len, batch, hidden, (1, 2), inputs, outputs, wiring)


def clockwork_flops(seq_len, batch, hidden, periods, inputs=NUM_INPUTS, outputs=1,
                    wiring="slower"):
    """Floating-point operations of one training step of a clockwork network of K layers.

    Counted as `alarmwork_flops` says, per layer k on its F_k = ceil(L / T_k) firing steps;
    the sum s_k of the K - k states it reads costs (K - 1 - k) adds per element forward,
    and as many backward, where its gradient reaches every one of those states.

    With wiring="all" (SPEC.md, section 7) every fired layer reads the same sum s_0 of all K
    states, formed once a step: K - 1 adds per element forward at each of the L steps, and
    K - 1 backward, where G_j[l-1] = sum_(k fired) ds_k[l] (+ G_j[l] for a copied j): the
    |F(l)| - 1 adds of the shared sum and one for each of the K - |F(l)| copied layers. The
    products are those of the assignment's wiring, a W_rec_k s per firing either way.
    """
    N, P, I, O, K = batch, hidden, inputs, outputs, len(periods)
    read_all = check_wiring(wiring) == "all"
    projection = 2 * N * I * P + N * P
    recurrence = 2 * N * P * P + 2 * N * P
    recurrence_back = 3 * N * P + 2 * (2 * N * P * P)
    forward = backward = 0
    for k, period in enumerate(periods):
        F_k, sums = math.ceil(seq_len / period), (K - 1 - k) * N * P
        if read_all:                                   # s_0 is counted once a step, below
            sums = 0
        forward += F_k * (projection + recurrence + sums)
        backward += F_k * (recurrence_back + projection + sums)
    if read_all:
        forward += seq_len * (K - 1) * N * P
        backward += seq_len * (K - 1) * N * P
    head = (2 * N * P * O + 2 * N * O + 3 * N) + (N + 3 * N * O + 2 * (2 * N * P * O) + N * O)
    return forward + backward + head + optimizer_flops(P, I, O, K)


def optimizer_flops(hidden, inputs=NUM_INPUTS, outputs=1, layers=2):
    """SGD with momentum: 4 flops per parameter of the network, whatever the batch."""
    P, I, O = hidden, inputs, outputs
    return 4 * (layers * (P * I + P * P + P) + O * P + O)


# ------------------------------------------------------------------------------ timing

def fixed_batches(seq_len, num_batches, batch_size=BATCH_SIZE):
    """The batches every model trains on: x (N, L, 2) and t (N, 1), drawn once from seed 0."""
    x, t = data.adding_problem(num_batches * batch_size, seq_len, np.random.default_rng(0))
    x, t = torch.from_numpy(x), torch.from_numpy(t).unsqueeze(1)
    return [(x[i:i + batch_size], t[i:i + batch_size])
            for i in range(0, len(x), batch_size)]


def training_step(model, name, wiring="slower"):
    """One step of training.train_run's inner loop under the assignment's recipe, as a
    function of the batch (x, t); returns the loss."""
    config = configs.run_config(name, 10, 0, None, wiring=wiring)
    _, step = training.training_step(config, model)
    return lambda x, t: step(x, t)[0].item()


def time_block(step, batches, steps):
    """Seconds per step over `steps` consecutive steps through `batches`."""
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return (time.perf_counter() - start) / steps


def time_length(names, seq_len, repeats, steps):
    """Per-step times {name: [seconds per step of each repeat]} of every model at one length.

    Each model gets its own copy of the same initial weights' seed and trains on the same
    batches; one untimed block first, then the models take turns, the order rotating by one
    each repeat so that none is always first after a slow neighbour.
    """
    batches = fixed_batches(seq_len, steps)
    runs = {}
    for name in names:
        _, registry_name, engine, wiring = ENTRIES[name]
        torch.manual_seed(0)
        model = build_model(registry_name, NUM_HIDDEN, engine if registry_name in PERIODS
                            else "bptt", periods=PERIODS.get(registry_name), wiring=wiring)
        runs[name] = training_step(model, registry_name, wiring)
        time_block(runs[name], batches, steps)  # warm-up: allocations, first calls
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(time_block(runs[name], batches, steps))
    return times


def measure(names, lengths, repeats, steps, peak_gflops, flush_denormal=False):
    """One row per model and length: median step time, its spread, epoch time, ratios;
    `flush_denormal` says in each row whether subnormals were flushed to zero (the caller
    sets that)."""
    rows = []
    for seq_len in lengths:
        times = time_length(names, seq_len, repeats, steps)
        for name in names:
            display, registry_name, engine, wiring = ENTRIES[name]
            step_s = float(np.median(times[name]))
            flops = clockwork_flops(seq_len, BATCH_SIZE, NUM_HIDDEN, PERIODS[registry_name],
                                    wiring=wiring) if registry_name in PERIODS else None
            rows.append({
                "model": display, "engine": engine, "wiring": wiring if registry_name in PERIODS
                else None, "seq_len": seq_len,
                "step_ms": 1e3 * step_s,
                "step_ms_min": 1e3 * min(times[name]), "step_ms_max": 1e3 * max(times[name]),
                "repeats": repeats, "steps_per_repeat": steps, "flush_denormal": flush_denormal,
                "epoch_s": step_s * STEPS_PER_EPOCH,
                # paired by repeat: both times of a ratio come from the same moment's load
                "ratio_to_lstm": float(np.median(np.divide(times[name], times[REFERENCE]))),
                "flops_per_step": flops,
                "gflops": flops / step_s / 1e9 if flops else None,
                "peak_fraction": flops / step_s / 1e9 / peak_gflops if flops else None,
            })
    rows = pd.DataFrame(rows)
    rows["flops_per_step"] = rows.flops_per_step.astype("Int64")
    return rows[["model", "engine", "wiring", "seq_len", "step_ms", "step_ms_min", "step_ms_max",
                 "repeats", "steps_per_repeat", "flush_denormal", "epoch_s", "ratio_to_lstm",
                 "flops_per_step", "gflops", "peak_fraction"]]


# ------------------------------------------------------------------------------ cost of one call

def call_costs(calls, repeats):
    """Microseconds per call of the recurrence loop's operations, NumPy against torch.

    On the loop's shapes (batch 20 x P = 50) every call is mostly fixed overhead, and the
    loop makes a handful of them per time step: this is why bptt.py loops in NumPy.
    Median over `repeats` timings of `calls` calls each.
    """
    rng = np.random.default_rng(0)
    a, b, out = (rng.standard_normal((BATCH_SIZE, NUM_HIDDEN), dtype=np.float32) for _ in range(3))
    w = rng.standard_normal((NUM_HIDDEN, NUM_HIDDEN), dtype=np.float32)
    ta, tb, tout, tw = (torch.from_numpy(v) for v in (a, b, out, w))
    operations = {
        "matrix product z @ W": (lambda: np.dot(a, w), lambda: torch.mm(ta, tw)),
        "add, into a buffer": (lambda: np.add(a, b, out=out), lambda: torch.add(ta, tb, out=tout)),
        "multiply, into a buffer": (lambda: np.multiply(a, b, out=out),
                                    lambda: torch.mul(ta, tb, out=tout)),
        "tanh, into a buffer": (lambda: np.tanh(a, out=out), lambda: torch.tanh(ta, out=tout)),
    }
    rows = []
    for name, (numpy_call, torch_call) in operations.items():
        numpy_us, torch_us = (
            1e6 * float(np.median(timeit.repeat(call, number=calls, repeat=repeats))) / calls
            for call in (numpy_call, torch_call))
        rows.append({"operation": name, "numpy_us": numpy_us, "torch_us": torch_us,
                     "torch_over_numpy": torch_us / numpy_us})
    return pd.DataFrame(rows)


def call_costs_table(costs):
    lines = [{"operation (20 x 50, float32)": r.operation, "NumPy (µs)": f"{r.numpy_us:.2f}",
              "torch (µs)": f"{r.torch_us:.2f}", "torch / NumPy": f"{r.torch_over_numpy:.1f}"}
             for r in costs.itertuples()]
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


# ------------------------------------------------------------------------------ tables

def table(rows):
    """The Markdown table: one line per model and length."""
    def optional(value, fmt):
        return "" if pd.isna(value) else format(value, fmt)
    lines = [{
        "model": r.model, "engine": r.engine, "L": r.seq_len,
        "step (ms)": f"{r.step_ms:.3g}",
        "min–max (ms)": f"{r.step_ms_min:.3g}–{r.step_ms_max:.3g}",
        "epoch (s)": f"{r.epoch_s:.3g}",
        "x LSTM": f"{r.ratio_to_lstm:.2f}",
        "GFLOP/s": optional(r.gflops, ".2f"),
        "% of peak": optional(100 * r.peak_fraction, ".1f"),
    } for r in rows.itertuples()]
    return tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True)


def caption(argv, repeats, steps, peak_gflops, flush_denormal=False):
    """The command, the machine and how to read the numbers."""
    command = shlex.join(["python", "-m", "studies.benchmark_training_speed", *argv])
    subnormals = ("subnormal floats flushed to zero (FTZ/DAZ)" if flush_denormal
                  else "subnormal floats computed as such, as in training")
    return (
        f"`{command}` — CPU: {cpu_model()} ({os.cpu_count()} logical cores), "
        f"{torch.get_num_threads()} torch thread (NumPy BLAS: {blas_threads()}), "
        f"torch {torch.__version__}, {subnormals}.\n\n"
        f"One training step = zero_grad, forward, MSE, backward, gradient norm, SGD(lr "
        f"{ASSIGNMENT['lr']}, momentum {ASSIGNMENT['momentum']}) step on a batch of {BATCH_SIZE}, P = {NUM_HIDDEN}; every model on the "
        f"same fixed batches. Each of {repeats} repeats times a block of {steps} steps of "
        f"every model in turn. step = median over the repeats of the time per step; "
        f"min–max = its range over the repeats; epoch = median step time × "
        f"{STEPS_PER_EPOCH} (10,000 samples / batch {BATCH_SIZE}); x LSTM = median over the "
        f"repeats of (step time / nn.LSTM's step time in the same repeat), same L. GFLOP/s = flops of one step by "
        f"`clockwork_flops` (the same arithmetic for both engines, each wiring its own) / median step time; "
        f"% of peak against a nominal single-core peak of {peak_gflops:g} GFLOP/s "
        f"(default: 2 FMA units × 8 float32 lanes × 2 flops × 3 GHz; not measured).")


def write_results(results_dir, rows, costs, text):
    """training_speed.csv, training_speed_calls.csv and .md under `results_dir`; their paths."""
    base = os.path.join(results_dir, "training_speed")
    atomic_write_text(base + ".csv", rows.to_csv(index=False))
    atomic_write_text(base + "_calls.csv", costs.to_csv(index=False))
    atomic_write_text(base + ".md", f"# Training speed\n\n{text}\n")
    return [base + ".csv", base + "_calls.csv", base + ".md"]


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time one training epoch of SimpleRNN, LSTM, AlarmworkNet and "
                    "Clockwork(1,2,4,8) (both engines; and all-wired, every layer reading "
                    "every layer, on the hand-derived engine) at each sequence length, on one "
                    "CPU thread.")
    parser.add_argument("--quick", action="store_true",
                        help="the whole path in seconds: L = "
                             f"{' '.join(map(str, QUICK['lengths']))}, "
                             f"{QUICK['repeats']} repeats of {QUICK['steps']} steps "
                             "(numbers are rough)")
    parser.add_argument("--models", nargs="+", choices=list(ENTRIES), default=list(ENTRIES),
                        metavar="MODEL",
                        help=f"models to time, from {', '.join(ENTRIES)} (default: all); "
                             "lstm is always timed too, as the reference of 'x LSTM'")
    parser.add_argument("--lengths", type=sequence_length, nargs="+", metavar="L",
                        help=f"sequence lengths (default: {' '.join(map(str, FULL['lengths']))}; "
                             f"with --quick {' '.join(map(str, QUICK['lengths']))})")
    parser.add_argument("--repeats", type=positive_int, metavar="R",
                        help=f"timed blocks per model and length (default: {FULL['repeats']}; "
                             f"with --quick {QUICK['repeats']})")
    parser.add_argument("--steps", type=positive_int, metavar="K",
                        help=f"training steps per block (default: {FULL['steps']}; "
                             f"with --quick {QUICK['steps']})")
    parser.add_argument("--peak-gflops", type=positive_float, default=NOMINAL_PEAK_GFLOPS,
                        metavar="GFLOPS",
                        help="nominal single-core float32 peak the achieved GFLOP/s is "
                             "compared with (default: %(default)g, one AVX2 core with two "
                             "FMA units at 3 GHz)")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="flush subnormal floats to zero while timing (the CPU's FTZ/DAZ "
                             "flags, for torch and NumPy alike); training does not, so by default "
                             "they are computed as such")
    parser.add_argument("--results-dir",
                        help=f"folder of training_speed.csv and .md (default: {RESULTS_DIR}; for "
                             f"other settings a folder in {OTHER_SETTINGS_DIR} named after them, "
                             f"e.g. alarmwork_bptt_L100; with --quick a temporary folder)")
    args = parser.parse_args(argv)
    settings = changed_settings(parser, args, SETTINGS)
    args.results_dir = results_folder(args, OTHER_SETTINGS_DIR if settings else RESULTS_DIR,
                                      settings, "training_speed")
    defaults = QUICK if args.quick else FULL
    args.calls = defaults["calls"]
    for key in ("lengths", "repeats", "steps"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    args.models = [name for name in ENTRIES if name in args.models or name == REFERENCE]
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else map(str, argv))
    args = parse_args(argv)
    torch.set_num_threads(1)
    limit_blas_to_one_thread()       # as in every training run
    check_writable(args.results_dir)                  # fail now, not after the timing

    if args.flush_denormal:
        torch.set_flush_denormal(True)
    try:
        rows = measure(args.models, args.lengths, args.repeats, args.steps, args.peak_gflops,
                       args.flush_denormal)
        costs = call_costs(args.calls, args.repeats)
    finally:
        torch.set_flush_denormal(False)              # training's default, for what runs next
    text = "\n\n".join([
        caption(argv, args.repeats, args.steps, args.peak_gflops, args.flush_denormal), table(rows),
        f"Cost of one call on the recurrence loop's shapes (median of {args.repeats} timings "
        f"of {args.calls} calls):", call_costs_table(costs)])
    print(text)
    try:
        paths = write_results(args.results_dir, rows, costs, text)
    except OSError as error:
        sys.exit(f"error: cannot write results to '{args.results_dir}' ({error})")
    print(f"\nwritten: {', '.join(paths)}")


if __name__ == "__main__":
    main()

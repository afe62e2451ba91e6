"""What the ladders under a candidate recipe cost: epoch times, subnormals, memory, CPU hours.

    python -m studies.recipe_cost                 # the three ladders' networks, a few minutes
    python -m studies.recipe_cost --quick         # the whole path in seconds, into a temporary folder

The networks are the ladders' of the recipe sweep (studies/sweep_recipes.py): the all-wired
AlarmworkNet, the all-wired Clockwork(1,2,4,8) and the ReLU SimpleRNN, each under the
integrator recipe with a candidate's settings added (--candidate; its warm-up, eps and early
end of a frozen run). Four measurements, on one CPU thread:

1. Epoch time at each length: the run's own training step (experiment/training.py's
   `training_step`: the candidate's optimizer, warm-up and clipping) from the recipe's start on
   fixed batches, the networks taking turns block by block so that the machine's load hits
   them alike; epoch = median time per step x 500 steps (10,000 samples in batches of 20).
2. Subnormals at L = 1000 (--subnormal-length): the same steps with subnormal floats flushed to
   zero (torch.set_flush_denormal, the CPU's FTZ/DAZ flags) and computed as such, in
   alternating blocks on two copies of one network, so that each copy trains as it would;
   speed-up = median over the repeats of (unflushed / flushed time of the same repeat). From
   the recipe's start, and from a trained network: the weights kept by the network's first
   saved sweep run at L = 2000 that reached 95 % on dev data, where one is saved.
3. Memory at L = 10,000 (--memory-length): the peak resident memory of one training step in a
   process of its own, above that of the process before the step; and the size of a data set
   at that length in memory (what train_run holds: its three splits as float32).
4. The plan: CPU hours of every rung of every ladder at the budget's bound (5 seeds x 50
   epochs x the epoch time), longest first: a run that stops early, or ends frozen, costs less.
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import resource
import shlex
import sys

import numpy as np
import pandas as pd
import torch
from tabulate import tabulate
from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import configs, runs, training
from experiment.networks import load_network
from experiment.stats import SOLVED_ACCURACY
from lib.atomic_files import atomic_write_text, check_writable
from lib.bptt import limit_blas_to_one_thread
from lib.cli_types import positive_int, sequence_length
from lib.machine import cpu_model, load_average
from studies.benchmark_training_speed import STEPS_PER_EPOCH, fixed_batches, time_block
from studies.common import changed_settings, parse_model, results_folder
from studies.reach import DEFAULT_LENGTHS
from studies.sweep_recipes import BASE, CANDIDATES, MODELS
from studies.sweep_recipes import RESULTS_DIR as SWEEP_DIR

LENGTHS = (*DEFAULT_LENGTHS, 10_000)    # the ladders' rungs, and the one above 5000
SEEDS_PER_RUNG, EPOCHS = 5, 50          # the budget of a rung
TRAINED_FROM = 2000                     # the sweep length whose kept weights are timed
# the control of the subnormal timing: the all-wired AlarmworkNet under the assignment's
# recipe at L = 100, whose backward pass reaches subnormals within a few hundred steps and
# whose step they slowed 4x on an Intel Xeon (results/README.md, "Training speed")
CONTROL = ("alarmwork:all", "assignment", 100)
SOLVED_DEV = SOLVED_ACCURACY           # a sweep run that learned its length, on dev data
RESULTS_DIR = os.path.join("results", "reach", "recipe_cost")
FULL = {"lengths": list(LENGTHS), "repeats": 5, "step_seconds": 0.6, "subnormal_length": 1000,
        "memory_length": 10_000}
QUICK = {"lengths": [10, 20], "repeats": 2, "step_seconds": 0.02, "subnormal_length": 20,
         "memory_length": 50}    # and each step's memory measured in this process


# ------------------------------------------------------------------------------ one network

def candidate_config(spec, seq_len, candidate, seed=0):
    """The configuration of a run of `spec` at `seq_len` under the candidate (no data set: the
    timing draws its own batches)."""
    return configs.run_config(spec.name, seq_len, seed, None, BASE, wiring=spec.wiring,
                              **CANDIDATES[candidate])


def start_network(config):
    """The network of `config` as its run starts it (the run's seed), on the CPU."""
    torch.manual_seed(config["seed"])
    return training.make_model(config)


def stepper(config, model):
    """step(x, t): one training step of the run on `model`."""
    _, step = training.training_step(config, model)
    return step


def steps_per_block(seq_len, step_seconds):
    """Steps in a timed block: about `step_seconds` of work, at 1 ms a step and 1.5 us a sample
    step (the all-wired networks on this project's machine), and at least 2."""
    return max(2, int(step_seconds / (1e-3 + 1.5e-6 * seq_len * 20)))


# ------------------------------------------------------------------------------ 1. epoch times

def epoch_times(specs, lengths, candidate, repeats, step_seconds):
    """One row per network and length: median seconds per step over the repeats, and the epoch."""
    rows = []
    for seq_len in tqdm(lengths, desc="epoch times", unit="L", leave=False):
        steps = steps_per_block(seq_len, step_seconds)
        batches = fixed_batches(seq_len, steps)
        steppers = {}
        for spec in specs:
            config = candidate_config(spec, seq_len, candidate)
            steppers[spec] = stepper(config, start_network(config))
            time_block(steppers[spec], batches, 1)          # first calls, allocations
        times = {spec: [] for spec in specs}
        for r in range(repeats):
            for spec in specs[r % len(specs):] + specs[:r % len(specs)]:
                times[spec].append(time_block(steppers[spec], batches, steps))
        for spec in specs:
            step_s = float(np.median(times[spec]))
            rows.append({"model": str(spec), "seq_len": seq_len, "steps_per_block": steps,
                         "repeats": repeats, "step_ms": 1e3 * step_s,
                         "step_ms_min": 1e3 * min(times[spec]),
                         "step_ms_max": 1e3 * max(times[spec]),
                         "epoch_s": step_s * STEPS_PER_EPOCH})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ 2. subnormals

def trained_record(spec, candidate, sweep_dir):
    """The path of the record of the network's first sweep run (by seed) at TRAINED_FROM under
    `candidate` whose dev accuracy reached SOLVED_DEV and whose weights are kept, or None."""
    folder = os.path.join(sweep_dir, f"L{TRAINED_FROM}", "runs")
    for path, record in sorted(runs.records_in(folder), key=lambda found: found[1]["config"]["seed"]):
        config = candidate_config(spec, TRAINED_FROM, candidate, record["config"]["seed"])
        if (configs.same_run({**config, "data": record["config"]["data"]}, record["config"])
                and "weights_file" in record and (record["dev_accuracy"] or 0) >= SOLVED_DEV):
            return path
    return None


class FlushUnsupported(RuntimeError):
    """A CPU without the flags that flush subnormals to zero, in one line."""


def flush_speedup(config, model, seq_len, repeats, step_seconds):
    """(unflushed ms, flushed ms, speed-up) of training steps of `model` under `config` at
    `seq_len`: two copies of the network train in alternating blocks, one with subnormals
    flushed to zero; the speed-up is the median of the repeats' paired ratios."""
    steps = steps_per_block(seq_len, step_seconds)
    batches = fixed_batches(seq_len, steps)
    copies = {}
    for flushed in (False, True):
        twin = training.make_model(config)
        twin.load_state_dict(model.state_dict())
        copies[flushed] = stepper(config, twin)
    times = {False: [], True: []}
    try:
        for r in range(repeats + 1):                 # the first round is untimed
            for flushed in ((False, True) if r % 2 else (True, False)):
                if not torch.set_flush_denormal(flushed) and flushed:
                    raise FlushUnsupported("this CPU cannot flush subnormals to zero (no "
                                           "FTZ/DAZ): there is no speed-up to measure")
                seconds = time_block(copies[flushed], batches, steps)
                if r:
                    times[flushed].append(seconds)
    finally:
        torch.set_flush_denormal(False)              # training's default
    ratio = float(np.median(np.divide(times[False], times[True])))
    return 1e3 * float(np.median(times[False])), 1e3 * float(np.median(times[True])), ratio


def subnormal_rows(specs, seq_len, candidate, repeats, step_seconds, sweep_dir, control=True):
    """One row per network and start: the candidate's start, a trained network where the sweep
    kept one; and, with `control`, the case in which subnormals were seen to cost time on
    another CPU (CONTROL), so that a speed-up of 1 here tells this CPU's cost from the runs'."""
    rows = []
    if control:
        spec_text, recipe, length = CONTROL
        spec = parse_model(spec_text)
        config = configs.run_config(spec.name, length, 0, None, recipe, wiring=spec.wiring)
        unflushed, flushed, ratio = flush_speedup(config, start_network(config), length, repeats,
                                                  step_seconds)
        rows.append({"model": spec_text, "recipe": recipe, "seq_len": length,
                     "start": f"the {recipe} recipe's start (control)",
                     "step_ms_unflushed": unflushed, "step_ms_flushed": flushed,
                     "speedup": ratio})
    for spec in specs:
        config = candidate_config(spec, seq_len, candidate)
        starts = [("the recipe's start", start_network(config))]
        record_path = trained_record(spec, candidate, sweep_dir)
        if record_path:
            trained = load_network(record_path).train()
            starts.append((f"trained at L = {TRAINED_FROM} ({os.path.basename(record_path)})",
                           trained))
        for start, model in starts:
            unflushed, flushed, ratio = flush_speedup(config, model, seq_len, repeats, step_seconds)
            rows.append({"model": str(spec), "recipe": f"{BASE} + {candidate}", "seq_len": seq_len,
                         "start": start,
                         "step_ms_unflushed": unflushed, "step_ms_flushed": flushed,
                         "speedup": ratio})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ 3. memory

def step_memory(spec_text, seq_len, candidate):
    """(MiB peak before, after one training step, after one evaluation of training.EVAL_BATCH
    samples, in batches of training.eval_batch(seq_len), as a run scores its dev and test sets, their data drawn here included) resident in
    this process at `seq_len`; run in a process of its own, so that the peaks are the step's
    and the evaluation's."""
    torch.set_num_threads(1)
    limit_blas_to_one_thread()
    spec = parse_model(spec_text)
    config = candidate_config(spec, seq_len, candidate)
    model = start_network(config)
    step = stepper(config, model)
    x, t = fixed_batches(seq_len, 1)[0]
    before = peak_mib()
    step(x, t)
    after_step = peak_mib()
    x_eval, t_eval = data.adding_problem(training.EVAL_BATCH, seq_len, np.random.default_rng(1))
    training.evaluate(model, torch.from_numpy(x_eval), torch.from_numpy(t_eval))
    return before, after_step, peak_mib()


def peak_mib():
    """The peak resident memory of this process so far, in MiB: Linux's VmHWM, which starts
    afresh in a new program (getrusage's maxrss keeps the peak of the process that started it,
    across exec, so a spawned worker would report its parent's)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except FileNotFoundError:                     # no /proc: not Linux, where exec starts afresh
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 * (
            1 if sys.platform == "darwin" else 2**10)


def memory_rows(specs, seq_len, candidate, own_process=True):
    """One row per network: the memory of one training step and of one evaluation, each network
    in a process of its own; without `own_process` (--quick) in this one, where the peaks may
    be an earlier network's."""
    rows = []
    for spec in specs:
        if own_process:
            with concurrent.futures.ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn")) as pool:
                before, step, evaluation = pool.submit(step_memory, str(spec), seq_len,
                                                       candidate).result()
        else:
            before, step, evaluation = step_memory(str(spec), seq_len, candidate)
        rows.append({"model": str(spec), "seq_len": seq_len, "process_peak_mib": before,
                     "step_mib": step - before, "evaluation_mib": evaluation - before})
    return pd.DataFrame(rows)


def data_set_mib(seq_len, sizes=None):
    """MiB of a data set's three splits in memory as train_run holds them (float32)."""
    sizes = {**data.DEFAULT_SIZES, **(sizes or {})}
    return sum(sizes.values()) * (seq_len * 2 + 1) * 4 / 2**20


# ------------------------------------------------------------------------------ 4. the plan

def plan(times):
    """CPU hours of each rung at the budget's bound, the longest first, with the running total."""
    rungs = times.assign(cpu_hours=times["epoch_s"] * SEEDS_PER_RUNG * EPOCHS / 3600)
    rungs = rungs.sort_values("cpu_hours", ascending=False, kind="stable")
    return rungs.assign(total_hours=rungs["cpu_hours"].cumsum())[
        ["model", "seq_len", "epoch_s", "cpu_hours", "total_hours"]]


# ------------------------------------------------------------------------------ report

def report(command, candidate, times, subnormals, memory, memory_length):
    fmt = {"floatfmt": ".3g", "tablefmt": "github", "showindex": False}
    costs = plan(times)
    threshold = 1.2
    verdict = [f"{row.model} under {row.recipe}, from {row.start}" for row in subnormals.itertuples()
               if row.speedup > threshold]
    return (f"# What the ladders under `{candidate}` cost\n\n"
            f"Made by: `{command}` on {cpu_model()} ({os.cpu_count()} cores), load average "
            f"{load_average()} at the end, one torch thread, torch {torch.__version__}.\n\n"
            f"## Epoch times\n\nFrom the recipe's start (`{BASE}` with {candidate}); "
            f"epoch = median step x {STEPS_PER_EPOCH}.\n\n"
            f"{tabulate(times[['model', 'seq_len', 'step_ms', 'step_ms_min', 'step_ms_max', 'epoch_s']], headers='keys', **fmt)}\n\n"
            f"## Subnormals\n\nSpeed-up of flushing subnormal floats to zero: the median of "
            f"the repeats' paired ratios (unflushed / flushed).\n\n"
            f"{tabulate(subnormals, headers='keys', **fmt)}\n\n"
            + (f"Above {threshold}x: {'; '.join(verdict)}.\n\n" if verdict else
               f"No network trains more than {threshold}x faster with subnormals flushed.\n\n")
            + f"## Memory at L = {memory_length}\n\nIn a process of its own: its peak resident "
            f"memory before training, and how far above that one training step (batch 20) and "
            f"then one evaluation of {training.EVAL_BATCH} samples (as a run scores its dev and "
            f"test sets: in batches of {training.eval_batch(memory_length)}; their data drawn in "
            f"the process included) raise it.\n\n"
            f"{tabulate(memory, headers='keys', **fmt)}\n\n"
            f"A data set of {sum(data.DEFAULT_SIZES.values()):,} samples at L = {memory_length} "
            f"takes {data_set_mib(memory_length):,.0f} MiB in memory as a run holds it.\n\n"
            f"## The plan at the budget's bound\n\n{SEEDS_PER_RUNG} seeds x {EPOCHS} epochs a "
            f"rung, the dearest rungs first; {costs['cpu_hours'].sum():.1f} CPU hours in all, "
            f"{costs['cpu_hours'].sum() / 2:.1f} h of wall time with both cores busy (the dev "
            f"evaluation after each epoch, a few per cent more, is not counted).\n\n"
            f"{tabulate(costs, headers='keys', **fmt)}\n")


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time the recipe sweep's networks under a candidate recipe: epoch times at "
                    "every ladder length, the speed-up of flushing subnormals, the memory of a "
                    "step at the longest length, and the CPU hours of the ladders.")
    parser.add_argument("--quick", action="store_true",
                        help=f"the whole path in seconds: L = {' '.join(map(str, QUICK['lengths']))}, "
                             "into a temporary folder (numbers are rough)")
    parser.add_argument("--candidate", choices=list(CANDIDATES), default=next(iter(CANDIDATES)),
                        help="the candidate recipe (default: %(default)s)")
    parser.add_argument("--lengths", nargs="+", type=sequence_length, metavar="L",
                        help=f"lengths of the epoch times (default: {' '.join(map(str, LENGTHS))})")
    parser.add_argument("--repeats", type=positive_int, metavar="R",
                        help=f"timed blocks per network and length (default: {FULL['repeats']})")
    parser.add_argument("--sweep-dir", default=SWEEP_DIR,
                        help="the recipe sweep's folder, whose kept weights give the trained "
                             "networks (default: %(default)s)")
    parser.add_argument("--results-dir",
                        help=f"folder of cost.md and the csv files (default: {RESULTS_DIR}; "
                             "with --quick a temporary folder)")
    args = parser.parse_args(argv)
    settings = changed_settings(parser, args, {"candidate": "", "lengths": "L", "repeats": "repeats"})
    args.results_dir = results_folder(args, RESULTS_DIR, settings, "recipe_cost")
    defaults = QUICK if args.quick else FULL
    args.lengths = args.lengths or defaults["lengths"]
    args.repeats = args.repeats or defaults["repeats"]
    args.step_seconds = defaults["step_seconds"]
    args.subnormal_length = defaults["subnormal_length"]
    args.memory_length = defaults["memory_length"]
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else map(str, argv))
    args = parse_args(argv)
    torch.set_num_threads(1)
    limit_blas_to_one_thread()
    check_writable(args.results_dir)                 # one line and exit where it cannot
    specs = [parse_model(text) for text in MODELS]
    times = epoch_times(specs, args.lengths, args.candidate, args.repeats, args.step_seconds)
    try:
        subnormals = subnormal_rows(specs, args.subnormal_length, args.candidate, args.repeats,
                                    args.step_seconds, args.sweep_dir)
    except FlushUnsupported as error:
        sys.exit(f"error: {error}")
    memory = memory_rows(specs, args.memory_length, args.candidate, own_process=not args.quick)
    command = shlex.join(["python", "-m", "studies.recipe_cost", *argv])
    text = report(command, args.candidate, times, subnormals, memory, args.memory_length)
    for name, table in (("epoch_times", times), ("subnormals", subnormals), ("memory", memory),
                        ("plan", plan(times))):
        atomic_write_text(os.path.join(args.results_dir, f"{name}.csv"), table.to_csv(index=False))
    atomic_write_text(os.path.join(args.results_dir, "cost.md"), text)
    print(text)


if __name__ == "__main__":
    main()

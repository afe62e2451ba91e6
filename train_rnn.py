"""Train the recurrent networks on the adding problem, grid by grid, and print the accuracy table.

    python train_rnn.py                      # the whole assignment: 3 models x L = 10 50 70 100
    python train_rnn.py --seeds 5            # seeds 0..4 of every cell, mean +- std
    python train_rnn.py --models lstm --lengths 50 --seed 3
    python train_rnn.py --recipe modern --models lstm --lengths 100   # Adam, clipping, bias 1
    python train_rnn.py --report             # report every run saved in results/, no training
    python train_rnn.py --report --seeds 5   # ... only those of seeds 0..4

This file holds the command line and the grid of runs; one run's training is `training.py`.
Protocol (SPEC.md): MSE, SGD lr 0.01 momentum 0.9, batch 20 in data-set order, up to 50
epochs; dev accuracy at the start of every epoch stops training once above 99.5 %; test
accuracy once at the end. `--recipe` and its flags change how the weights move, nothing else.
Every finished run is saved at once under results/runs/, and a run already there with the
same configuration is not trained again. A data set already in --data-dir is trained on as it
was made: the options stored in it enter each run's configuration; the data flags shape only
the data sets that are missing.
"""
import argparse
import multiprocessing
import os
import shlex
import signal
import sys
import textwrap
import time

import torch
from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import report
from experiment import training
from lib.atomic_files import atomic_write_text
from lib.bptt import check_periods
from lib.cli_types import NONE, finite_float, int_argument, or_none, positive_float, positive_int
from models import ENGINES, MODELS
from experiment.runs import (checkpoint_path, discard_checkpoint, load_record, load_records, record_path,
                  run_key, save_record)

ASSIGNMENT_MODELS = ("simple_rnn", "lstm", "alarmwork")   # the default grid: the assignment's table
DEFAULT_PERIODS = (1, 2, 4, 8)   # the clocks of ClockworkRNN
ENGINE_MODELS = ("alarmwork", "clockwork")   # the models with a hand-derived BPTT engine


# ------------------------------------------------------------------------------ the results folder

def check_writable(results_dir):
    """Fail now, not after an hour of training, if results cannot be written."""
    try:
        os.makedirs(os.path.join(results_dir, "runs"), exist_ok=True)
        atomic_write_text(os.path.join(results_dir, "runs", ".write-check"), "ok\n")
        os.remove(os.path.join(results_dir, "runs", ".write-check"))
    except OSError as error:
        raise SystemExit(f"error: cannot write results to '{results_dir}' ({error.strerror}); "
                         "choose another folder with --results-dir")


# ------------------------------------------------------------------------------ the grid

def make_configs(args, data_options):
    """One configuration per (model, length, seed), in the order of the table."""
    return [run_config(args, model, seq_len, seed, data_options[seq_len])
            for model in args.models for seq_len in args.lengths for seed in args.seed_list]


def run_config(args, model, seq_len, seed, data_options):
    """The configuration of one run, with the recipe resolved into the values it trains with.

    The keys of the assignment's runs are always there. The newer settings are added only when
    they differ from the assignment's (training.LEFT_OUT), so the records saved before they
    existed keep their key: `recipe` and `optimizer` when not the assignment's,
    `lstm_forget_bias` for LSTM runs that set it, `periods` for ClockworkRNN runs.
    """
    lr = args.lr if args.lr is not None else training.recipe_lr(args.recipe, args.optimizer, model)
    config = {
        "model": model, "seq_len": seq_len, "seed": seed,
        "epochs": args.epochs, "batch_size": args.batch_size, "hidden": args.hidden, "lr": lr,
        "momentum": args.momentum,
        "engine": args.alarmwork_engine if model in ENGINE_MODELS else None,
        "clip_grad_norm": args.clip_grad_norm, "shuffle": args.shuffle,
        "device": args.device, "data": data_options,
    }
    newer = {"recipe": args.recipe, "optimizer": args.optimizer,
             "lstm_forget_bias": args.lstm_forget_bias if model == "lstm" else None,
             "periods": list(args.periods) if model == "clockwork" else None}
    config.update({k: v for k, v in newer.items() if v != training.LEFT_OUT[k]})
    return config


# the data flags and the generator option each one sets
DATA_FLAGS = {"train": ("--train", "n_train"), "dev": ("--dev", "n_dev"),
              "test": ("--test", "n_test"), "data_seed": ("--data-seed", "seed")}


def flag_data_options(args, seq_len):
    """The generator options the data flags ask for (their defaults where not given)."""
    return data.generator_options(seq_len, data.sizes_from(args), args.data_seed)


def data_options_of(args):
    """The generator options of each length's data set: those stored in its file where there
    is one (checked by prepare_data), else those of the data flags, which it is generated with."""
    return {L: data.read_options(data.data_path(args.data_dir, L)) or flag_data_options(args, L)
            for L in args.lengths}


def prepare_data(args, data_options):
    """Generate the missing data sets (saying so), check every file against `data_options`, and
    check that it agrees with each data flag given on the command line."""
    given = [dest for dest in DATA_FLAGS if dest in getattr(args, "given", ())]
    for seq_len in args.lengths:
        path = data.data_path(args.data_dir, seq_len)
        if not os.path.exists(path):
            print(f"{path} is missing: generating it ({args.train}/{args.dev}/{args.test} "
                  f"samples, data seed {args.data_seed})")
            data.write_data_set(args.data_dir, seq_len, data.sizes_from(args), args.data_seed)
        options = data_options[seq_len]
        data.load_data_set(args.data_dir, seq_len, options)
        contradicted = [f"{DATA_FLAGS[d][0]} {getattr(args, d)}" for d in given
                        if options.get(DATA_FLAGS[d][1]) != getattr(args, d)]
        if contradicted:
            raise data.DataError(path, f"made with other options ({data.describe(options)}) than "
                                       f"{' '.join(contradicted)}; drop "
                                       f"{'the flag' if len(contradicted) == 1 else 'those flags'} "
                                       "to train on it as it is, use another --data-dir, or "
                                       "replace it with "
                                       "generate_data_adding_problem.py --force")
        if options != flag_data_options(args, seq_len):
            print(f"{path}: training on it as it was made ({data.describe(options)})")


PROGRESS_POSITION = 1  # the line of this process's progress bar, under the bar of all runs


def run_worker(job):
    """Train one run (one torch thread), checkpointed under the results folder; returns its record."""
    config, data_dir, results_dir = job
    arrays = data.load_data_set(data_dir, config["seq_len"], config["data"])
    return training.train_run(config, arrays, progress_position=PROGRESS_POSITION,
                              checkpoint=checkpoint_path(results_dir, config))


def init_worker(next_position, lock):
    """Give each worker process its own progress line; the parent handles Ctrl-C for all."""
    global PROGRESS_POSITION
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    with next_position.get_lock():
        PROGRESS_POSITION = next_position.value
        next_position.value += 1


def run_grid(configs, args):
    """Train every configuration without a saved record; returns all records in config order."""
    records = {}
    todo = []
    for config in configs:
        record = None if args.force else load_record(record_path(args.results_dir, config), config)
        if args.force:
            discard_checkpoint(args.results_dir, config)     # retrain from the first epoch
        if record is None:
            todo.append(config)
        else:
            records[run_key(config)] = record
    if records:
        print(f"skipping {len(records)} finished run(s) saved in {args.results_dir}/runs "
              "(--force to recompute)")
    jobs = min(args.jobs, len(todo)) or 1
    overall = tqdm(total=len(todo), desc="runs", unit="run", position=0, disable=len(todo) < 2)
    try:
        if jobs == 1:
            finished = (run_worker((c, args.data_dir, args.results_dir)) for c in todo)
            collect(finished, records, args, overall)
        else:
            todo.sort(key=lambda c: -c["seq_len"])  # longest runs first: less idle time at the end
            context = multiprocessing.get_context("spawn")
            worker_state = (context.Value("i", 1), context.RLock())
            with context.Pool(jobs, initializer=init_worker, initargs=worker_state) as pool:
                jobs_todo = [(c, args.data_dir, args.results_dir) for c in todo]
                finished = pool.imap_unordered(run_worker, jobs_todo)
                collect(finished, records, args, overall)
    except KeyboardInterrupt:
        overall.close()
        saved = len(records)
        raise SystemExit(f"\ninterrupted: {saved} of {len(configs)} run(s) are saved in "
                         f"{args.results_dir}/runs; run the same command again to go on")
    overall.close()
    return [records[run_key(c)] for c in configs]


def collect(finished, records, args, overall):
    """Save each record the moment its run ends."""
    for record in finished:
        save_record(args.results_dir, record)
        records[run_key(record["config"])] = record
        overall.update(1)
        overall.write(report.describe_run(record))


# ------------------------------------------------------------------------------ --report

# the options that narrow --report's selection by one configuration entry each
CONFIG_FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "hidden": "hidden",
                "periods": "periods", "shuffle": "shuffle", "alarmwork_engine": "engine",
                "device": "device", "recipe": "recipe", "optimizer": "optimizer", "lr": "lr",
                "momentum": "momentum", "clip_grad_norm": "clip_grad_norm",
                "lstm_forget_bias": "lstm_forget_bias"}
NOT_A_SELECTION = {"data_dir", "results_dir", "jobs", "force", "report"}
RECIPE_RATE = "the recipe's"   # an lr that a recipe sets per model, in a configuration


def entry(config, key):
    """A configuration entry, reading a left-out setting (training.LEFT_OUT) as its default."""
    return config.get(key, training.LEFT_OUT.get(key))


def selected(config, args):
    """Whether a saved run agrees with every option written on the command line."""
    given = args.given
    if ("models" in given and config["model"] not in args.models
            or "lengths" in given and config["seq_len"] not in args.lengths
            or given & {"seed", "seeds"} and config["seed"] not in args.seed_list):
        return False
    if any((config.get("data") or {}).get(key) != getattr(args, dest)
           for dest, (_, key) in DATA_FLAGS.items() if dest in given):
        return False
    expected = run_config(args, config["model"], config["seq_len"], config["seed"],
                          config.get("data"))
    return all(entry(expected, key) == entry(config, key)
               for dest, key in CONFIG_FLAGS.items() if dest in given)


def saved_records(args):
    """The runs saved in the results folder that agree with the options given, in table order."""
    folder = os.path.join(args.results_dir, "runs")
    saved = load_records(args.results_dir)
    if not saved:
        sys.exit(f"error: no runs are saved in {folder}; train them first (without --report)")
    narrowing = " ".join(f"--{dest.replace('_', '-')}"
                         for dest in sorted(args.given - NOT_A_SELECTION))
    records = [r for r in saved if selected(r["config"], args)]
    if not records:
        sys.exit(f"error: none of the {len(saved)} run(s) saved in {folder} match {narrowing}")
    print(f"reporting {len(records)} of the {len(saved)} run(s) saved in {folder}"
          + (f" (those that match {narrowing})" if narrowing else ""))
    models = args.models if "models" in args.given else list(MODELS)
    return sorted(records, key=lambda r: table_order(r["config"], models))


def table_order(config, models):
    """Rows by model (then width and clocks), columns by length, then seeds."""
    return (models.index(config["model"]), config["hidden"] != report.DEFAULT_HIDDEN,
            config["hidden"], config.get("periods") or [], config["seq_len"], config["seed"])


def configuration_of(config):
    """What a run shares with the other runs of its command, by name.

    That is its configuration apart from the model, the length and the seed, and apart from
    what the model's label in the table already tells (hidden, periods), so runs of several
    widths share a table. A setting of some models only (engine, lstm_forget_bias) is left out
    of the others'; a rate that the recipe sets per model reads "the recipe's"; the data enter
    by their generator options (data_seed, n_train, n_dev, n_test).
    """
    model = config["model"]
    options = {k: v for k, v in config.items()
               if k not in ("model", "seq_len", "seed", "hidden", "periods", "data",
                            "engine", "lstm_forget_bias")}
    options.update(recipe=entry(config, "recipe"), optimizer=entry(config, "optimizer"))
    if model in ENGINE_MODELS:
        options["engine"] = config["engine"]
    if model == "lstm":
        options["lstm_forget_bias"] = entry(config, "lstm_forget_bias")
    if is_recipe_rate_per_model(config):
        options["lr"] = RECIPE_RATE
    options.update({"data_seed" if k == "seed" else k: v
                    for k, v in (config.get("data") or {}).items() if k != "seq_len"})
    return options


def is_recipe_rate_per_model(config):
    """Whether the run's lr is its recipe's rate for its model, in a recipe whose rates differ
    between models (the runs of one command then differ in lr, and belong together)."""
    try:
        rates = training.optimizer_recipe(entry(config, "recipe"), entry(config, "optimizer"))["lr"]
    except (KeyError, StopIteration):   # a recipe or optimizer this version does not know
        return False
    return (isinstance(rates, dict) and len(set(rates.values())) > 1
            and rates.get(config["model"]) == config["lr"])


def by_configuration(records):
    """The records grouped by configuration_of, and a title per record, or None for one group.

    A run that lacks a setting (a SimpleRNN has no engine) belongs to every configuration that
    agrees with the rest of it, as the command of each would have reused it. A title names the
    options in which the configurations differ: 'clip_grad_norm = 1.0, lr = 0.01'.
    """
    options = [configuration_of(r["config"]) for r in records]
    groups = []   # [(the options of the configuration, the indices of its runs)]
    # the fullest first, then by content, so that the groups do not depend on the records' order
    for i in sorted(range(len(records)), key=lambda i: (-len(options[i]), repr(sorted(options[i].items())))):
        agreeing = [g for g in groups if all(g[0].get(k, v) == v for k, v in options[i].items())]
        if not agreeing:
            agreeing = [({}, [])]
            groups += agreeing
        for merged, members in agreeing:
            merged.update(options[i])
            members.append(i)
    if len(groups) < 2:
        return records, None
    names = sorted({name for merged, _ in groups for name in merged})
    differing = [name for name in names
                 if len({repr(merged[name]) for merged, _ in groups if name in merged}) > 1]
    groups.sort(key=lambda g: [(name not in g[0], sort_key(g[0].get(name))) for name in differing])
    grouped, titles = [], []
    for merged, members in groups:
        title = ", ".join(f"{name} = {NONE if merged[name] is None else merged[name]}"
                          for name in differing if name in merged) or "other runs"
        grouped += [records[i] for i in sorted(members)]
        titles += [title] * len(members)
    return grouped, titles


def sort_key(value):
    """Orders values of any type: none first, then numbers, then the rest as text."""
    if value is None:
        return (0, 0)
    return (1, value) if isinstance(value, (int, float)) else (2, str(value))


# ------------------------------------------------------------------------------ command line

def describe_recipe(name):
    """What a recipe sets, in the words of the command line: 'optimizer sgd, lr 0.01, ...'."""
    parts = []
    for key, value in training.RECIPES[name].items():
        if isinstance(value, dict):
            rates = set(value.values())
            value = (f"{rates.pop():g} for every model" if len(rates) == 1
                     else ", ".join(f"{model} {rate:g}" for model, rate in value.items()))
        elif value is None:
            value = NONE
        parts.append(f"{key.replace('_', '-')} {value}")
    return ", ".join(parts)


def add_study_arguments(parser, results_dir, outputs):
    """The options a study script (sweep_learning_rates.py, reach.py) hands on to its runs,
    and its own folder, pool and report flags."""
    parser.add_argument("--epochs", type=positive_int, default=50,
                        help="maximum number of epochs of every run (default: %(default)s)")
    for split, size in data.DEFAULT_SIZES.items():
        parser.add_argument(f"--{split}", type=positive_int, default=size,
                            help=f"{split} samples of a generated data set (default: %(default)s)")
    parser.add_argument("--data-dir", default="data", help="folder of the .npz files (default: %(default)s)")
    parser.add_argument("--results-dir", default=results_dir,
                        help=f"folder of {outputs} (default: %(default)s)")
    parser.add_argument("--jobs", type=positive_int, default=len(os.sched_getaffinity(0)),
                        help="runs trained at once, one thread each (default: the CPU cores, %(default)s)")
    parser.add_argument("--force", action="store_true", help="retrain runs that are already saved")
    parser.add_argument("--report", action="store_true",
                        help="rebuild the tables and figures from the saved runs, no training")


def study_command(module, argv):
    """The command a study's report names as its maker: the study's own, without --report and
    --force (neither changes what the records hold)."""
    return shlex.join(["python", "-m", module, *(a for a in argv if a not in ("--report", "--force"))])


def study_run_argv(options):
    """The train_rnn.py options every run of a study takes from the study's command line."""
    return (["--epochs", str(options.epochs), "--train", str(options.train), "--dev", str(options.dev),
             "--test", str(options.test), "--data-dir", options.data_dir, "--jobs", str(options.jobs)]
            + (["--force"] if options.force else []))


def build_parser():
    names = ", ".join(display for display, _ in MODELS.values())
    parser = argparse.ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,   # keeps the recipe table's lines
        description=textwrap.fill(f"Train {names} on the adding problem and print the "
                                  "test-accuracy table."),
        epilog="A data set already in --data-dir is trained on as it was made (its options,\n"
               "stored in the file, enter each run's configuration); --train, --dev, --test\n"
               "and --data-seed shape only the data sets that are missing, which are\n"
               "generated as generate_data_adding_problem.py does. One of them given for an\n"
               "existing file must agree with it.\n\n"
               "--report reports every run saved in --results-dir, one table per\n"
               "configuration (the options apart from model, length and seed); the options\n"
               "given with it narrow the selection, e.g. --report --models lstm --seeds 5.")
    parser.add_argument("--models", nargs="+", default=list(ASSIGNMENT_MODELS), metavar="MODEL",
                        choices=list(MODELS),
                        help=f"models to train, from {', '.join(MODELS)} (default: the "
                             f"assignment's {' '.join(ASSIGNMENT_MODELS)})")
    data.add_data_arguments(parser, seed_flags=("--data-seed",))
    parser.add_argument("--epochs", type=positive_int, default=50,
                        help="maximum number of epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=20,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--hidden", type=positive_int, default=50,
                        help="hidden units P, per recurrent layer (default: %(default)s)")
    parser.add_argument("--periods", type=positive_int, nargs="+", default=list(DEFAULT_PERIODS),
                        metavar="T",
                        help="clock periods of ClockworkRNN's layers, from 1 and increasing "
                             "(default: %(default)s)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int_argument,
                       help="run this one seed (model initialization and batch order; default 0)")
    seeds.add_argument("--seeds", type=positive_int,
                       help="run seeds 0..N-1 of every model and length")
    parser.add_argument("--shuffle", action="store_true",
                        help="reshuffle the training batches every epoch, seeded (default: "
                             "data-set order, as in the assignment)")
    parser.add_argument("--alarmwork-engine", choices=ENGINES, default="bptt",
                        help="backward pass of AlarmworkNet and ClockworkRNN: hand-derived BPTT "
                             "(fast, exact) or plain autograd (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train; auto picks cuda when available (default: %(default)s)")
    parser.add_argument("--jobs", type=positive_int, default=len(os.sched_getaffinity(0)),
                        help="runs trained at once in worker processes, one thread each "
                             "(default: the CPU cores this process may use, %(default)s)")
    parser.add_argument("--results-dir", default="results",
                        help="folder of runs/, accuracy.csv, accuracy.md and the figures "
                             "(default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="retrain runs that are already saved")
    parser.add_argument("--report", action="store_true",
                        help="rebuild the tables, CSV and figures from the runs saved in "
                             "--results-dir, no training; the options given narrow the selection")

    width = max(map(len, training.RECIPES))
    recipe = parser.add_argument_group("recipe", "\n".join([
        "How the weights move; the data and the budget stay the same. A recipe sets",
        "every option below, and each option given overrides it:",
        *(f"  {name:{width}}  {describe_recipe(name)}" for name in training.RECIPES)]))
    recipe.add_argument("--recipe", choices=list(training.RECIPES), default="assignment",
                        help="the set of options to start from (default: %(default)s)")
    recipe.add_argument("--optimizer", choices=training.OPTIMIZERS,
                        help="the optimizer (default: the recipe's)")
    recipe.add_argument("--lr", type=positive_float,
                        help="learning rate of every model (default: the recipe's rate for each "
                             "model; with another optimizer than the recipe's, the rate of the "
                             "recipe that uses it)")
    recipe.add_argument("--momentum", type=float,
                        help="SGD momentum, SGD only (default: "
                             f"{training.optimizer_recipe('assignment', 'sgd')['momentum']})")
    recipe.add_argument("--clip-grad-norm", type=or_none(positive_float), metavar="C",
                        help="rescale the gradient to norm C when above it; 'none' turns "
                             "clipping off (default: the recipe's)")
    recipe.add_argument("--lstm-forget-bias", type=or_none(finite_float), metavar="B",
                        help="set the LSTM's forget-gate bias (bias_ih + bias_hh) to B after "
                             "PyTorch's init; 'none' keeps PyTorch's init (default: the recipe's)")
    return parser


def given_options(argv):
    """The destinations of the options written in `argv`, abbreviations included: parsed again
    with every default suppressed, only those are set."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_args(argv=None):
    """The options; `args.given` holds the destinations of those written on the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(argv)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here (use --device cpu)")
    args.seed_list = list(range(args.seeds)) if args.seeds else [args.seed or 0]
    try:
        check_periods(args.periods)
    except ValueError:
        parser.error(f"--periods must start at 1 and strictly increase, got "
                     f"{' '.join(map(str, args.periods))}")
    resolve_recipe(args, parser)
    return args


def resolve_recipe(args, parser):
    """Fill each recipe option not given on the command line with the recipe's value.

    The learning rate stays None when not given: it is the recipe's per model (run_config).
    """
    recipe = training.RECIPES[args.recipe]
    args.optimizer = args.optimizer or recipe["optimizer"]
    if args.optimizer == "sgd":
        if args.momentum is None:
            args.momentum = training.optimizer_recipe(args.recipe, "sgd")["momentum"]
    elif args.momentum is not None:
        parser.error(f"--momentum is SGD's only, and these runs use {args.optimizer} "
                     "(drop --momentum, or add --optimizer sgd)")
    for name in ("clip_grad_norm", "lstm_forget_bias"):
        given = getattr(args, name)
        setattr(args, name, recipe[name] if given is None else None if given == NONE else given)


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        records = saved_records(args)
    else:
        data_options = data_options_of(args)
        configs = make_configs(args, data_options)
        try:
            prepare_data(args, data_options)
            check_writable(args.results_dir)
        except (data.DataError, OSError) as error:
            sys.exit(f"error: {error}")
        started = time.perf_counter()
        records = run_grid(configs, args)
        print(f"grid finished in {time.perf_counter() - started:.0f} s")
    records, titles = by_configuration(records)
    if titles:
        print(f"the runs make {len(set(titles))} configurations: one table each")
    print(report.write_report(records, args.results_dir, titles))


if __name__ == "__main__":
    main()

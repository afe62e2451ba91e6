"""Train the recurrent networks on the adding problem, grid by grid, and print the accuracy table.

    python train_rnn.py                      # the whole assignment: 3 models x L = 10 50 70 100
    python train_rnn.py --seeds 5            # seeds 0..4 of every cell
    python train_rnn.py --models lstm --lengths 50 --seed 3
    python train_rnn.py --recipe modern --models lstm --lengths 100   # Adam, clipping, bias 1
    python train_rnn.py --report             # every run saved in results/, tables and figures rebuilt
    python train_rnn.py --report --seeds 5   # ... only those of seeds 0..4, printed

This file holds the command line and the assignment's flow: make the configurations, train
the grid, print the table. The protocol (SPEC.md, section "4. Training protocol") is in
experiment/training.py, the recipes in experiment/recipes.py, the pool in experiment/grid.py.
Every finished run is saved at once under results/runs/, and a run already there with the
same configuration is not trained again. The files beside the records (accuracy.md,
accuracy.csv, cells.csv, the figures) describe every run of the folder: a command that trained
something rebuilds them, and so does --report without narrowing options; otherwise the
command prints its table and writes nothing.
"""
import argparse
import sys
import textwrap
import time

import torch

import generate_data_adding_problem as data
from experiment import cluster, configs, grid, recipes, report, selection
from experiment.datasets import DATA_FLAGS, prepare_data
from lib.bptt import check_periods
from lib.cli_types import (NONE, finite_float, given_options, non_negative_float, non_negative_int,
                           or_none, positive_float, positive_int, refuse_repeats)
from models import ENGINES, MODELS, NONLINEARITIES, RECURRENT_BOUNDS, RECURRENT_INITS, WIRINGS

ASSIGNMENT_MODELS = ("simple_rnn", "lstm", "alarmwork")   # the default grid: the assignment's table

# command-line destination -> run_config keyword, for the options that set a configuration entry
SETTING_FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "hidden": "hidden",
                 "periods": "periods", "shuffle": "shuffle", "alarmwork_engine": "engine",
                 "device": "device", "recipe": "recipe", "optimizer": "optimizer", "lr": "lr",
                 "momentum": "momentum", "clip_grad_norm": "clip_grad_norm",
                 "lstm_forget_bias": "lstm_forget_bias", "nonlinearity": "nonlinearity",
                 "recurrent_init": "recurrent_init", "lstm_chrono": "lstm_chrono",
                 "recurrent_bound": "recurrent_bound", "wiring": "wiring",
                 "warmup_steps": "warmup_steps", "adam_eps": "adam_eps", "end_frozen": "end_frozen"}
# 'none' turns these off (for --adam-eps: back to PyTorch's eps)
OFF_OR_VALUE = ("clip_grad_norm", "lstm_forget_bias", "lstm_chrono", "recurrent_bound", "adam_eps")


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
               "The files beside the records (accuracy.md, accuracy.csv, cells.csv, the\n"
               "figures) describe every run saved in --results-dir. A command that trains\n"
               "something rebuilds them; one whose runs are all saved prints its table and\n"
               "writes nothing. --report alone rebuilds them from the saved runs; with other\n"
               "options (e.g. --report --models lstm --seeds 5) it prints the runs that match.")
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
    parser.add_argument("--periods", type=positive_int, nargs="+",
                        default=list(configs.DEFAULT_PERIODS), metavar="T",
                        help="clock periods of ClockworkRNN's layers, from 1 and increasing "
                             "(default: %(default)s)")
    parser.add_argument("--wiring", choices=WIRINGS, default="slower",
                        help="what a layer of AlarmworkNet and ClockworkRNN reads when it fires: "
                             "its own and the slower layers' states (slower, the assignment's) or "
                             "every layer's (all; SPEC.md, section 7) (default: %(default)s)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=non_negative_int,
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
    cluster.add_executor_arguments(parser)
    parser.add_argument("--results-dir", default="results",
                        help="folder of runs/, accuracy.csv, accuracy.md and the figures "
                             "(default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="retrain runs that are already saved")
    parser.add_argument("--report", action="store_true",
                        help="report the runs saved in --results-dir, no training; alone, it "
                             "rebuilds the folder's tables and figures; the options given with "
                             "it narrow the selection and print it")

    width = max(map(len, recipes.RECIPES))
    recipe = parser.add_argument_group("recipe", "\n".join([
        "How the weights move and start; the data and the budget stay the same. A recipe",
        "sets every option below, and each option given overrides it:",
        *(f"  {name:{width}}  {recipes.describe_recipe(name)}" for name in recipes.RECIPES)]))
    recipe.add_argument("--recipe", choices=list(recipes.RECIPES), default="assignment",
                        help="the set of options to start from (default: %(default)s)")
    recipe.add_argument("--optimizer", choices=recipes.OPTIMIZERS,
                        help="the optimizer; radam, Adam with its first steps' variance "
                             "rectified, takes Adam's rates (default: the recipe's)")
    recipe.add_argument("--lr", type=positive_float,
                        help="learning rate of every model (default: the recipe's rate for each "
                             "model; with another optimizer than the recipe's, the rate of the "
                             "recipe that uses it)")
    recipe.add_argument("--momentum", type=non_negative_float,
                        help="SGD momentum, SGD only (default: "
                             f"{recipes.optimizer_recipe('assignment', 'sgd')['momentum']})")
    recipe.add_argument("--clip-grad-norm", type=or_none(positive_float), metavar="C",
                        help="rescale the gradient to norm C when above it; 'none' turns "
                             "clipping off (default: the recipe's)")
    recipe.add_argument("--lstm-forget-bias", type=or_none(finite_float), metavar="B",
                        help="set the LSTM's forget-gate bias (bias_ih + bias_hh) to B after "
                             "PyTorch's init; 'none' keeps PyTorch's init (default: the recipe's)")
    recipe.add_argument("--nonlinearity", choices=NONLINEARITIES,
                        help="of the recurrent layers of SimpleRNN, AlarmworkNet and "
                             "ClockworkRNN (default: the recipe's)")
    recipe.add_argument("--recurrent-init", choices=RECURRENT_INITS,
                        help="the recurrent weights' start: each model's own, or 'integrator' "
                             "(identity; I/(K-k) for clocked layer k of K; zero recurrent biases) "
                             "(default: the recipe's)")
    recipe.add_argument("--lstm-chrono", type=or_none(positive_float), metavar="T_MAX",
                        help="chrono initialization of the LSTM's input and forget biases for "
                             "time scales up to T_MAX; 'none' turns it off (default: the recipe's)")
    recipe.add_argument("--recurrent-bound", choices=[*RECURRENT_BOUNDS, NONE],
                        help="after every step, cut the recurrent matrices' singular values down "
                             "to their integrator start's (1; 1/(K-k) for clocked layer k of K); "
                             "'none' leaves them free (default: the recipe's)")
    recipe.add_argument("--warmup-steps", type=non_negative_int, metavar="N",
                        help="raise the rate linearly over the first N optimizer steps (batches): "
                             "step k takes lr*k/N; 0 starts at the full rate (default: the "
                             "recipe's)")
    recipe.add_argument("--adam-eps", type=or_none(positive_float), metavar="E",
                        help="eps of Adam and RAdam, added to the root of the second moment; "
                             "'none' keeps PyTorch's 1e-8 (default: the recipe's)")
    recipe.add_argument("--end-frozen", action=argparse.BooleanOptionalAction,
                        help="end a run early once an epoch had a gradient of exactly 0 on every "
                             "batch, left every weight as it was, and no later step can move one "
                             "(SPEC.md, section 6): its accuracies are those of the full budget; "
                             "CPU and data-set order only (default: the recipe's)")
    return parser


def parse_args(argv=None):
    """The options; `args.given` holds the destinations of those written on the command line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(parser, argv)
    refuse_repeats(parser, args, ("models", "lengths"))
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
    settings = settings_of(args)
    if args.report:
        settings.setdefault("lr", 1.0)   # --report selects by the rates saved: none is needed
    for model in args.models:            # a recipe without a rate, momentum with Adam, ...
        for seq_len in args.lengths:
            try:
                configs.run_config(model, seq_len, 0, None, **settings)
            except configs.ConfigError as error:
                parser.error(str(error))
    return args


def settings_of(args, only_given=False):
    """The run_config keywords that the options set; a recipe option not given is left to the
    recipe, and `only_given` keeps just the options written on the command line."""
    settings = {}
    for dest, keyword in SETTING_FLAGS.items():
        value = getattr(args, dest)
        if only_given and dest not in args.given:
            continue
        if dest in OFF_OR_VALUE:
            if value is None:
                continue                                  # the recipe's
            value = None if value == NONE else value
        elif value is None:
            continue
        settings[keyword] = list(value) if dest == "periods" else value
    return settings


def make_configs(args, data_options):
    """One configuration per (model, length, seed), in the order of the table."""
    settings = settings_of(args)
    return [configs.run_config(model, seq_len, seed, data_options[seq_len], **settings)
            for model in args.models for seq_len in args.lengths for seed in args.seed_list]


def request_of(args):
    """What `--report` with these options asks for (selection.Request)."""
    given = args.given
    return selection.Request(
        models=args.models if "models" in given else None,
        lengths=args.lengths if "lengths" in given else None,
        seeds=args.seed_list if given & {"seed", "seeds"} else None,
        data={dest: getattr(args, dest) for dest in DATA_FLAGS if dest in given},
        settings=settings_of(args, only_given=True),
        words=" ".join(option_words(args, dest) for dest in sorted(given - NOT_A_SELECTION)))


NOT_A_SELECTION = {"data_dir", "results_dir", "force", "report", *cluster.EXECUTOR_DESTS}


def option_words(args, dest):
    """An option as it would be written: '--hidden 7', '--models lstm alarmwork', '--shuffle'."""
    value = getattr(args, dest)
    flag = f"--{dest.replace('_', '-')}"
    if value is True:
        return flag
    if value is False:
        return f"--no-{flag[2:]}"
    return " ".join([flag, *map(str, value if isinstance(value, list) else [value])])


def rebuild_folder_report(results_dir, records=None):
    """accuracy.md, the CSV files and the figures, from every run saved in the folder
    (`records`, where they are loaded already)."""
    records, titles = selection.by_configuration(records or selection.saved_records(results_dir))
    report.write_report(records, results_dir, titles)
    print(f"{results_dir}/accuracy.md, accuracy.csv, cells.csv and the figures now describe "
          f"the {len(records)} run(s) saved there")


def main(argv=None):
    args = parse_args(argv)
    request = request_of(args)
    if args.report:
        records = selection.saved_records(args.results_dir, request)
        if not request.narrowed:
            rebuild_folder_report(args.results_dir, records)
    else:
        try:
            data_options = prepare_data(args.data_dir, args.lengths, data.sizes_from(args),
                                        args.data_seed, request.data)
            grid.check_writable(args.results_dir)
        except (data.DataError, OSError) as error:
            sys.exit(f"error: {error}")
        executor = cluster.executor_from(args)
        started = time.perf_counter()
        records, trained = grid.train_grid(make_configs(args, data_options), args.data_dir,
                                           args.results_dir, executor, args.force)
        print(f"grid finished in {time.perf_counter() - started:.0f} s")
        if trained:
            rebuild_folder_report(args.results_dir)
    records, titles = selection.by_configuration(records)
    if titles:
        print(f"the runs make {len(set(titles))} configurations: one table each")
    print(report.report_tables(records, titles)[2])
    if args.report and request.narrowed:
        print(f"(a part of the runs saved: the files in {args.results_dir} are left as they are; "
              "--report alone rebuilds them)")


if __name__ == "__main__":
    main()

"""Choose each model's Adam learning rate for a recipe, on dev data only.

    python -m studies.sweep_learning_rates                        # modern: 4 models x 4 rates at L = 100
    python -m studies.sweep_learning_rates --recipe integrator    # integrator: 4 models x 3 rates at L = 500
    python -m studies.sweep_learning_rates --report               # rebuild sweep.md, sweep.csv, sweep.png

Every run is the recipe with one of its sweep's rates (SWEEPS), on seeds kept apart from the
study's (0..4), saved like any train_rnn.py run under the sweep's folder. The integrator
recipe is swept at L = 500, not shorter: a rate that solves L = 100-200 can diverge at the
long rungs. The rule: per model, the rate with the highest mean dev accuracy at the end of
training wins (ties: fewer mean epochs, then the larger rate); where no rate's mean dev
accuracy leaves the plateau (PLATEAU_EXIT), the model keeps the sweep's fallback rate. The
test accuracy of these runs is recorded by the protocol and never read here.
experiment/recipes.py holds the winners (tests/test_sweep_learning_rates.py checks that
they match the committed sweep.csv).
"""
import argparse
import os
import sys

from matplotlib.figure import Figure
import pandas as pd
from tabulate import tabulate

from experiment import cluster, configs, grid, recipes, report
from experiment.runs import find_record
from lib.atomic_files import atomic_write_text
from lib.cli_types import given_options, refuse_repeats, sequence_length
from studies.common import (add_study_arguments, parse_model, prepare_study, print_report,
                            study_command)

MODELS = ("simple_rnn", "lstm", "alarmwork", "clockwork")
# the clocked networks in which every layer reads every layer (SPEC.md, section 7), named as
# their rate is in a recipe (recipes.rate_key)
WIRED = ("alarmwork:all", "clockwork:all")
# per recipe: the models, the rates tried, the length, the rate kept where none learns, the folder
SWEEPS = {
    "modern": {"models": MODELS, "rates": (1e-4, 3e-4, 1e-3, 3e-3), "length": 100,
               "fallback": 1e-3,                 # PyTorch's default Adam rate
               "results_dir": os.path.join("results", "reach", "sweep")},
    "integrator": {"models": MODELS + WIRED, "rates": (3e-5, 1e-4, 3e-4), "length": 500,
                   "fallback": 1e-4,             # the middle rate, fixed before the sweep ran
                   "results_dir": os.path.join("results", "reach", "sweep_integrator")},
}
SEEDS = (100, 101)            # apart from the study's seeds 0..4
PLATEAU_EXIT = 50.0           # dev %: the plateau of answering ~0 lies near 35 %


# ------------------------------------------------------------------------------ the choice

def run_rows(records):
    """One row per run: its model (as a recipe names its rate), label, rate, seed, final dev
    accuracy (0 for a diverged run: it learned nothing), whether it diverged or ended frozen,
    and its epochs (a frozen run's whole budget: it would have stood still to the end)."""
    return pd.DataFrame([{
        "model": recipes.rate_key(r["config"]["model"], r["config"].get("wiring", "slower")),
        "label": report.model_label(r["config"]),
        "lr": r["config"]["lr"], "seed": r["config"]["seed"],
        "dev_accuracy": r["dev_accuracy"] if r["dev_accuracy"] is not None else 0.0,
        "diverged": r["dev_accuracy"] is None,
        "frozen": r["status"] == "frozen",
        "epochs_run": r["config"]["epochs"] if r["status"] == "frozen" else r["epochs_run"],
    } for r in records])


def sweep_table(records, by="lr", values=None):
    """One row per (model, `by`): mean final dev accuracy over the seeds, and mean epochs;
    `values`, where given, are each record's value of `by` (e.g. its candidate's name)."""
    rows = run_rows(records)
    if values is not None:
        rows[by] = list(values)
    return rows.groupby(["model", by], sort=False).agg(
        label=("label", "first"), seeds=("seed", "count"), mean_dev_accuracy=("dev_accuracy", "mean"),
        dev_accuracies=("dev_accuracy", lambda a: " / ".join(f"{v:.1f}" for v in a)),
        diverged=("diverged", "sum"), frozen=("frozen", "sum"),
        mean_epochs=("epochs_run", "mean")).reset_index()


def best_per_model(table, tie_break, larger_first):
    """{model: (its best row, why)}: the highest mean dev accuracy, ties to fewer mean epochs,
    then to the larger (`larger_first`) or smaller value of the column `tie_break`; `why` is
    None where even the best mean stays under PLATEAU_EXIT."""
    best = {}
    for model, rows in table.groupby("model", sort=False):
        row = rows.sort_values(["mean_dev_accuracy", "mean_epochs", tie_break],
                               ascending=[False, True, not larger_first]).iloc[0]
        mean = row["mean_dev_accuracy"]
        best[model] = (row, f"highest mean dev accuracy ({mean:.1f} %)" if mean >= PLATEAU_EXIT
                       else None)
    return best


def choose_rates(table, fallback):
    """{model: (rate, reason)} by the rule of this module's docstring; dev accuracy only."""
    return {model: (float(row["lr"]), why) if why else
            (fallback, f"no rate leaves the plateau (best mean dev "
                       f"{row['mean_dev_accuracy']:.1f} %): fallback")
            for model, (row, why) in best_per_model(table, "lr", larger_first=True).items()}


# ------------------------------------------------------------------------------ runs

def sweep_configs(options, data_options):
    """One configuration per (model, rate, seed): the recipe at one rate."""
    return [configs.run_config(spec.name, options.length, seed, data_options[options.length],
                               options.recipe, lr=rate, epochs=options.epochs, wiring=spec.wiring)
            for spec in map(parse_model, options.models) for rate in options.rates for seed in SEEDS]


# ------------------------------------------------------------------------------ report

def write_sweep_report(records, options, command, write=True):
    """The sweep's table as Markdown; with `write`, also sweep.csv, sweep.md and sweep.png.
    A model whose runs are not all saved yet gets no rate."""
    results_dir, fallback = options.results_dir, SWEEPS[options.recipe]["fallback"]
    table = sweep_table(records)
    runs_per_model = len(options.rates) * len(SEEDS)
    saved = table.groupby("model", sort=False)["seeds"].sum()
    complete = table[table["model"].map(saved) == runs_per_model]
    chosen = choose_rates(complete, fallback)
    table["chosen"] = [m in chosen and chosen[m][0] == lr for m, lr in zip(table["model"], table["lr"])]
    waiting = {m: (None, f"{n} of {runs_per_model} runs saved: not chosen yet")
               for m, n in saved.items() if m not in chosen}
    lines = [{"model": r.label, "Adam lr": f"{r.lr:g}",
              "dev % per seed": r.dev_accuracies, "mean dev %": f"{r.mean_dev_accuracy:.1f}",
              "mean epochs": f"{r.mean_epochs:.1f}", "chosen": "yes" if r.chosen else ""}
             for r in table.itertuples()]
    labels = dict(zip(table["model"], table["label"]))
    choice = "\n".join(f"- {labels[m]}: {rate:g} ({reason})" for m, (rate, reason) in chosen.items())
    choice += "".join(f"\n- {labels[m]}: {reason}" for m, (_, reason) in waiting.items())
    text = (f"# Learning rates of the {options.recipe} recipe, chosen on dev data\n\n"
            f"Made by: `{command}`\n\n"
            f"The {options.recipe} recipe ({recipes.describe_recipe(options.recipe)}) at "
            f"L = {int(records[0]['config']['seq_len'])}, seeds {', '.join(map(str, SEEDS))} "
            f"(the study uses 0..4). Dev accuracy at the end of training (%); the highest mean "
            f"wins; where no rate reaches a mean of {PLATEAU_EXIT:g} % the model keeps "
            f"{fallback:g}. No test accuracy is read.\n\n"
            f"{tabulate(lines, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            f"Chosen:\n\n{choice}\n")
    if not write:
        return text
    atomic_write_text(os.path.join(results_dir, "sweep.csv"), table.to_csv(index=False))
    atomic_write_text(os.path.join(results_dir, "sweep.md"), text)
    plot_sweep(table, options.recipe, os.path.join(results_dir, "sweep.png"))
    return text


def plot_sweep(table, recipe, path):
    """Mean final dev accuracy against the rate, one line per model, the winner circled."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    for i, (model, rows) in enumerate(table.groupby("model", sort=False)):
        axes.semilogx(rows["lr"], rows["mean_dev_accuracy"], marker="o", color=f"C{i}",
                      label=rows["label"].iloc[0])
        winner = rows[rows["chosen"]]
        if len(winner):
            axes.scatter(winner["lr"], winner["mean_dev_accuracy"], s=160, facecolors="none",
                         edgecolors=f"C{i}", linewidths=2)
    axes.set_xlabel("Adam learning rate")
    axes.grid(alpha=0.3, which="both")
    finish_figure(figure, axes, f"{recipe.capitalize()} recipe: dev accuracy per learning rate "
                                "(circled: chosen)", "lower left", path)


def finish_figure(figure, axes, title, legend_at, path):
    """A sweep's figure: the plateau's exit drawn, the dev-accuracy axis, the title, the legend;
    saved to `path`."""
    axes.axhline(PLATEAU_EXIT, color="grey", linestyle=":", linewidth=1,
                 label=f"plateau exit ({PLATEAU_EXIT:g} %)")
    axes.set_ylabel("mean dev accuracy at the end (%)")
    axes.set_ylim(0, 102)
    axes.set_title(title)
    axes.legend(fontsize=8, loc=legend_at)
    figure.tight_layout()
    report.save_figure(figure, path)


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a recipe at each of its sweep's learning rates on seeds "
                    f"{', '.join(map(str, SEEDS))} and choose each model's rate by its dev "
                    "accuracy. Sweeps: " + "; ".join(
                        f"{name}: rates {', '.join(f'{r:g}' for r in sweep['rates'])} at "
                        f"L = {sweep['length']}, in {sweep['results_dir']}"
                        for name, sweep in SWEEPS.items()) + ".")
    parser.add_argument("--recipe", choices=list(SWEEPS), default="modern",
                        help="the recipe whose rates are chosen (default: %(default)s)")
    parser.add_argument("--models", nargs="+", choices=MODELS + WIRED, metavar="MODEL",
                        help=f"models to sweep, from {', '.join(MODELS + WIRED)} (the last two: "
                             "every layer reads every layer, SPEC.md, section 7) (default: the "
                             "sweep's: " + "; ".join(f"{name}: {' '.join(sweep['models'])}"
                                                     for name, sweep in SWEEPS.items()) + ")")
    parser.add_argument("--length", type=sequence_length,
                        help="sequence length L of the sweep (default: the recipe's sweep's)")
    add_study_arguments(parser, None, "runs/ and sweep.{csv,md,png} (default: the recipe's sweep's)")
    options = parser.parse_args(argv)
    sweep = SWEEPS[options.recipe]
    refuse_repeats(parser, options, ("models",) if options.models else ())
    options.models = options.models or list(sweep["models"])
    options.rates = sweep["rates"]
    options.length = options.length or sweep["length"]
    options.results_dir = options.results_dir or sweep["results_dir"]
    # the sweep's own folder holds the whole sweep: a part of it is printed, not written there
    options.given = given_options(parser, argv)
    options.narrowed = (os.path.normpath(options.results_dir) == os.path.normpath(sweep["results_dir"])
                        and bool(options.given & {"models", "length", "epochs", "train", "dev", "test"}))
    return options


def saved_or_trained(todo, options, needed=None):
    """The records of the configurations `todo`, in their order: with --report those saved
    (None for a run not saved yet, said in one line; none saved ends the command in one line),
    else every one, the missing ones trained first, but those `needed` declines (None; as
    grid.train_grid)."""
    if not options.report:
        return grid.train_grid(todo, options.data_dir, options.results_dir,
                               cluster.executor_from(options), options.force, needed)[0]
    records = [find_record(options.results_dir, config) for config in todo]
    missing = records.count(None)
    if missing == len(todo):
        sys.exit(f"error: no sweep runs are saved in {options.results_dir}; run the sweep first")
    if missing:
        print(f"{missing} of {len(todo)} run(s) are not saved yet; reporting the others")
    return records


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    data_options = prepare_study(options, [options.length], [options.results_dir])
    records = [r for r in saved_or_trained(sweep_configs(options, data_options), options) if r]
    text = write_sweep_report(records, options, study_command("studies.sweep_learning_rates", argv),
                              write=not options.narrowed)
    print_report(text, options.narrowed, "sweep.md, sweep.csv and sweep.png")


if __name__ == "__main__":
    main()

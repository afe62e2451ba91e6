"""Choose one recipe for every length, on dev data: candidates built on the integrator recipe.

    python -m studies.sweep_recipes                   # 3 networks x 4 candidates x 5 seeds at L = 2000
    python -m studies.sweep_recipes --report          # rebuild sweep.md and sweep.csv
    python -m studies.sweep_recipes --confirm         # each model's winner on the same seeds at L = 1000

The integrator recipe's clocked networks solve L = 500 and lose L = 1000 and 2000: Adam's first
steps pin their tanh output, and later their unbounded ReLU state grows (results/reach/collapse/).
Each candidate (CANDIDATES) is the integrator recipe, its rates included, with remedies
added: a linear warm-up of the rate over the first steps; Adam's eps raised, so that a
weight whose gradients are small takes a small step rather than one of the full rate; and a
bound on the recurrence, which keeps the ReLU state from running away. Every
candidate ends a run whose gradient stayed exactly 0 for a whole epoch (end_frozen): it can no
longer change, and would stand still to the end of its budget.

The rule is the learning-rate sweep's (studies/sweep_learning_rates.py): per model, the
candidate with the highest mean dev accuracy at the end of training wins, ties going to fewer
mean epochs (a frozen run counts its whole budget), then to the earlier candidate; where no
candidate's mean leaves the plateau, none is chosen. A model's choice is made once its runs
saved so far decide it: every candidate has all its runs, or could not reach the mean of a
candidate that has them even if each of its runs still to train ended at 100 % (a rung of the
reach study is decided alike); those runs are then not trained. Seeds 100-104 are kept apart
from the study's 0..4, and no test accuracy is read.

--confirm trains each model's winner (the `chosen` column of the L = 2000 folder's sweep.csv)
on the same seeds at L = 1000: it is confirmed where at least 3 of its 5 runs end with a dev
accuracy of at least 95 %, the reach study's rule for a rung (3 of 5 solved) read on dev data,
and its runs stop once their first runs decide that. A winner that is not confirmed gives way
to the next candidate in the order of the choice at L = 2000 whose mean there leaves the
plateau, and so on: a model's recipe is the first candidate that holds at both lengths. The
table is confirm.md and confirm.csv.
"""
import argparse
import math
import os
import sys

from matplotlib.figure import Figure
from tabulate import tabulate

import pandas as pd

from experiment import configs, recipes, stats
from experiment.runs import find_record, run_key as runs_key
from lib.atomic_files import atomic_write_text
from lib.cli_types import given_options, refuse_repeats, sequence_length
from studies.common import (add_study_arguments, parse_model, prepare_study, print_report,
                            study_command)
from studies import reach
from studies import sweep_learning_rates as rate_sweep
from studies.sweep_learning_rates import PLATEAU_EXIT, finish_figure, saved_or_trained

BASE = "integrator"
RECIPE = "integrator_warmup"     # the recipe the winners make (experiment/recipes.py)
WARMUP_STEPS = 500               # one epoch of 10,000 samples in batches of 20
# name: the settings each candidate adds to the integrator recipe, most promising first
CANDIDATES = {
    "warmup_eps1e-3": {"warmup_steps": WARMUP_STEPS, "adam_eps": 1e-3, "end_frozen": True},
    "warmup_eps1e-2": {"warmup_steps": WARMUP_STEPS, "adam_eps": 1e-2, "end_frozen": True},
    "warmup": {"warmup_steps": WARMUP_STEPS, "end_frozen": True},
    # the first candidate with the recurrence bounded: every recurrent matrix cut back within its
    # start's spectral norm after each step (models.bound_recurrence_), so that the ReLU state
    # grows at most linearly along the sequence and cannot run away
    "warmup_eps1e-3_bounded": {"warmup_steps": WARMUP_STEPS, "adam_eps": 1e-3,
                               "recurrent_bound": "integrator", "end_frozen": True},
}
MODELS = ("alarmwork:all", "clockwork:all", "simple_rnn")
SEEDS = (100, 101, 102, 103, 104)
LENGTH = 2000
CONFIRM_LENGTH = 1000
CONFIRMED_RUNS = reach.runs_needed(len(SEEDS))   # 3 of 5, as a rung of the reach study
RESULTS_DIR = os.path.join("results", "reach", "sweep_recipes")


def describe_candidate(name):
    settings = CANDIDATES[name]
    parts = [f"warm-up over {settings['warmup_steps']} steps"]
    if settings.get("adam_eps"):
        parts.append(f"Adam eps {settings['adam_eps']:g}")
    if settings.get("recurrent_bound"):
        parts.append("each recurrent matrix kept within its start's spectral norm")
    return ", ".join(parts)


# ------------------------------------------------------------------------------ the choice

def sweep_table(records, names):
    """One row per (model, candidate): mean final dev accuracy over the seeds, and mean epochs;
    `names` gives each record's candidate."""
    return rate_sweep.sweep_table(records, "candidate", names)


def best_case(row, seeds=len(SEEDS)):
    """A candidate's mean dev accuracy if each of its runs not saved yet ended at 100 %."""
    return (row["mean_dev_accuracy"] * row["seeds"] + 100.0 * (seeds - row["seeds"])) / seeds


def open_candidates(table, model, candidates):
    """The candidates of `model` whose runs not saved yet could still change its choice: all
    of them but those with every run saved, and those whose best_case is below the mean of a
    candidate with every run saved (a candidate with no run saved is open)."""
    rows = table[table["model"] == model].set_index("candidate")
    complete = rows[rows["seeds"] == len(SEEDS)]
    lead = complete["mean_dev_accuracy"].max() if len(complete) else -math.inf
    return [name for name in candidates if name not in rows.index
            or (rows.loc[name, "seeds"] < len(SEEDS) and best_case(rows.loc[name]) >= lead)]


def choose_candidates(table):
    """{model: (candidate or None, reason)} by the rule of this module's docstring."""
    order = {name: i for i, name in enumerate(CANDIDATES)}
    best = rate_sweep.best_per_model(table.assign(order=table["candidate"].map(order)), "order",
                                     larger_first=False)
    return {model: (row["candidate"], why) if why else
            (None, f"no candidate leaves the plateau (best mean dev {row['mean_dev_accuracy']:.1f} %)")
            for model, (row, why) in best.items()}


# ------------------------------------------------------------------------------ runs

def sweep_runs(options, data_options, models=None, candidates=None):
    """[(candidate, configuration)] of every run, model by model, candidate by candidate: of the
    command's models and candidates, or of those given."""
    return [(name, configs.run_config(spec.name, options.length, seed, data_options[options.length],
                                      BASE, epochs=options.epochs, wiring=spec.wiring,
                                      **CANDIDATES[name]))
            for spec in map(parse_model, models or options.models)
            for name in candidates or options.candidates for seed in SEEDS]


def still_needed(runs, options):
    """needed(config, records) for grid.train_grid: whether a run's candidate is still open
    (open_candidates) given the sweep's records saved so far."""
    names = {runs_key(config): name for name, config in runs}

    def needed(config, records):
        found = [(names[key], record) for key, record in records.items() if key in names]
        if not found:
            return True
        table = sweep_table([record for _, record in found], [name for name, _ in found])
        model = recipes.rate_key(config["model"], config.get("wiring", "slower"))
        return names[runs_key(config)] in open_candidates(table, model, options.candidates)
    return needed


def ranked_at(folder):
    """{model: its candidates in the order of the choice (the chosen one first, then by mean dev
    accuracy, ties to fewer mean epochs), those whose mean leaves the plateau} in a sweep
    folder's sweep.csv; a model not chosen yet is left out. A missing or unreadable table ends
    the command in one line."""
    path = os.path.join(folder, "sweep.csv")
    try:
        table = pd.read_csv(path)
        table = table.assign(chosen=table["chosen"].astype(bool),
                             order=table["candidate"].map(list(CANDIDATES).index))
        ranked = table.sort_values(["chosen", "mean_dev_accuracy", "mean_epochs", "order"],
                                   ascending=[False, False, True, True], kind="stable")
        return {model: [name for name, mean in zip(rows["candidate"], rows["mean_dev_accuracy"])
                        if mean >= PLATEAU_EXIT]
                for model, rows in ranked.groupby("model", sort=False) if rows["chosen"].any()}
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"error: {path}: cannot read the sweep's choices ({error}); run the sweep at "
                 f"L = {LENGTH} first")


def confirmation(dev_accuracies):
    """The reach study's rule for a rung (reach.rung_outcome) read on dev accuracy: True once
    CONFIRMED_RUNS of a candidate's runs reach stats.SOLVED_ACCURACY (a diverged run's None
    does not), False once too few runs are left for that, None while its saved runs do not
    decide it."""
    return {"reached": True, "missed": False, None: None}[
        reach.rung_outcome(list(dev_accuracies), len(SEEDS))]


def confirm_runs(options, data_options):
    """[(candidate, record)] of the confirmation: per model, its candidates in their rank
    (options.ranked), each trained (with --report, read) until its runs decide it, up to the
    first confirmed; a candidate left undecided (--report) ends the model's list."""
    found = []
    for model in options.models:
        for name in options.ranked.get(model, []):
            todo = [config for _, config in sweep_runs(options, data_options, [model], [name])]
            if options.report:
                records = [find_record(options.results_dir, config) for config in todo]
            else:
                records = saved_or_trained(todo, options, lambda config, saved: confirmation(
                    r["dev_accuracy"] for r in saved.values()) is None)
            saved = [record for record in records if record]
            found += [(name, record) for record in saved]
            if confirmation(r["dev_accuracy"] for r in saved) is not False:
                break
    return found


# ------------------------------------------------------------------------------ report

def write_sweep_report(records, names, options, command, write=True):
    """The table as Markdown; with `write`, also sweep.csv, sweep.md and sweep.png in the
    length's folder. A model gets its candidate once its saved runs decide it (open_candidates)."""
    table = sweep_table(records, names)
    runs_per_model = len(options.candidates) * len(SEEDS)
    saved = table.groupby("model", sort=False)["seeds"].sum()
    decided = [m for m in saved.index if not open_candidates(table, m, options.candidates)]
    complete = table[table["model"].isin(decided) & (table["seeds"] == len(SEEDS))]
    chosen = choose_candidates(complete)
    declined = {m: [f"{r.candidate} ({len(SEEDS) - r.seeds})" for r in rows.itertuples()
                    if r.seeds < len(SEEDS)]
                for m, rows in table[table["model"].isin(decided)].groupby("model", sort=False)}
    table["chosen"] = [m in chosen and chosen[m][0] == c for m, c in zip(table["model"], table["candidate"])]
    lines = [{"model": r.label, "candidate": r.candidate, "dev % per seed": r.dev_accuracies,
              "mean dev %": f"{r.mean_dev_accuracy:.1f}", "frozen": r.frozen, "diverged": r.diverged,
              "mean epochs": f"{r.mean_epochs:.1f}", "chosen": "yes" if r.chosen else ""}
             for r in table.itertuples()]
    labels = dict(zip(table["model"], table["label"]))
    choice = [f"- {labels[m]}: {c or 'none'} ({reason})"
              + (f"; runs not trained, as none could change the choice: {', '.join(declined[m])}"
                 if declined[m] else "")
              for m, (c, reason) in chosen.items()]
    choice += [f"- {labels[m]}: {n} of {runs_per_model} runs saved: not chosen yet"
               for m, n in saved.items() if m not in chosen]
    candidates = "\n".join(f"- `{name}`: {describe_candidate(name)}" for name in options.candidates)
    text = (f"# One recipe for every length: candidates chosen on dev data at L = {options.length}\n\n"
            f"Made by: `{command}`\n\n"
            f"Each candidate is the {BASE} recipe ({recipes.describe_recipe(BASE)}) with:\n\n"
            f"{candidates}\n\nand a run ends early once its gradient stays exactly 0 for a whole "
            f"epoch (frozen). Seeds {', '.join(map(str, SEEDS))}; dev accuracy at the end of "
            f"training (%); the highest mean wins, ties to fewer mean epochs (a frozen run counts "
            f"{options.epochs}); where no mean reaches {PLATEAU_EXIT:g} %, none is chosen. A "
            f"candidate whose mean could not reach that of one with all its runs saved, even "
            f"with its runs still to train at 100 %, trains no more. No test accuracy is read.\n\n"
            f"{tabulate(lines, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            "Chosen:\n\n" + "\n".join(choice) + "\n")
    if not write:
        return text
    atomic_write_text(os.path.join(options.results_dir, "sweep.csv"), table.to_csv(index=False))
    atomic_write_text(os.path.join(options.results_dir, "sweep.md"), text)
    plot_sweep(table, options.length, os.path.join(options.results_dir, "sweep.png"))
    return text


def confirm_table(records, names):
    """One row per (model, candidate) trained at the confirming length: its dev accuracy per
    seed, the runs with at least stats.SOLVED_ACCURACY, and its confirmation (True, False, or
    None while undecided)."""
    table = sweep_table(records, names)
    dev = rate_sweep.run_rows(records).assign(candidate=list(names)).groupby(
        ["model", "candidate"], sort=False)["dev_accuracy"]         # a diverged run counts 0
    table["solved"] = [sum(map(stats.solved, dev.get_group(key)))
                       for key in zip(table["model"], table["candidate"])]
    table["confirmed"] = [confirmation(dev.get_group(key))
                          for key in zip(table["model"], table["candidate"])]
    return table


def write_confirm_report(records, names, options, command, write=True):
    """The confirmation's table as Markdown, with each model's recipe: its first candidate
    confirmed; with `write`, also confirm.md and confirm.csv."""
    waiting = [m for m in options.models if m not in options.ranked]
    table = (confirm_table(records, names) if records else
             pd.DataFrame(columns=["model", "candidate", "label", "seeds", "mean_dev_accuracy",
                                   "dev_accuracies", "diverged", "frozen", "mean_epochs",
                                   "solved", "confirmed"]))
    verdict = {True: "yes", False: "no", None: "not decided yet"}
    lines = [{"model": r.label, "candidate": r.candidate,
              f"rank at L = {LENGTH}": options.ranked[r.model].index(r.candidate) + 1,
              "dev % per seed": r.dev_accuracies, "mean dev %": f"{r.mean_dev_accuracy:.1f}",
              f"dev >= {stats.SOLVED_ACCURACY:g} %": f"{r.solved}/{r.seeds}",
              "mean epochs": f"{r.mean_epochs:.1f}", "confirmed": verdict[r.confirmed]}
             for r in table.itertuples()]
    labels = dict(zip(table["model"], table["label"]))
    outcome = []
    for model, rows in table.groupby("model", sort=False):
        held = rows[[verdict is True for verdict in rows["confirmed"]]]
        outcome.append(f"- {labels[model]}: " + (f"`{held['candidate'].iloc[0]}`" if len(held) else
                                                 "none confirmed yet"))
    text = (f"# The winners at L = {LENGTH}, confirmed at L = {options.length}\n\n"
            f"Made by: `{command}`\n\n"
            f"Each model's candidates on dev data at L = {LENGTH} ([the sweep](../L{LENGTH}/sweep.md)), "
            f"in the order of its choice, those whose mean leaves the plateau, trained on the same "
            f"seeds ({', '.join(map(str, SEEDS))}) at L = {options.length} until one is confirmed: "
            f"at least {CONFIRMED_RUNS} of its {len(SEEDS)} runs end with a dev accuracy of at "
            f"least {stats.SOLVED_ACCURACY:g} % (a candidate's runs stop once their first runs "
            f"decide it). No test accuracy is read.\n\n"
            + (tabulate(lines, headers="keys", tablefmt="github", disable_numparse=True) + "\n"
               if lines else "No model has a winner yet.\n")
            + ("\nThe recipe's candidate, the first confirmed:\n\n" + "\n".join(outcome) + "\n"
               if outcome else "")
            + "".join(f"\n- {m}: not chosen at L = {LENGTH} yet" for m in waiting)
            + ("\n" if waiting else ""))
    if write:
        atomic_write_text(os.path.join(options.results_dir, "confirm.csv"), table.to_csv(index=False))
        atomic_write_text(os.path.join(options.results_dir, "confirm.md"), text)
    return text


def plot_sweep(table, seq_len, path):
    """Mean final dev accuracy of each candidate, one group of bars per model."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    models = list(dict.fromkeys(table["model"]))
    names = list(dict.fromkeys(table["candidate"]))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        rows = table[table["candidate"] == name].set_index("model")
        xs = [i + (j - (len(names) - 1) / 2) * width for i, m in enumerate(models) if m in rows.index]
        ys = [rows.loc[m, "mean_dev_accuracy"] for m in models if m in rows.index]
        axes.bar(xs, ys, width, color=f"C{j}", label=name)
    labels = dict(zip(table["model"], table["label"]))
    axes.set_xticks(range(len(models)), [labels[m] for m in models], fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    finish_figure(figure, axes, f"Candidate recipes at L = {seq_len}: mean dev accuracy over "
                                f"{len(SEEDS)} seeds", "upper right", path)


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=f"Train each candidate recipe (the {BASE} recipe with a warm-up of the rate, "
                    f"and Adam's eps raised or the recurrence bounded) on seeds {', '.join(map(str, SEEDS))} at one length "
                    f"and choose each model's candidate by its dev accuracy. Candidates: "
                    + "; ".join(f"{n}: {describe_candidate(n)}" for n in CANDIDATES) + ".")
    parser.add_argument("--models", nargs="+", choices=MODELS, metavar="MODEL",
                        help=f"models to sweep, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), metavar="NAME",
                        help=f"candidates to train, from {', '.join(CANDIDATES)} (default: all)")
    parser.add_argument("--length", type=sequence_length,
                        help=f"sequence length L of the sweep (default: {LENGTH}; with --confirm "
                             f"{CONFIRM_LENGTH})")
    parser.add_argument("--confirm", action="store_true",
                        help=f"train each model's winner at L = {LENGTH} (--sweep-dir's sweep.csv) "
                             f"on the same seeds at --length, and the next candidates in turn "
                             f"until one is confirmed; write confirm.md and confirm.csv")
    parser.add_argument("--sweep-dir", default=os.path.join(RESULTS_DIR, f"L{LENGTH}"),
                        help="with --confirm: the folder of the sweep whose winners are confirmed "
                             "(default: %(default)s)")
    add_study_arguments(parser, None, f"runs/ and sweep.{{csv,md,png}} (default: "
                                      f"{RESULTS_DIR}/L<length>)")
    options = parser.parse_args(argv)
    refuse_repeats(parser, options, [n for n in ("models", "candidates") if getattr(options, n)])
    if options.confirm and options.candidates:
        parser.error("--confirm trains each model's winner: it takes no --candidates")
    options.length = options.length or (CONFIRM_LENGTH if options.confirm else LENGTH)
    if options.confirm and options.length == LENGTH:
        parser.error(f"--confirm: the winners are chosen at L = {LENGTH}; confirm them at another length")
    options.models = options.models or list(MODELS)
    options.candidates = options.candidates or list(CANDIDATES)
    own_folder = os.path.join(RESULTS_DIR, f"L{options.length}")
    options.results_dir = options.results_dir or own_folder
    # the length's own folder holds the whole sweep: a part of it is printed, not written there
    options.given = given_options(parser, argv)
    options.narrowed = (os.path.normpath(options.results_dir) == os.path.normpath(own_folder)
                        and bool(options.given & {"models", "candidates", "epochs", "train",
                                                  "dev", "test"}))
    options.ranked = ranked_at(options.sweep_dir) if options.confirm else {}
    return options


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    data_options = prepare_study(options, [options.length], [options.results_dir])
    if options.confirm:
        found = confirm_runs(options, data_options)
    else:
        runs = sweep_runs(options, data_options)
        records = saved_or_trained([config for _, config in runs], options,
                                   still_needed(runs, options))
        found = [(name, record) for (name, _), record in zip(runs, records) if record]
    names, records = [name for name, _ in found], [record for _, record in found]
    command = study_command("studies.sweep_recipes", argv)
    if options.confirm:
        text = write_confirm_report(records, names, options, command, write=not options.narrowed)
        print_report(text, options.narrowed, "confirm.md and confirm.csv")
        return
    text = write_sweep_report(records, names, options, command, write=not options.narrowed)
    print_report(text, options.narrowed, "sweep.md, sweep.csv and sweep.png")


if __name__ == "__main__":
    main()

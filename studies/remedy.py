"""Does a remedy stop the divergence? The integrator recipe and its bounded variant on dev seeds.

    python -m studies.remedy                 # SimpleRNN, L = 500, seeds 100-104, both recipes
    python -m studies.remedy --report        # remedy.md from the saved runs

The integrator recipe's ReLU SimpleRNN diverges at L = 500 in some runs (studies.divergence
says how: weight_hh's spectral radius passes 3.4e38^(1/L) and the state overflows float32).
The remedy tried is the bound of models.bound_recurrence_, the `integrator_bounded` recipe:
after every step weight_hh's singular values are cut down to 1, so a ReLU state grows at most
linearly with the length. Both recipes train the same model at the same length on seeds
100-104, apart from the study's 0-4 (100 and 101 are the integrator sweep's runs at the chosen
rate, found in results/reach/sweep_integrator/ rather than trained again). The rule, fixed
before these runs: the variant climbs the reach ladder beside the plain recipe if none of its
runs diverges and at least as many of its runs end at >= 95 % dev accuracy; until then it is
in recipes.NOT_PASSED, out of the reach study's defaults. Dev accuracy only; no test accuracy
is read.
"""
import argparse
import os
import statistics
import sys

from tabulate import tabulate

from experiment import configs, grid, stats
from experiment.runs import find_record
from lib.atomic_files import atomic_write_text
from lib.cli_types import given_options, non_negative_int, sequence_length
from models import MODELS, display_name
from studies.common import add_study_arguments, prepare_study, print_report, study_command

RESULTS_DIR = os.path.join("results", "reach", "remedy")
ALSO_SAVED = os.path.join("results", "reach", "sweep_integrator")   # runs of the plain recipe
RECIPES = ("integrator", "integrator_bounded")
SEEDS = (100, 101, 102, 103, 104)
SOLVED_KEY = f"dev >= {stats.SOLVED_ACCURACY:g} %"    # the study's threshold, read on dev data


def recipe_row(recipe, records):
    """One line of the table: diverged and solved runs on dev data, epochs, dev % per seed."""
    dev = [r["dev_accuracy"] for r in records]
    solved = [r for r in records if stats.solved(r["dev_accuracy"])]
    return {"recipe": recipe, "runs": len(records),
            "diverged": sum(r["status"] == "diverged" for r in records),
            SOLVED_KEY: len(solved),
            "median epochs (solved)": (f"{statistics.median(r['epochs_run'] for r in solved):g}"
                                       if solved else "-"),
            "dev % per seed": " / ".join(
                f"{r['config']['seed']}: " + ("diverged in epoch " + str(r["diverged_epoch"])
                                             if a is None else f"{a:.1f}")
                for r, a in zip(records, dev))}


def verdict(rows, runs):
    plain, bounded = rows
    if plain["runs"] < runs or bounded["runs"] < runs:
        return "not decided: runs are missing"
    key = SOLVED_KEY
    p = stats.fisher_p(plain["diverged"], plain["runs"], bounded["diverged"], bounded["runs"])
    passes = bounded["diverged"] == 0 and bounded[key] >= plain[key]
    return (f"diverged: {plain['diverged']}/{plain['runs']} plain, {bounded['diverged']}/"
            f"{bounded['runs']} bounded (Fisher's exact test p = {p:.2g}); {key}: {plain[key]} "
            f"against {bounded[key]}. The variant "
            + ("passes the rule and climbs the ladder." if passes else
               "does not pass the rule and does not climb the ladder."))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description="Train the integrator recipe and its bounded variant on dev seeds and say "
                    "whether the bound stops the divergence (the rule is in the module's text).")
    parser.add_argument("--model", choices=[m for m in MODELS if m != "lstm"], default="simple_rnn",
                        help="the model; the LSTM has no bound (default: %(default)s)")
    parser.add_argument("--length", type=sequence_length, default=500, help="L (default: %(default)s)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(SEEDS),
                        help="dev seeds, apart from the study's 0-4 (default: %(default)s)")
    add_study_arguments(parser, RESULTS_DIR, "<recipe>/runs/ and remedy.md")
    options = parser.parse_args(argv)
    options.given = given_options(parser, argv)
    data_options = prepare_study(options, [options.length],
                                 [os.path.join(options.results_dir, r) for r in RECIPES])
    records = {}
    for recipe in RECIPES:
        folder = os.path.join(options.results_dir, recipe)
        todo = [configs.run_config(options.model, options.length, seed, data_options[options.length],
                                   recipe, epochs=options.epochs) for seed in options.seeds]
        elsewhere = {seed: find_record(ALSO_SAVED, c) if recipe == "integrator" else None
                     for seed, c in zip(options.seeds, todo)}
        own = [c for c in todo if elsewhere[c["seed"]] is None]
        if options.report:
            trained = [r for r in (find_record(folder, c) for c in own) if r]
        else:
            trained, _ = grid.train_grid(own, options.data_dir, folder, options.jobs, options.force)
        found = {r["config"]["seed"]: r for r in trained}
        found.update({s: r for s, r in elsewhere.items() if r is not None})
        records[recipe] = [found[s] for s in options.seeds if s in found]
    rows = [recipe_row(recipe, records[recipe]) for recipe in RECIPES]
    command = study_command("studies.remedy", argv)
    text = (f"# The bound on the recurrence, on dev seeds\n\nMade by: `{command}`\n\n"
            f"{display_name(options.model)} at L = {options.length}, seeds {', '.join(map(str, options.seeds))}: "
            f"the integrator recipe, and `integrator_bounded`, the same with every recurrent "
            f"matrix's singular values cut down to its start's after each step. Dev accuracy at "
            f"the end of training; no test accuracy is read.\n\n"
            f"{tabulate(rows, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            f"{verdict(rows, len(options.seeds))}\n")
    narrowed = (os.path.normpath(options.results_dir) == RESULTS_DIR
                and bool(options.given & {"model", "length", "seeds", "epochs"}))
    if not narrowed:
        os.makedirs(options.results_dir, exist_ok=True)
        atomic_write_text(os.path.join(options.results_dir, "remedy.md"), text)
    print_report(text, narrowed, "remedy.md")


if __name__ == "__main__":
    main()

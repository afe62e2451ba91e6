"""Does a remedy stop the divergence? The integrator recipe beside a variant of it, on dev seeds.

    python -m studies.remedy                            # the bound: SimpleRNN, L = 500, seeds 100-104
    python -m studies.remedy --variant smaller-rate     # the next smaller rate of the recipe's sweep
    python -m studies.remedy --report                   # remedy.md from the saved runs

The integrator recipe's ReLU SimpleRNN diverges at L = 500 in some runs (studies.divergence
says how: weight_hh's spectral radius passes 3.4e38^(1/L) and the state overflows float32).
Two remedies from the literature are tried, each a variant of the recipe (VARIANTS):

- `bounded`, the `integrator_bounded` recipe: after every step each recurrent matrix's
  singular values are cut down to its start's (models.bound_recurrence_), so a ReLU state
  grows at most linearly with the length;
- `smaller-rate`: the integrator recipe at the largest rate of its sweep below the chosen one
  (for SimpleRNN 1e-4 instead of 3e-4), which slows the growth of weight_hh.

Both recipes train the same model at the same length on seeds 100-104, apart from the study's
0-4. A run already saved by the integrator sweep (results/reach/sweep_integrator/, seeds 100
and 101 at each of its rates) or by this study's first check (results/reach/remedy/) is read
from there rather than trained again. The rule, fixed before these runs: a variant passes if
none of its runs diverges and at least as many of its runs end at >= 95 % dev accuracy as the
plain recipe's; until then it stays out of the reach study's defaults (recipes.NOT_PASSED).
Dev accuracy only; no test accuracy is read.
"""
import argparse
import os
import statistics
import sys

from tabulate import tabulate

from experiment import cluster, configs, grid, recipes, stats
from experiment.runs import find_record
from lib.atomic_files import atomic_write_text
from lib.cli_types import given_options, non_negative_int, refuse_repeats, sequence_length
from models import MODELS, display_name
from studies.common import add_study_arguments, prepare_study, print_report, study_command
from studies.sweep_learning_rates import SWEEPS

RESULTS_DIR = os.path.join("results", "reach", "remedy")
PLAIN = "integrator"
# where runs of these configurations may already be saved: the sweep, and the first check
ALSO_SAVED = (SWEEPS[PLAIN]["results_dir"], os.path.join(RESULTS_DIR, PLAIN))
# each variant: what it changes, its folder of runs and remedy.md when none is given, and the
# recipe that climbs the reach ladder with it once it passes
VARIANTS = {
    "bounded": {"what": "the same with every recurrent matrix's singular values cut down to its "
                        "start's after each step",
                "results_dir": RESULTS_DIR, "recipe": "integrator_bounded"},
    "smaller-rate": {"what": "the same at the next smaller rate of its sweep",
                     "results_dir": os.path.join(RESULTS_DIR, "smaller_rate"),
                     "recipe": "integrator_smaller_rate"},
}
SEEDS = (100, 101, 102, 103, 104)
SOLVED_KEY = f"dev >= {stats.SOLVED_ACCURACY:g} %"    # the study's threshold, read on dev data


def smaller_rate(model):
    """The largest rate of the integrator sweep below the rate the recipe chose for `model`."""
    chosen = recipes.recipe_lr(PLAIN, "adam", model)
    below = [rate for rate in SWEEPS[PLAIN]["rates"] if rate < chosen]
    if not below:
        sys.exit(f"error: {model}'s integrator rate {chosen:g} is the smallest of its sweep")
    return max(below)


def variant_recipe(variant, model):
    """(recipe, overrides, label) of a variant's runs: the label names its folder and row."""
    if variant == "bounded":
        recipe = VARIANTS[variant]["recipe"]
        return recipe, {}, recipe
    rate = smaller_rate(model)
    return PLAIN, {"lr": rate}, f"integrator_lr{rate:g}"


def saved_elsewhere(config, folder):
    """A record of `config` saved by the sweep or the first check (not in `folder`), or None."""
    for other in ALSO_SAVED:
        if os.path.normpath(other) != os.path.normpath(folder):
            record = find_record(other, config)
            if record is not None:
                return record
    return None


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
    """The rule applied to the two rows; a variant that its first runs already fail (one
    diverged, or too few runs left to solve as many as the plain recipe) fails then."""
    plain, variant = rows
    key = SOLVED_KEY
    missing = runs - variant["runs"]
    fails = variant["diverged"] > 0 or variant[key] + missing < plain[key]
    if plain["runs"] < runs or (missing and not fails):
        return "not decided: runs are missing"
    p = stats.fisher_p(plain["diverged"], plain["runs"], variant["diverged"], variant["runs"])
    return (f"diverged: {plain['diverged']}/{plain['runs']} plain, {variant['diverged']}/"
            f"{variant['runs']} {variant['recipe']} (Fisher's exact test p = {p:.2g}); {key}: "
            f"{plain[key]} against {variant[key]}. The variant "
            + ("passes the rule." if not fails else "does not pass the rule"
               + (f" (decided by its {variant['runs']} run{'s' * (variant['runs'] > 1)} so far)."
                  if missing else ".")))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description="Train the integrator recipe and a variant of it on dev seeds and say whether "
                    "the variant stops the divergence (the rule is in the module's text).")
    parser.add_argument("--variant", choices=list(VARIANTS), default="bounded",
                        help="bounded: every recurrent matrix kept within its start's norm; "
                             "smaller-rate: the next smaller rate of the integrator sweep "
                             "(default: %(default)s)")
    parser.add_argument("--model", choices=[m for m in MODELS if m != "lstm"], default="simple_rnn",
                        help="the model; the LSTM has no bound (default: %(default)s)")
    parser.add_argument("--length", type=sequence_length, default=500, help="L (default: %(default)s)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(SEEDS),
                        help="dev seeds, apart from the study's 0-4 (default: %(default)s)")
    add_study_arguments(parser, None, "<recipe>/runs/ and remedy.md (default: "
                        + ", ".join(f"{v}: {d['results_dir']}" for v, d in VARIANTS.items()) + ")")
    options = parser.parse_args(argv)
    refuse_repeats(parser, options, ("seeds",))
    options.given = given_options(parser, argv)
    default_dir = VARIANTS[options.variant]["results_dir"]
    options.results_dir = options.results_dir or default_dir
    recipe, overrides, label = variant_recipe(options.variant, options.model)
    arms = [(PLAIN, {}, PLAIN), (recipe, overrides, label)]
    data_options = prepare_study(options, [options.length],
                                 [os.path.join(options.results_dir, arm[2]) for arm in arms])
    records = {}
    for recipe, overrides, label in arms:
        folder = os.path.join(options.results_dir, label)
        todo = [configs.run_config(options.model, options.length, seed, data_options[options.length],
                                   recipe, epochs=options.epochs, **overrides) for seed in options.seeds]
        elsewhere = {c["seed"]: saved_elsewhere(c, folder) for c in todo}
        own = [c for c in todo if elsewhere[c["seed"]] is None]
        if options.report:
            trained = [r for r in (find_record(folder, c) for c in own) if r]
        else:
            trained, _ = grid.train_grid(own, options.data_dir, folder, cluster.executor_from(options),
                                          options.force)
        found = {r["config"]["seed"]: r for r in trained}
        found.update({s: r for s, r in elsewhere.items() if r is not None})
        records[label] = [found[s] for s in options.seeds if s in found]
    rows = [recipe_row(label, records[label]) for _, _, label in arms]
    command = study_command("studies.remedy", argv)
    text = (f"# A remedy on dev seeds: {options.variant}\n\nMade by: `{command}`\n\n"
            f"{display_name(options.model)} at L = {options.length}, seeds {', '.join(map(str, options.seeds))}: "
            f"the integrator recipe, and {VARIANTS[options.variant]['what']} "
            f"(`{label}`). Dev accuracy at the end of training; no test accuracy is read.\n\n"
            f"{tabulate(rows, headers='keys', tablefmt='github', disable_numparse=True)}\n\n"
            f"{verdict(rows, len(options.seeds))}\n")
    narrowed = (os.path.normpath(options.results_dir) == os.path.normpath(default_dir)
                and bool(options.given & {"model", "length", "seeds", "epochs", "train", "dev", "test"}))
    if not narrowed:
        os.makedirs(options.results_dir, exist_ok=True)
        atomic_write_text(os.path.join(options.results_dir, "remedy.md"), text)
    print_report(text, narrowed, "remedy.md")


if __name__ == "__main__":
    main()

"""How far each network reaches: a ladder of sequence lengths, climbed per (model, recipe).

    python -m studies.reach                        # the study: 5 models x 3 recipes, L = 10 .. 5000
    python -m studies.reach --models lstm --recipes modern --lengths 10 50 100 --seeds 3
    python -m studies.reach --report               # reach.md, reach.csv and reach.png from the saved runs

A rung is one length with one run per seed (5 by default). It is reached when at least 3 of
every 5 of its runs solve the task (stats.solved: test accuracy >= 95 %). A ladder climbs
to the next length only from a reached rung: the runs above the first rung it misses would
be wasted compute. Runs are ordinary train_rnn.py runs, saved the moment they end under
<results-dir>/<recipe>/runs/, and reused when the same command runs again, so an
interrupted climb goes on where it stopped (--force retrains). Every ladder climbs at once
on a pool of --jobs worker processes, or on the workers of a Dask cluster (--scheduler): a
ladder's next rung starts as soon as its last rung is decided.

The whole study also climbs WIRED_LADDERS (the clocked networks in which every layer reads
every layer) and LONG_LADDERS, which go one rung further, to L = 10,000 (LONG_RUNG), and each
recipe of RECIPE_BASELINES is tested rung by rung against the recipe it was built to improve on.

A model is a registry name, or name:P for another width than P = 50 per layer, e.g.
clockwork:35 (Clockwork(1,2,4,8) with 35 units a layer has about AlarmworkNet's parameters).
"""
import argparse
import heapq
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tabulate import tabulate
from tqdm import tqdm

from experiment import cluster, configs, grid, recipes, report, stats, training
from experiment.runs import discard_checkpoint, find_record, save_record
from lib.atomic_files import atomic_write_text
from lib.bptt import check_periods
from lib.cli_types import given_options, positive_int, refuse_repeats, sequence_length
from models import MODELS, build_model, count_parameters
from studies.common import (add_study_arguments, parse_model, prepare_study, print_report,
                            study_command)

DEFAULT_MODELS = ("simple_rnn", "lstm", "alarmwork", "clockwork", "clockwork:35")
# ladders that the whole study climbs one rung further, to LONG_RUNG, once they reach the last
# of DEFAULT_LENGTHS: ((model, recipe), ...); the others stop at 5000, where no more cores go.
# Their recipe climbs these ladders only
LONG_LADDERS = (("alarmwork:all", "integrator_warmup"), ("clockwork:all", "integrator_warmup"),
                ("simple_rnn", "integrator_warmup"))
LONG_RUNG = 10_000
# every recipe whose learning rates are chosen (one joins the study when its sweep is complete),
# but for a remedy that has not passed its check on dev data (studies.remedy) and the recipe of
# LONG_LADDERS
DEFAULT_RECIPES = tuple(name for name, values in recipes.RECIPES.items()
                        if name not in recipes.NOT_PASSED
                        and name not in {recipe for _, recipe in LONG_LADDERS}
                        and (not isinstance(values["lr"], dict) or None not in values["lr"].values()))
# the clocked networks in which every layer reads every layer (SPEC.md, section 7) climb under
# the integrator recipe only, and join the whole study once its sweep has chosen their rate
WIRED_LADDERS = (("alarmwork:all", "integrator"), ("clockwork:all", "integrator"))
# a recipe built to improve on another: each of its ladders is tested, rung by rung, against the
# same network's ladder under that other recipe ({recipe: the recipe it is compared with})
RECIPE_BASELINES = {"integrator_warmup": "integrator"}
DEFAULT_LENGTHS = (10, 50, 100, 200, 500, 1000, 2000, 5000)
DEFAULT_SEEDS = 5
REACHED_FRACTION = 3 / 5     # a rung is reached when at least 3 of its 5 runs solve the task
RESULTS_DIR = os.path.join("results", "reach")


# ------------------------------------------------------------------------------ the climbing rule

def runs_needed(runs_per_rung):
    """How many runs of a rung must solve the task for it to be reached: 3 of 5."""
    return math.ceil(REACHED_FRACTION * runs_per_rung - 1e-9)


def rung_reached(test_accuracies):
    """At least 3 of every 5 runs of the rung solved the task."""
    return sum(stats.solved(a) for a in test_accuracies) >= runs_needed(len(test_accuracies))


def rung_outcome(test_accuracies, runs_per_rung):
    """'reached' or 'missed' once the runs saved so far decide the rung whatever its other runs
    do (3 solved, or too few runs left to make 3); None while they do not."""
    solved, needed = sum(stats.solved(a) for a in test_accuracies), runs_needed(runs_per_rung)
    if solved >= needed:
        return "reached"
    if solved + runs_per_rung - len(test_accuracies) < needed:
        return "missed"
    return None


def next_rung(lengths, decided):
    """The next length to train, or None once the climb stops.

    decided: {L: test accuracies of its runs} for the rungs whose runs have all ended.
    """
    for seq_len in lengths:
        if seq_len not in decided:
            return seq_len
        if not rung_reached(decided[seq_len]):
            return None
    return None


def accuracy_of(record):
    return record["test_accuracy"] if record["status"] != "diverged" else None


# ------------------------------------------------------------------------------ ladders

@dataclass
class Ladder:
    """One (model, width, recipe, wiring): its folder, configurations per rung, and records."""
    model: str
    hidden: int
    recipe: str
    results_dir: str
    configs: dict                                   # {L: [config of each seed]}
    records: dict = field(default_factory=dict)     # {L: {seed: record}}
    wiring: str = "slower"

    @property
    def lengths(self):
        """The ladder's rungs, in climbing order."""
        return sorted(self.configs)

    @property
    def label(self):
        return report.model_label(self.configs[min(self.configs)][0])

    def decided(self):
        """{L: test accuracies} of the rungs whose runs have all ended."""
        return {L: [accuracy_of(r) for r in self.records[L].values()]
                for L, configs in self.configs.items()
                if len(self.records.get(L, {})) == len(configs)}

    def add(self, record):
        config = record["config"]
        self.records.setdefault(config["seq_len"], {})[config["seed"]] = record


def make_ladder(spec, recipe, options, data_options, lengths=None):
    """A ladder: the model (a ModelSpec), the recipe, its lengths (default: the study's) and
    every seed of the study. Its runs live in the folder of the recipe they follow
    (ladder_folder), whichever recipe that shares them is named."""
    by_length = {L: [run_config(spec, L, seed, data_options[L], recipe, options)
                     for seed in range(options.seeds)]
                 for L in lengths or options.lengths}
    return Ladder(spec.name, spec.hidden, recipe, ladder_folder(spec, recipe, options), by_length,
                  wiring=spec.wiring)


def run_config(spec, seq_len, seed, data, recipe, options):
    return configs.run_config(spec.name, seq_len, seed, data, recipe, hidden=spec.hidden,
                              periods=options.periods, epochs=options.epochs, wiring=spec.wiring)


def ladder_folder(spec, recipe, options):
    """<results-dir>/<the recipe the ladder's runs are named after>: the first recipe of
    recipes.RECIPES whose every setting they have (configs.normalize). integrator_smaller_rate's
    LSTM runs are the integrator recipe's, so they are kept under integrator/ however the
    command names them."""
    config = run_config(spec, options.lengths[0], 0, None, recipe, options)
    return os.path.join(options.results_dir, configs.setting(config, "recipe"))


def chosen_pairs(options):
    """(ModelSpec, recipe, lengths) of every ladder the command climbs: each model under each
    recipe, on the study's lengths; the whole study (neither --models nor --recipes given) adds
    WIRED_LADDERS and LONG_LADDERS whose settings are chosen, a long ladder with LONG_RUNG
    on top of the default lengths (unless --lengths is given)."""
    lengths = list(options.lengths)
    pairs = [(spec, recipe, lengths) for recipe in options.recipes for spec in options.models]
    if not options.given & {"models", "recipes"}:
        longer = lengths + ([LONG_RUNG] if "lengths" not in options.given else [])
        for ladders, ladder_lengths in ((WIRED_LADDERS, lengths), (LONG_LADDERS, longer)):
            for text, recipe in ladders:
                spec = parse_model(text)
                try:
                    configs.resolve_recipe(spec.name, lengths[0], recipe, wiring=spec.wiring)
                except configs.ConfigError:             # its sweep has not chosen it yet
                    continue
                pairs.append((spec, recipe, ladder_lengths))
    return pairs


def same_ladder(ladder, other):
    """Whether two ladders train the same runs: a recipe that changes only other models'
    settings (integrator_smaller_rate) climbs the same ladders as its parent for those models."""
    return ladder.configs.keys() == other.configs.keys() and all(
        len(ours) == len(theirs) and all(map(configs.same_run, ours, theirs))
        for ours, theirs in zip(ladder.configs.values(), other.configs.values()))


def distinct(ladders):
    """The ladders, each climbed and reported once: of the ladders that train the same runs
    (under several recipes), one is kept, in the place of the first: the one named after its
    runs' own recipe where that recipe is among them, else the one of the earliest recipe in
    recipes.RECIPES. The order the recipes are named in changes nothing."""
    def preference(ladder):
        home = os.path.basename(ladder.results_dir)
        return ladder.recipe != home, list(recipes.RECIPES).index(ladder.recipe)

    kept = []
    for ladder in ladders:
        twin = next((i for i, other in enumerate(kept) if same_ladder(ladder, other)), None)
        if twin is None:
            kept.append(ladder)
        elif preference(ladder) < preference(kept[twin]):
            kept[twin] = ladder
    return kept


def load_saved(ladder):
    """Fill a ladder with the records already saved for it."""
    for rung in ladder.configs.values():
        for config in rung:
            record = find_record(ladder.results_dir, config)
            if record is not None:
                ladder.add(record)


# ------------------------------------------------------------------------------ climbing

def climb(ladders, options):
    """Climb every ladder at once; each finished run is saved the moment it ends.

    The runs of the rungs that are ready wait in one queue, the longest first, and go to the
    pool one per free worker: a long rung starts as soon as it may, instead of after every
    short run queued before it, so the climb does not end on one long run.
    """
    waiting = []                     # heap of (-L, rung order, seed, ladder id, ladder, config)
    queued = set()                   # (ladder, L): rungs queued by this command
    overall = tqdm(total=0, desc="runs", unit="run", position=0)

    def advance(ladder):
        """Queue the runs of the ladder's next rung that are not saved yet."""
        while (seq_len := next_rung(ladder.lengths, ladder.decided())) is not None:
            if (id(ladder), seq_len) in queued:
                return                               # still running
            queued.add((id(ladder), seq_len))
            todo = [c for c in ladder.configs[seq_len]
                    if c["seed"] not in ladder.records.get(seq_len, {})]
            overall.total += len(todo)
            overall.refresh()
            for config in todo:
                heapq.heappush(waiting, (-seq_len, len(queued), config["seed"], id(ladder), ladder, config))
            if todo:
                return

    def next_job():
        if not waiting:
            return None
        *_, ladder, config = heapq.heappop(waiting)
        return config, options.data_dir, ladder.results_dir, ladder

    def on_record(job, record):
        ladder = job[3]
        save_record(ladder.results_dir, record)
        ladder.add(record)
        overall.update(1)
        overall.write(f"[{ladder.recipe}] {report.describe_run(record)}")
        advance(ladder)

    for ladder in ladders:
        advance(ladder)
    try:
        grid.train_runs(next_job, on_record, cluster.executor_from(options))
    except KeyboardInterrupt:
        overall.close()
        raise SystemExit(f"\ninterrupted: every finished run is saved under {options.results_dir}, "
                         "and a run in progress keeps its last epoch; run the same command again "
                         "to go on")
    except (grid.RunFailed, grid.ClusterLost) as error:
        overall.close()
        raise SystemExit(f"error: {error}; every finished run is saved under {options.results_dir}, "
                         "and the same command goes on from the checkpoints")
    overall.close()


# ------------------------------------------------------------------------------ report

def rung_text(seq_len, accuracies, runs_per_rung, epochs):
    """'100: 4/5 (9 ep)': solved/runs at L, median epochs of the solved runs."""
    return f"{seq_len}: {rung_cell(accuracies, runs_per_rung, epochs)}"


def rung_cell(accuracies, runs_per_rung, epochs):
    """'4/5 (9 ep)': solved/runs of a rung, median epochs of the solved runs."""
    solved = sum(stats.solved(a) for a in accuracies)
    text = f"{solved}/{len(accuracies)}"
    if len(accuracies) < runs_per_rung:
        text += f" of {runs_per_rung} so far"
    solved_epochs = [e for a, e in zip(accuracies, epochs) if stats.solved(a)]
    return text + (f" ({np.median(solved_epochs):g} ep)" if solved_epochs else "")


def ladder_summary(ladder, lengths, runs_per_rung):
    """One row of reach.md: the longest length reached, the rungs, size and epochs to solve."""
    rungs, reached, state = [], None, "not started"
    for seq_len in lengths:
        records = list(ladder.records.get(seq_len, {}).values())
        if not records:
            break
        accuracies = [accuracy_of(r) for r in records]
        rungs.append(rung_text(seq_len, accuracies, runs_per_rung, [r["epochs_run"] for r in records]))
        outcome = rung_outcome(accuracies, runs_per_rung)
        # a rung that its first runs decide is reported so; its other runs still train
        pending = (f" ({runs_per_rung - len(records)} of its runs to go)"
                   if len(records) < runs_per_rung else "")
        if outcome is None:
            state = f"L = {seq_len} running"
            break
        if outcome == "missed":
            state = f"stopped at L = {seq_len}{pending}"
            break
        reached = seq_len
        if pending:
            state = f"L = {seq_len} reached{pending}"
            break
        state = "top rung reached" if seq_len == lengths[-1] else "next rung to run"
    epochs = [r["epochs_run"] for r in ladder.records.get(reached, {}).values()
              if stats.solved(accuracy_of(r))] if reached else []
    config = ladder.configs[lengths[0]][0]
    return {
        "model": ladder.label, "recipe": ladder.recipe, "lr": config["lr"],
        "parameters": count_parameters(build_model(ladder.model, ladder.hidden,
                                                   periods=config.get("periods"),
                                                   wiring=ladder.wiring)),
        "reach": reached, "state": state, "rungs": ", ".join(rungs),
        "median_epochs_to_solve": float(np.median(epochs)) if epochs else None,
    }


def climbed(ladder, lengths):
    """{L: {seed: record}} of the rungs the ladder climbed: up to the first rung it did not
    reach (or the rung in progress). Saved runs of a higher rung, reused from elsewhere, are
    not part of the climb."""
    rungs = {}
    for seq_len in lengths:
        by_seed = ladder.records.get(seq_len, {})
        if not by_seed:
            break
        rungs[seq_len] = by_seed
        if len(by_seed) < len(ladder.configs[seq_len]) or not rung_reached(
                [accuracy_of(r) for r in by_seed.values()]):
            break
    return rungs


def runs_rows(ladders):
    """One row per run of every rung climbed: the data behind reach.md and reach.png."""
    rows = []
    for ladder in ladders:
        for seq_len, by_seed in climbed(ladder, ladder.lengths).items():
            for seed, record in sorted(by_seed.items()):
                accuracy = accuracy_of(record)
                rows.append({"model": ladder.label, "recipe": ladder.recipe, "seq_len": seq_len,
                             "seed": seed, "lr": record["config"]["lr"], "status": record["status"],
                             "test_accuracy": accuracy,
                             "solved": stats.solved(accuracy), "epochs_run": record["epochs_run"],
                             "train_seconds": record["train_seconds"]})
    return pd.DataFrame(rows)


def ladder_key(ladder, **changes):
    """(model, width, periods, wiring, recipe) of a ladder, with `changes` made: the ladder a
    comparison pairs it with has the same key but for the one setting compared."""
    config = ladder.configs[min(ladder.configs)][0]
    key = {"model": ladder.model, "hidden": ladder.hidden,
           "periods": tuple(config.get("periods") or ()), "wiring": ladder.wiring,
           "recipe": ladder.recipe}
    return tuple({**key, **changes}.values())


def pairs_differing_in(ladders, setting, partner_value):
    """[(other, ladder)]: each ladder for which partner_value(ladder) names a value of `setting`
    ("wiring" or "recipe"), paired with the ladder of that value and otherwise the same."""
    by_key = {ladder_key(ladder): ladder for ladder in ladders}
    pairs = []
    for ladder in ladders:
        value = partner_value(ladder)
        other = by_key.get(ladder_key(ladder, **{setting: value})) if value else None
        if other is not None:
            pairs.append((other, ladder))
    return pairs


def compared_rows(pairs, runs_per_rung, headers, first=()):
    """For each (other, ladder) pair, at every rung where both trained all their runs: the
    solved counts and Fisher's two-sided p; {label of the ladder: its rows}. A rung above the
    other ladder's stop was never trained there, so it is not compared. `headers` name the two
    cells; `first(ladder)` gives the columns before them."""
    tables = {}
    for other, ladder in pairs:
        for seq_len in sorted(ladder.configs):
            pair = [list(each.records.get(seq_len, {}).values()) for each in (other, ladder)]
            if min(map(len, pair)) < runs_per_rung:
                continue
            accuracies = [[accuracy_of(r) for r in runs] for runs in pair]
            counts = [(sum(map(stats.solved, a)), len(a)) for a in accuracies]
            cells = [rung_cell(a, runs_per_rung, [r["epochs_run"] for r in runs])
                     for a, runs in zip(accuracies, pair)]
            tables.setdefault(ladder.label, []).append({
                **(first(ladder) if first else {}), "L": seq_len, headers[0]: cells[0],
                headers[1]: cells[1], "Fisher's p": f"{stats.fisher_p(*counts[0], *counts[1]):.2g}"})
    return tables


def wiring_rows(ladders, runs_per_rung):
    """Each all-wired ladder against the ladder of the same model, width, periods and recipe in
    the slower wiring, rung by rung (compared_rows)."""
    pairs = pairs_differing_in(ladders, "wiring",
                               lambda ladder: "slower" if ladder.wiring == "all" else None)
    return compared_rows(pairs, runs_per_rung,
                         ("slower wiring: solved/runs (median epochs of the solved)", "all-wired"),
                         first=lambda ladder: {"recipe": ladder.recipe})


def recipe_rows(ladders, runs_per_rung):
    """Each ladder of a recipe in RECIPE_BASELINES against the same network's ladder under the
    recipe it is compared with, rung by rung (compared_rows); {(label, recipe, baseline): rows}."""
    tables = {}
    for recipe, baseline in RECIPE_BASELINES.items():
        pairs = pairs_differing_in([ladder for ladder in ladders if ladder.recipe in (recipe, baseline)],
                                   "recipe", lambda ladder: baseline if ladder.recipe == recipe else None)
        headers = (f"{baseline}: solved/runs (median epochs of the solved)", recipe)
        for label, rows in compared_rows(pairs, runs_per_rung, headers).items():
            tables[label, recipe, baseline] = rows
    return tables


def write_reach_report(ladders, options, command, write=True):
    """The reach table as text; with `write`, also reach.md, reach.csv (one row per run),
    reach.png and reach_curves.png (the top rungs' dev accuracy) under the results folder."""
    summaries = [ladder_summary(ladder, ladder.lengths, options.seeds) for ladder in ladders]
    recipe_names = list(dict.fromkeys([*options.recipes, *(ladder.recipe for ladder in ladders)]))
    longer = sorted({L for ladder in ladders for L in ladder.lengths} - set(options.lengths))
    also = [f"{ladder.label} under {ladder.recipe}" for ladder in ladders
            if set(ladder.lengths) - set(options.lengths)]
    lines = [{"model": s["model"], "recipe": s["recipe"], "lr": f"{s['lr']:g}",
              "parameters": f"{s['parameters']:,}",
              "reach (longest L reached)": "none" if s["reach"] is None else str(s["reach"]),
              "rungs: solved/runs (median epochs of the solved)": s["rungs"] or "not started",
              "climb": s["state"]} for s in summaries]
    text = (f"# How far does each network reach?\n\nMade by: `{command}`\n\n"
            f"A rung is one length L with {options.seeds} runs (seeds 0..{options.seeds - 1}); it "
            f"is reached when at least {runs_needed(options.seeds)} of them "
            f"solve the task (test accuracy >= {stats.SOLVED_ACCURACY:g} %). A ladder climbs "
            f"{', '.join(map(str, options.lengths))}"
            + (f" (and {', '.join(map(str, longer))}: {'; '.join(also)})" if longer else "")
            + f" and stops after the first rung it does not reach; a rung whose first runs already decide it is reported as decided while its "
            f"other runs train. Recipes: {'; '.join(f'{r}: {recipes.describe_recipe(r)}' for r in recipe_names)}. "
            f"Every run: {training_samples(ladders)} training samples, batches of 20, at most {options.epochs} epochs, "
            f"early stop at dev accuracy above {training.STOP_DEV_ACCURACY:g} %.\n\n"
            f"{tabulate(lines, headers='keys', tablefmt='github', disable_numparse=True)}\n")
    sections = [(f"{wired} against the slower wiring", rows)
                for wired, rows in wiring_rows(ladders, options.seeds).items()]
    sections += [(f"{label}: {recipe} against {baseline}", rows)
                 for (label, recipe, baseline), rows in recipe_rows(ladders, options.seeds).items()]
    for title, rows in sections:
        text += (f"\n## {title}\n\nEvery rung both ladders trained in full: the solved runs of "
                 f"each, and Fisher's exact test (two-sided p) of the difference.\n\n"
                 f"{tabulate(rows, headers='keys', tablefmt='github', disable_numparse=True)}\n")
    if not write:
        return text
    os.makedirs(options.results_dir, exist_ok=True)
    atomic_write_text(os.path.join(options.results_dir, "reach.md"), text)
    runs = runs_rows(ladders)
    atomic_write_text(os.path.join(options.results_dir, "reach.csv"), runs.to_csv(index=False))
    if len(runs):
        plot_reach(runs, options, os.path.join(options.results_dir, "reach.png"))
        plot_top_rungs(ladders, os.path.join(options.results_dir, "reach_curves.png"))
    return text


def plot_top_rungs(ladders, path):
    """The dev-accuracy curves of every ladder's highest rung climbed, one panel per length:
    where the climbs end, do the runs learn slowly, stall, or learn and fall back?"""
    records, labels = [], []
    for ladder in ladders:
        rungs = climbed(ladder, ladder.lengths)
        if rungs:
            top = rungs[max(rungs)]
            records += [top[seed] for seed in sorted(top)]
            labels += [f"{ladder.label} [{ladder.recipe}]"] * len(top)
    report.plot_learning_curves(records, path, labels, legend_below=True)


def training_samples(ladders):
    """The training samples of the data sets the runs use, as stored in them: '10,000'."""
    sizes = sorted({c["data"]["n_train"] for ladder in ladders for rung in ladder.configs.values()
                    for c in rung})
    return " or ".join(f"{n:,}" for n in sizes)


def plot_reach(runs, options, path):
    """Test accuracy against L (log scale), one panel per recipe, every run a dot; a diverged
    run, which has no accuracy, is a cross at 0 and counts as 0 in the median, as the failure it
    is."""
    from matplotlib.figure import Figure   # imported when drawing: a worker never draws
    recipe_names = list(dict.fromkeys([*options.recipes, *runs["recipe"]]))   # long ladders' too
    figure = Figure(figsize=(5.6 * len(recipe_names), 4.4))
    panels = figure.subplots(1, len(recipe_names), sharey=True, squeeze=False)
    labels = list(dict.fromkeys(runs["model"]))
    for panel, recipe in zip(panels[0], recipe_names):
        of_recipe = runs[runs["recipe"] == recipe]
        for i, label in enumerate(labels):
            of_model = of_recipe[of_recipe["model"] == label]
            if of_model.empty:
                continue
            shift = 1.0 + 0.035 * (i - (len(labels) - 1) / 2)   # side by side on the log axis
            diverged = of_model["status"] == "diverged"
            finished = of_model[~diverged]
            panel.scatter(finished["seq_len"] * shift, finished["test_accuracy"], s=14,
                          color=f"C{i}", alpha=0.6)
            panel.scatter(of_model[diverged]["seq_len"] * shift, [0] * int(diverged.sum()), s=30,
                          marker="x", color=f"C{i}")
            medians = of_model["test_accuracy"].fillna(0).groupby(of_model["seq_len"]).median()
            panel.plot(medians.index * shift, medians.values, color=f"C{i}", label=label)
        report.plot_solved_threshold(panel)
        panel.set_xscale("log")
        lengths = sorted(set(options.lengths) | set(runs["seq_len"]))
        panel.set_xticks(lengths)
        panel.set_xticklabels([str(L) for L in lengths])
        panel.minorticks_off()
        panel.set_title(f"recipe: {recipe}")
        panel.set_xlabel("sequence length L (log scale)")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7, loc="lower left")
    panels[0][0].set_ylabel("test accuracy (%)\ndots: runs, x: diverged (0), line: median")
    panels[0][0].set_ylim(-3, 102)                         # the crosses at 0 whole
    figure.tight_layout()
    report.save_figure(figure, path)


# ------------------------------------------------------------------------------ command line

SELECTION = ("models", "recipes", "lengths", "seeds", "periods", "epochs", "train", "dev", "test")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Climb a ladder of sequence lengths for each model and recipe, and report "
                    "how far each reaches. In the study's folder (results/reach), reach.md, "
                    "reach.csv and reach.png describe the whole study: a command that selects part "
                    "of it (--models, --recipes, --lengths, ...) prints that part and leaves them "
                    "alone. In another --results-dir, they describe the command's own study.")
    parser.add_argument("--models", nargs="+", type=parse_model, metavar="MODEL[:P][:WIRING]",
                        default=[parse_model(m) for m in DEFAULT_MODELS],
                        help=f"models, each a registry name ({', '.join(MODELS)}) with an "
                             f"optional width and, for alarmwork and clockwork, wiring, e.g. "
                             f"clockwork:35 or alarmwork:all (SPEC.md, section 7) (default: "
                             f"{' '.join(DEFAULT_MODELS)}; with neither --models nor --recipes, "
                             f"also {', '.join(f'{m} under {r}' for m, r in WIRED_LADDERS)} once "
                             f"their rate is chosen)")
    parser.add_argument("--recipes", nargs="+", choices=list(recipes.RECIPES),
                        default=list(DEFAULT_RECIPES),
                        help="training recipes, see python train_rnn.py --help (default: %(default)s)")
    parser.add_argument("--lengths", nargs="+", type=sequence_length, default=list(DEFAULT_LENGTHS),
                        metavar="L", help="the rungs, increasing (default: %(default)s)")
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help="runs per rung, seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--periods", type=positive_int, nargs="+", default=list(configs.DEFAULT_PERIODS),
                        metavar="T", help="ClockworkRNN's clock periods (default: %(default)s)")
    add_study_arguments(parser, RESULTS_DIR, "<recipe>/runs/ and reach.{md,csv,png}")
    options = parser.parse_args(argv)
    # the study's own folder holds the whole study: a part of it is printed, not written there
    options.given = given_options(parser, argv)
    options.narrowed = (os.path.normpath(options.results_dir) == RESULTS_DIR
                        and bool(options.given & set(SELECTION)))
    refuse_repeats(parser, options, ("lengths", "models", "recipes"))
    if options.lengths != sorted(options.lengths):
        parser.error(f"--lengths: a ladder's rungs increase, got {' '.join(map(str, options.lengths))}")
    try:
        check_periods(options.periods)
    except ValueError as error:
        parser.error(f"--periods: {error}")
    for recipe in options.recipes:
        for spec in options.models:
            try:
                configs.resolve_recipe(spec.name, options.lengths[0], recipe, wiring=spec.wiring)
            except configs.ConfigError as error:
                parser.error(f"--recipes {recipe}: {error}")
    options.pairs = chosen_pairs(options)
    return options


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    folders = {ladder_folder(spec, recipe, options) for spec, recipe, _ in options.pairs}
    lengths = sorted({L for _, _, of_ladder in options.pairs for L in of_ladder})
    data_options = prepare_study(options, lengths, sorted(folders))
    ladders = distinct([make_ladder(spec, recipe, options, data_options, of_ladder)
                        for spec, recipe, of_ladder in options.pairs])
    for ladder in ladders:
        if options.force and not options.report:     # --force climbs again from nothing
            for rung in ladder.configs.values():
                for config in rung:
                    discard_checkpoint(ladder.results_dir, config)
        else:
            load_saved(ladder)
    if not options.report:
        climb(ladders, options)
    text = write_reach_report(ladders, options, study_command("studies.reach", argv),
                              write=not options.narrowed)
    print_report(text, options.narrowed, "reach.md, reach.csv and reach.png")


if __name__ == "__main__":
    main()

"""Choosing saved runs for a report, and grouping them by configuration.

`python train_rnn.py --report` reports the runs of a results folder; the options written
with it narrow the selection (`--report --models lstm --seeds 5`). Runs of several
configurations (say, with and without clipping) get one table each, titled by what differs.
"""
import sys

from experiment import configs, recipes, report
from experiment.datasets import DATA_FLAGS
from experiment.runs import load_records
from lib.cli_types import NONE
from models import MODELS

RECIPE_RATE = "the recipe's"   # an lr that a recipe sets per model, in a configuration


class Request:
    """What a --report command asks for: the models, lengths and seeds, the data flags and
    the settings written on the command line ({run_config keyword: value}); None: any."""

    def __init__(self, models=None, lengths=None, seeds=None, data=None, settings=None, words=""):
        self.models, self.lengths, self.seeds = models, lengths, seeds
        self.data, self.settings = data or {}, settings or {}
        self.words = words      # the narrowing options as written, for messages

    @property
    def narrowed(self):
        return any(v is not None for v in (self.models, self.lengths, self.seeds)) or bool(
            self.data or self.settings)


def selected(config, request):
    """Whether a saved run agrees with everything the request names."""
    if (request.models is not None and config["model"] not in request.models
            or request.lengths is not None and config["seq_len"] not in request.lengths
            or request.seeds is not None and config["seed"] not in request.seeds):
        return False
    if any((config.get("data") or {}).get(DATA_FLAGS[dest][1]) != value
           for dest, value in request.data.items()):
        return False
    settings = {"lr": config["lr"], **request.settings}   # a rate not asked for is any rate
    try:
        expected = configs.run_config(config["model"], config["seq_len"], config["seed"],
                                      config.get("data"), **settings)
    except configs.ConfigError:
        return False
    return all(configs.setting(expected, name) == configs.setting(config, name)
               for name in request.settings)


def saved_records(results_dir, request=None):
    """The runs saved in the results folder that the request selects, in table order; exits
    with a one-line error when there are none."""
    request = request or Request()
    folder = f"{results_dir}/runs"
    saved = load_records(results_dir)
    if not saved:
        sys.exit(f"error: no runs are saved in {folder}; train them first (without --report)")
    records = [r for r in saved if selected(r["config"], request)]
    if not records:
        sys.exit(f"error: none of the {len(saved)} run(s) saved in {folder} match {request.words}")
    if request.narrowed:
        print(f"reporting {len(records)} of the {len(saved)} run(s) saved in {folder} "
              f"(those that match {request.words})")
    models = request.models or list(MODELS)
    return sorted(records, key=lambda r: table_order(r["config"], models))


def table_order(config, models):
    """Rows by model (then width and clocks), columns by length, then seeds."""
    return (models.index(config["model"]), config["hidden"] != report.DEFAULT_HIDDEN,
            config["hidden"], config.get("periods") or [], config["seq_len"], config["seed"])


# ------------------------------------------------------------------------------ configurations

def configuration_of(config):
    """What a run shares with the other runs of its command, by name.

    That is its configuration apart from the model, the length and the seed, and apart from
    what the model's label in the table already tells (hidden, periods, wiring), so runs of
    several widths share a table. A setting of some models only (engine, lstm_forget_bias) is left out
    of the others'; a rate that the recipe sets per model reads "the recipe's"; the data enter
    by their generator options (data_seed, n_train, n_dev, n_test).
    """
    model = config["model"]
    options = {k: v for k, v in config.items()
               if k not in ("model", "seq_len", "seed", "hidden", "periods", "wiring", "data", "engine")
               and k not in configs.LEFT_OUT}
    options.update({name: configs.setting(config, name) for name in ("recipe", "optimizer")})
    if model in configs.ENGINE_MODELS:
        options["engine"] = config["engine"]
    for name in configs.LSTM_ONLY if model == "lstm" else configs.NOT_LSTM:
        options[name] = configs.setting(config, name)
    if is_recipe_rate_per_model(config):
        options["lr"] = RECIPE_RATE
    if options.get("lstm_chrono") == config["seq_len"]:
        options["lstm_chrono"] = recipes.SEQ_LEN      # T_max = L: one setting at every length
    options.update({"data_seed" if k == "seed" else k: v
                    for k, v in (config.get("data") or {}).items() if k != "seq_len"})
    return options


def is_recipe_rate_per_model(config):
    """Whether the run's lr is its recipe's rate for its model, in a recipe whose rates differ
    between models (the runs of one command then differ in lr, and belong together)."""
    try:
        rates = recipes.optimizer_recipe(configs.setting(config, "recipe"),
                                         configs.setting(config, "optimizer"))["lr"]
    except (KeyError, StopIteration):   # a recipe or optimizer this version does not know
        return False
    return (isinstance(rates, dict) and len(set(rates.values())) > 1
            and rates.get(recipes.rate_key(config["model"], configs.setting(config, "wiring")))
            == config["lr"])


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
    for merged, members in groups:      # then every run joins every configuration it agrees with
        members.extend(i for i in range(len(records))
                       if all(merged.get(k, v) == v for k, v in options[i].items()))
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

"""Recipes: named sets of the settings that say how the weights move and how they start.

A recipe sets the optimizer, its learning rate (one, or one per model), SGD's momentum,
Adam's eps, a linear warm-up of the rate, gradient clipping, the LSTM's forget-gate bias, the
start of the recurrence (the nonlinearity, the recurrent initialization, chrono
initialization of nn.LSTM), whether the recurrent matrices are kept within a spectral norm,
and whether a run that can no longer change ends early. The data and the budget are the
protocol's and stay the same (SPEC.md, section "6. Recipes").
"""
from lib.cli_types import NONE

OPTIMIZERS = ("sgd", "adam", "radam")
# RAdam (Liu et al. 2020) is Adam with its first steps' variance rectified: it takes Adam's rates
ADAM_FAMILY = ("adam", "radam")
SEQ_LEN = "L"   # a setting that a recipe sets to each run's sequence length
# settings that a recipe's description names only where the recipe turns them on, so that the
# descriptions of the recipes without them (in --help and in the results' captions) stay short
UNSAID_WHEN_OFF = {"warmup_steps": 0, "adam_eps": None, "end_frozen": False}

# "lr" is one rate, or a rate per model (the registry's names); any other setting but the
# optimizer and its momentum may also be one value per model ({rate_key: value}), which
# configs.resolve_recipe picks by the run's model. The modern rates are the
# winners of the sweep on dev data in results/reach/sweep/ (python -m studies.sweep_learning_rates);
# SimpleRNN and Clockwork left the plateau at no rate there and keep the fallback 1e-3. The
# integrator recipe's rates are chosen by its own sweep at L = 500 (results/reach/sweep_integrator/):
# Clockwork left the plateau at no rate and keeps that sweep's fallback, 1e-4; both all-wired
# networks solve L = 500 at 1e-4 and collapse at 3e-4. A recipe may hold
# None for a model whose sweep has not ended: its runs then need an explicit --lr. Tests check
# the rates against the sweeps.
RECIPES = {
    "assignment": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "clip_grad_norm": None,
                   "lstm_forget_bias": None, "nonlinearity": "tanh", "recurrent_init": "default",
                   "lstm_chrono": None, "recurrent_bound": None, "warmup_steps": 0,
                   "adam_eps": None, "end_frozen": False},
    "modern": {"optimizer": "adam",
               "lr": {"simple_rnn": 1e-3, "lstm": 3e-3, "alarmwork": 3e-4, "clockwork": 1e-3},
               "momentum": None,
               "clip_grad_norm": 1.0,      # Pascanu et al. 2013
               "lstm_forget_bias": 1.0,    # Gers et al. 2000; Jozefowicz et al. 2015
               "nonlinearity": "tanh", "recurrent_init": "default", "lstm_chrono": None,
               "recurrent_bound": None, "warmup_steps": 0, "adam_eps": None, "end_frozen": False},
    # every network starts as an integrator: ReLU with an identity start (Le et al. 2015), the
    # clocked layers' identity scaled to an average; nn.LSTM with chrono initialization at
    # T_max = L (Tallec & Ollivier 2018) and no forget bias on top
    "integrator": {"optimizer": "adam",
                   "lr": {"simple_rnn": 3e-4, "lstm": 3e-4, "alarmwork": 3e-4, "clockwork": 1e-4,
                          # the clocked networks with every layer reading every layer (SPEC.md, 7)
                          "alarmwork:all": 1e-4, "clockwork:all": 1e-4},
                   "momentum": None, "clip_grad_norm": 1.0, "lstm_forget_bias": None,
                   "nonlinearity": "relu", "recurrent_init": "integrator", "lstm_chrono": SEQ_LEN,
                   "recurrent_bound": None, "warmup_steps": 0, "adam_eps": None,
                   "end_frozen": False},
}
# The integrator recipe with every recurrent matrix kept within its start's spectral norm
# (models.bound_recurrence_): a remedy for the ReLU networks' divergence at long lengths
# (results/reach/divergence/). It keeps the integrator recipe's rates.
RECIPES["integrator_bounded"] = {**RECIPES["integrator"], "recurrent_bound": "integrator"}
# The integrator recipe with SimpleRNN, the network that diverges, at the next smaller rate of
# its sweep: the other remedy (results/reach/remedy/smaller_rate/). Every other model keeps its
# rate, so its runs are the integrator recipe's.
RECIPES["integrator_smaller_rate"] = {**RECIPES["integrator"],
                                      "lr": {**RECIPES["integrator"]["lr"], "simple_rnn": 1e-4}}
# One recipe for every length: the integrator recipe, its rates included, with the rate warmed
# up over the first 500 steps (one epoch of 10,000 samples), a run frozen for good ended early,
# and Adam's eps per model: the first candidate, in the order of its sweep on dev data at L = 2000,
# that holds at L = 1000 (results/reach/sweep_recipes/, python -m studies.sweep_recipes). A model
# whose sweep has not decided yet names no eps: its runs need an explicit --adam-eps. Tests check
# the settings against the sweep.
RECIPES["integrator_warmup"] = {**RECIPES["integrator"], "warmup_steps": 500,
                                "adam_eps": {"alarmwork:all": 1e-3, "clockwork:all": 1e-3},
                                "end_frozen": True}
# remedies that have not passed their check on dev data (python -m studies.remedy): they
# stay out of the reach study's default recipes
NOT_PASSED = ("integrator_bounded",)


def optimizer_recipe(recipe, optimizer):
    """The recipe a run takes its optimizer's lr and momentum from: `recipe` if it uses
    `optimizer` (or, for Adam and RAdam, the other of the two), else the first recipe that
    does (`--recipe modern --optimizer sgd` trains with the assignment's SGD)."""
    family = rate_family(optimizer)
    if rate_family(RECIPES[recipe]["optimizer"]) == family:
        return RECIPES[recipe]
    return next(values for values in RECIPES.values()
                if rate_family(values["optimizer"]) == family)


def rate_family(optimizer):
    """The optimizers that share rates: SGD's own, and Adam's for Adam and RAdam."""
    return "adam" if optimizer in ADAM_FAMILY else optimizer


def rate_key(model, wiring="slower"):
    """The name of a model's rate in a recipe's per-model rates: the registry name, and for a
    clocked network in which every layer reads every layer, 'alarmwork:all' (its own sweep
    chooses its rate)."""
    return model if wiring == "slower" else f"{model}:{wiring}"


def recipe_lr(recipe, optimizer, model, wiring="slower"):
    """The learning rate of `model` (with `wiring`) trained with `optimizer` under `recipe`;
    None where the recipe has not chosen one yet."""
    lr = optimizer_recipe(recipe, optimizer)["lr"]
    return lr.get(rate_key(model, wiring)) if isinstance(lr, dict) else lr


def describe_recipe(name):
    """What a recipe sets, in the words of the command line: 'optimizer sgd, lr 0.01, ...'."""
    parts = []
    for key, value in RECIPES[name].items():
        if key in UNSAID_WHEN_OFF and value == UNSAID_WHEN_OFF[key]:
            continue
        if isinstance(value, dict):
            # a rate of None is not chosen yet; another setting's None is the setting off
            unset = "(not chosen yet)" if key == "lr" else NONE
            values = set(value.values())
            if values == {None} and key == "lr":
                value = "not chosen yet"
            elif len(values) == 1 and key == "lr":
                value = f"{shown(values.pop(), unset)} for every model"
            else:
                value = ", ".join(f"{model} {shown(v, unset)}" for model, v in value.items())
        elif isinstance(value, bool):
            value = "on" if value else "off"
        elif value is None:
            value = NONE
        elif value == SEQ_LEN:
            value = "L (each run's length)"
        parts.append(f"{key.replace('_', '-')} {value}")
    return ", ".join(parts)


def shown(value, unset):
    """One value of a recipe's setting as describe_recipe writes it: `unset` for None."""
    if value is None:
        return unset
    if isinstance(value, bool):
        return "on" if value else "off"
    if value == SEQ_LEN:
        return "L (each run's length)"
    return f"{value:g}" if isinstance(value, float) else str(value)

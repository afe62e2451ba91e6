"""A run's configuration: one flat dict of everything the run depends on, in one normal form.

    run_config("lstm", 100, 0, data_options, recipe="modern")
    -> {"model": "lstm", "seq_len": 100, "seed": 0, "recipe": "modern", "optimizer": "adam",
        "lr": 0.003, "momentum": None, "clip_grad_norm": 1.0, "lstm_forget_bias": 1.0, ...}

A configuration holds the recipe resolved into the values the run trains with, so a record
says what was trained without this version's recipes. `normalize` gives every configuration
one form (types, settings of other models dropped, settings at the assignment's value left
out), and the key of a run (runs.run_key) is made from that form: two commands that train
the same run find the same record. Settings newer than the first records are left out at
their defaults (LEFT_OUT), so those records keep their key.

The recipe's name changes nothing once its settings are resolved. A run is named after the
first recipe whose every setting it has (modern with SGD and no clipping is, for
AlarmworkNet, the assignment's run); a run that follows no recipe keeps the name it was
made from, as the saved records do, and runs.find_record finds it under any name.
"""
from experiment import recipes
from models import DEFAULT_PERIODS

ENGINE_MODELS = ("alarmwork", "clockwork")     # the models with a hand-derived BPTT engine

# Left out of a configuration at these values (read back by `setting`).
LEFT_OUT = {"recipe": "assignment", "optimizer": "sgd", "lstm_forget_bias": None, "periods": None,
            "nonlinearity": "tanh", "recurrent_init": "default", "lstm_chrono": None,
            "recurrent_bound": None, "wiring": "slower", "warmup_steps": 0, "adam_eps": None,
            "end_frozen": False}

# The settings a recipe sets (recipes.RECIPES), in a configuration's terms.
TRAINING_SETTINGS = ("optimizer", "lr", "momentum", "clip_grad_norm", "lstm_forget_bias",
                     "nonlinearity", "recurrent_init", "lstm_chrono", "recurrent_bound",
                     "warmup_steps", "adam_eps", "end_frozen")
REAL_VALUED = ("lr", "momentum", "clip_grad_norm", "lstm_forget_bias", "lstm_chrono", "adam_eps")
LSTM_ONLY = ("lstm_forget_bias", "lstm_chrono")
NOT_LSTM = ("nonlinearity", "recurrent_init", "recurrent_bound")   # nn.LSTM's gates fix these

FROM_RECIPE = object()   # an argument not given: the recipe's value


class ConfigError(ValueError):
    """A combination of settings that makes no run, in words for the command line."""


def setting(config, name):
    """A setting of a run, reading a left-out one as its default."""
    return config.get(name, LEFT_OUT.get(name))


def run_config(model, seq_len, seed, data, recipe="assignment", *, epochs=50, batch_size=20,
               hidden=50, periods=DEFAULT_PERIODS, shuffle=False, engine="bptt", device="cpu",
               wiring="slower", **overrides):
    """The normalized configuration of one run: `recipe`'s settings, each overridden by the
    keyword of its name where one is given (optimizer, lr, momentum, clip_grad_norm,
    lstm_forget_bias, nonlinearity, recurrent_init, lstm_chrono, recurrent_bound, warmup_steps,
    adam_eps, end_frozen; None turns clipping, the forget bias, chrono or the bound off, and
    gives Adam PyTorch's eps). `data` holds the generator options of the data set. `wiring` is
    the clocked networks' ("slower", the assignment's, or "all"; SPEC.md, section 7); the
    others have none."""
    settings = resolve_recipe(model, seq_len, recipe, wiring=wiring, **overrides)
    if settings["end_frozen"]:
        check_end_frozen(shuffle, device)
    return normalize({
        "model": model, "seq_len": seq_len, "seed": seed, "epochs": epochs,
        "batch_size": batch_size, "hidden": hidden, "engine": engine, "shuffle": shuffle,
        "device": device, "data": data, "recipe": recipe, "periods": periods, "wiring": wiring,
        **settings})


def check_end_frozen(shuffle, device):
    """The early end of a frozen run (training.frozen_for_good) holds where the next epoch
    replays the last one bit for bit: the same batches, on the CPU's deterministic kernels."""
    if shuffle:
        raise ConfigError("--end-frozen needs the batches in data-set order (drop --shuffle, "
                          "or add --no-end-frozen)")
    if device != "cpu":
        raise ConfigError(f"--end-frozen needs --device cpu, got {device} (or add --no-end-frozen)")


def resolve_recipe(model, seq_len, recipe, optimizer=None, lr=None, momentum=None,
                   clip_grad_norm=FROM_RECIPE, lstm_forget_bias=FROM_RECIPE,
                   nonlinearity=FROM_RECIPE, recurrent_init=FROM_RECIPE, lstm_chrono=FROM_RECIPE,
                   recurrent_bound=FROM_RECIPE, warmup_steps=FROM_RECIPE, adam_eps=FROM_RECIPE,
                   end_frozen=FROM_RECIPE, wiring="slower"):
    """{setting: value} of every training setting of one run of `model` (with `wiring`, for a
    clocked network) at `seq_len`."""
    values = recipes.RECIPES[recipe]
    if isinstance(values["optimizer"], dict) or isinstance(values["momentum"], dict):
        raise ConfigError(f"the {recipe} recipe sets its optimizer or momentum per model; a "
                          "recipe sets them once, for every model")
    optimizer = optimizer or values["optimizer"]
    wiring = wiring if model in ENGINE_MODELS else "slower"     # the others have no wiring
    if lr is None:
        lr = recipes.recipe_lr(recipe, optimizer, model, wiring)
        if lr is None:
            name = recipes.rate_key(model, wiring)
            raise ConfigError(f"the {recipe} recipe has no learning rate for {name} yet: its sweep "
                              "chooses it (python -m studies.sweep_learning_rates --recipe "
                              f"{recipe}); train_rnn.py takes one with --lr")
    if optimizer == "sgd":
        momentum = recipes.optimizer_recipe(recipe, "sgd")["momentum"] if momentum is None else momentum
    elif momentum is not None:
        raise ConfigError(f"momentum is SGD's only, and this run uses {optimizer} "
                          "(drop --momentum, or add --optimizer sgd)")
    if optimizer not in recipes.ADAM_FAMILY:
        if adam_eps not in (FROM_RECIPE, None):
            raise ConfigError(f"eps is Adam's and RAdam's only, and this run uses {optimizer} "
                              "(drop --adam-eps, or add --optimizer adam)")
        adam_eps = None                 # a recipe's eps has nothing to act on under SGD

    def chosen(name, given):
        value = values[name] if given is FROM_RECIPE else given
        if isinstance(value, dict):          # a setting per model, as the rates are
            key = recipes.rate_key(model, wiring)
            if key not in value:
                raise ConfigError(f"the {recipe} recipe sets {name.replace('_', '-')} per model "
                                  f"and names none for {key}; give --{name.replace('_', '-')}")
            value = value[key]
        return seq_len if value == recipes.SEQ_LEN else value

    settings = {"optimizer": optimizer, "lr": lr, "momentum": momentum,
                "clip_grad_norm": chosen("clip_grad_norm", clip_grad_norm),
                "lstm_forget_bias": chosen("lstm_forget_bias", lstm_forget_bias),
                "nonlinearity": chosen("nonlinearity", nonlinearity),
                "recurrent_init": chosen("recurrent_init", recurrent_init),
                "lstm_chrono": chosen("lstm_chrono", lstm_chrono),
                "recurrent_bound": chosen("recurrent_bound", recurrent_bound),
                "warmup_steps": chosen("warmup_steps", warmup_steps),
                "adam_eps": chosen("adam_eps", adam_eps),
                "end_frozen": chosen("end_frozen", end_frozen)}
    if model == "lstm" and settings["lstm_chrono"] is not None:
        if not settings["lstm_chrono"] > 2:
            raise ConfigError(f"chrono initialization needs T_max > 2, got {settings['lstm_chrono']}"
                              " (with the integrator recipe T_max = L: train at L >= 3)")
        if settings["lstm_forget_bias"] is not None:
            raise ConfigError("chrono initialization sets the forget-gate bias itself: add "
                              "--lstm-forget-bias none, or drop --lstm-chrono")
    return settings


def normalize(config):
    """The one form of a configuration: numbers as floats or ints, no setting of another model,
    the recipe named as the first recipe whose every setting the run has, and every setting at
    its default left out. A normalized configuration normalizes to itself."""
    config = dict(config)
    model = config["model"]
    for name in ("seq_len", "seed", "epochs", "batch_size", "hidden"):
        config[name] = int(config[name])
    config["shuffle"] = bool(config["shuffle"])
    config.update(training_settings(config))
    for name in LSTM_ONLY if model != "lstm" else NOT_LSTM:
        config.pop(name, None)
    if model not in ENGINE_MODELS:
        config["engine"] = None
        config.pop("wiring", None)
    if model == "clockwork":
        config["periods"] = [int(T) for T in config.get("periods") or DEFAULT_PERIODS]
    else:
        config.pop("periods", None)
    config["recipe"] = recipe_followed(config) or setting(config, "recipe")
    for name, default in LEFT_OUT.items():
        if name in config and config[name] == default:
            del config[name]
    return config


def training_settings(config):
    """The settings a recipe sets, as the run has them: real numbers as floats, momentum None
    for an optimizer without one and eps None for one without it, and only the settings that
    apply to the run's model."""
    values = {name: setting(config, name) for name in TRAINING_SETTINGS}
    for name in REAL_VALUED:
        if values[name] is not None:
            values[name] = float(values[name])
    values["warmup_steps"] = int(values["warmup_steps"])
    values["end_frozen"] = bool(values["end_frozen"])
    if values["optimizer"] != "sgd":
        values["momentum"] = None
    if values["optimizer"] not in recipes.ADAM_FAMILY:
        values["adam_eps"] = None
    for name in LSTM_ONLY if config["model"] != "lstm" else NOT_LSTM:
        del values[name]
    return values


def recipe_followed(config):
    """The first recipe that sets every training setting of the run as the run has it, or None."""
    have = training_settings(config)
    model, seq_len = config["model"], config["seq_len"]
    for name in recipes.RECIPES:
        try:
            follows = {"model": model, **resolve_recipe(model, seq_len, name,
                                                        wiring=setting(config, "wiring"))}
        except ConfigError:           # a recipe without a rate for this model: not followed
            continue
        if training_settings(follows) == have:
            return name
    return None


def same_run(config, other):
    """Whether two configurations train the same run: equal apart from the recipe's name,
    which changes nothing once the recipe is resolved into the settings."""
    return ({k: v for k, v in config.items() if k != "recipe"}
            == {k: v for k, v in other.items() if k != "recipe"})

"""A run's configuration: one normal form, one key, every committed record's key kept."""
import glob
import json
import os

import pytest

from experiment import configs, recipes, runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = {"seq_len": 10, "seed": 2021, "n_train": 10000, "n_dev": 1000, "n_test": 1000}


def test_a_number_written_as_an_int_or_a_float_is_one_configuration():
    one = configs.run_config("lstm", 10, 0, DATA, clip_grad_norm=1)
    other = configs.run_config("lstm", 10, 0, DATA, clip_grad_norm=1.0)
    assert one == other and runs.run_key(one) == runs.run_key(other)
    assert json.dumps(one["clip_grad_norm"]) == "1.0"


def test_a_recipe_overridden_into_another_is_that_recipe():
    # modern with SGD and no clipping is the assignment's run for AlarmworkNet (no LSTM bias)
    assignment = configs.run_config("alarmwork", 10, 0, DATA)
    overridden = configs.run_config("alarmwork", 10, 0, DATA, "modern", optimizer="sgd",
                                    clip_grad_norm=None)
    assert overridden == assignment and "recipe" not in overridden
    # for the LSTM the modern recipe's forget bias is still there: not the assignment's run
    lstm = configs.run_config("lstm", 10, 0, DATA, "modern", optimizer="sgd", clip_grad_norm=None)
    assert lstm["recipe"] == "modern" and lstm["lstm_forget_bias"] == 1.0


def test_settings_of_other_models_and_at_their_defaults_are_left_out():
    simple = configs.run_config("simple_rnn", 10, 0, DATA, periods=[1, 3], lstm_forget_bias=2.0)
    assert {"periods", "lstm_forget_bias", "recipe", "optimizer", "nonlinearity"}.isdisjoint(simple)
    assert simple["engine"] is None
    lstm = configs.run_config("lstm", 500, 0, DATA, "integrator", lr=1e-4)
    assert lstm["lstm_chrono"] == 500.0 and "nonlinearity" not in lstm and "recurrent_init" not in lstm
    clocked = configs.run_config("clockwork", 500, 0, DATA, "integrator", lr=1e-4)
    assert (clocked["nonlinearity"], clocked["recurrent_init"], clocked["periods"]) == (
        "relu", "integrator", [1, 2, 4, 8])
    assert "lstm_chrono" not in clocked and clocked["momentum"] is None


def test_a_normalized_configuration_normalizes_to_itself():
    for recipe in ("assignment", "modern", "integrator"):
        for model in ("simple_rnn", "lstm", "alarmwork", "clockwork"):
            config = configs.run_config(model, 50, 3, DATA, recipe, lr=1e-4)
            assert configs.normalize(config) == config


def test_chrono_needs_a_t_max_above_2_and_no_forget_bias_on_top():
    with pytest.raises(configs.ConfigError, match="T_max > 2"):
        configs.run_config("lstm", 2, 0, DATA, "integrator", lr=1e-4)
    with pytest.raises(configs.ConfigError, match="sets the forget-gate bias itself"):
        configs.run_config("lstm", 10, 0, DATA, "modern", lstm_chrono=10)
    assert configs.run_config("lstm", 10, 0, DATA, "modern", lstm_chrono=10,
                              lstm_forget_bias=None)["lstm_chrono"] == 10.0


def test_a_recipe_without_a_rate_and_momentum_with_adam_are_refused(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", {"lstm": None})   # before its sweep
    with pytest.raises(configs.ConfigError, match="no learning rate for lstm yet"):
        configs.run_config("lstm", 10, 0, DATA, "integrator")
    with pytest.raises(configs.ConfigError, match="momentum is SGD's only"):
        configs.run_config("lstm", 10, 0, DATA, "modern", momentum=0.5)


def test_every_committed_record_keeps_its_key():
    paths = glob.glob(os.path.join(ROOT, "results", "**", "runs", "*.json"), recursive=True)
    assert len(paths) > 400
    for path in paths:
        with open(path) as f:
            config = json.load(f)["config"]
        assert configs.normalize(config) == config, path
        assert runs.run_key(config) + ".json" == os.path.basename(path)


def test_a_run_saved_under_another_recipes_name_is_found_not_trained_again(tmp_path):
    # the same settings started from two recipes that neither follows to the letter
    from_assignment = configs.run_config("lstm", 10, 0, DATA, optimizer="adam", lr=3e-3)
    from_modern = configs.run_config("lstm", 10, 0, DATA, "modern", clip_grad_norm=None,
                                     lstm_forget_bias=None)
    assert configs.same_run(from_assignment, from_modern)
    assert runs.run_key(from_assignment) != runs.run_key(from_modern)   # the older records' keys
    runs.save_record(str(tmp_path), {"config": from_assignment, "status": "finished", "history": []})
    assert runs.find_record(str(tmp_path), from_modern)["config"] == from_assignment
    other_seed = dict(from_modern, seed=1)
    assert runs.find_record(str(tmp_path), other_seed) is None


def test_recipes_set_the_same_settings():
    names = {frozenset(values) for values in recipes.RECIPES.values()}
    assert names == {frozenset(configs.TRAINING_SETTINGS)}


def test_the_smaller_rate_variant_changes_only_simple_rnns_rate_to_the_remedys():
    from studies import remedy
    plain, variant = recipes.RECIPES["integrator"], recipes.RECIPES["integrator_smaller_rate"]
    assert {**variant, "lr": plain["lr"]} == plain
    assert variant["lr"] == {**plain["lr"], "simple_rnn": remedy.smaller_rate("simple_rnn")}
    for model in ("lstm", "alarmwork", "clockwork"):           # the same runs as the plain recipe's
        assert configs.same_run(configs.run_config(model, 500, 0, DATA, "integrator_smaller_rate"),
                                configs.run_config(model, 500, 0, DATA, "integrator"))


def test_the_bounded_variant_is_the_integrator_recipe_with_the_bound_and_keeps_its_rates():
    assert recipes.RECIPES["integrator_bounded"] == {**recipes.RECIPES["integrator"],
                                                     "recurrent_bound": "integrator"}
    plain = configs.run_config("simple_rnn", 500, 0, DATA, "integrator")
    bounded = configs.run_config("simple_rnn", 500, 0, DATA, "integrator_bounded")
    assert "recurrent_bound" not in plain                   # off: left out, the key is kept
    assert bounded == {**plain, "recipe": "integrator_bounded", "recurrent_bound": "integrator"}
    # the bound turned off again is the plain recipe's run; an LSTM has no bound to keep
    assert configs.run_config("simple_rnn", 500, 0, DATA, "integrator_bounded",
                              recurrent_bound=None) == plain
    lstm = configs.run_config("lstm", 500, 0, DATA, "integrator_bounded")
    assert lstm == configs.run_config("lstm", 500, 0, DATA, "integrator")


def test_the_warmup_eps_and_early_end_are_left_out_when_off_so_every_key_is_kept():
    plain = configs.run_config("alarmwork", 500, 0, DATA, "integrator")
    off = configs.run_config("alarmwork", 500, 0, DATA, "integrator", warmup_steps=0,
                             adam_eps=None, end_frozen=False)
    assert off == plain and {"warmup_steps", "adam_eps", "end_frozen"}.isdisjoint(plain)
    on = configs.run_config("alarmwork", 500, 0, DATA, "integrator", warmup_steps=500.0,
                            adam_eps=1e-3, end_frozen=True)
    assert on == {**plain, "warmup_steps": 500, "adam_eps": 1e-3, "end_frozen": True}
    assert type(on["warmup_steps"]) is int and configs.normalize(on) == on
    assert runs.run_key(on) != runs.run_key(plain)


def test_radam_takes_adams_rates_and_eps_belongs_to_adam_and_radam_only(monkeypatch):
    integrator = configs.run_config("alarmwork", 500, 0, DATA, "integrator", optimizer="radam")
    assert (integrator["optimizer"], integrator["lr"]) == (
        "radam", recipes.RECIPES["integrator"]["lr"]["alarmwork"])
    assignment = configs.run_config("lstm", 10, 0, DATA, optimizer="radam")
    assert assignment["lr"] == recipes.RECIPES["modern"]["lr"]["lstm"]     # the Adam recipe's
    with pytest.raises(configs.ConfigError, match="eps is Adam's and RAdam's only"):
        configs.run_config("lstm", 10, 0, DATA, adam_eps=1e-3)
    monkeypatch.setitem(recipes.RECIPES["integrator"], "adam_eps", 1e-3)
    assert configs.run_config("lstm", 500, 0, DATA, "integrator", optimizer="radam")["adam_eps"] == 1e-3
    sgd = configs.run_config("lstm", 500, 0, DATA, "integrator", optimizer="sgd")
    assert "adam_eps" not in sgd                  # the recipe's eps has nothing to act on


def test_the_early_end_of_frozen_runs_needs_data_set_order_and_the_cpu():
    with pytest.raises(configs.ConfigError, match="needs the batches in data-set order"):
        configs.run_config("alarmwork", 10, 0, DATA, end_frozen=True, shuffle=True)
    with pytest.raises(configs.ConfigError, match="needs --device cpu, got cuda"):
        configs.run_config("alarmwork", 10, 0, DATA, end_frozen=True, device="cuda")
    assert configs.run_config("alarmwork", 10, 0, DATA, shuffle=True, device="cuda")["shuffle"]


def test_a_recipe_names_the_warmup_eps_and_early_end_only_where_it_turns_them_on(monkeypatch):
    for name, values in recipes.RECIPES.items():
        turned_on = {key.replace("_", "-") for key, off in recipes.UNSAID_WHEN_OFF.items()
                     if values[key] != off}
        named = {"warmup-steps", "adam-eps", "end-frozen"} & set(
            recipes.describe_recipe(name).replace(",", "").split())
        assert named == turned_on, name
    assert recipes.describe_recipe("integrator_warmup").endswith(
        "warmup-steps 500, adam-eps alarmwork:all 0.001, clockwork:all 0.001, end-frozen on")
    monkeypatch.setitem(recipes.RECIPES, "long", {**recipes.RECIPES["integrator"], "warmup_steps": 500,
                                                  "adam_eps": 1e-3, "end_frozen": True})
    assert recipes.describe_recipe("long").endswith("warmup-steps 500, adam-eps 0.001, end-frozen on")


def test_a_recipe_may_set_a_setting_per_model_as_it_sets_the_rates(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "per_model", {
        **recipes.RECIPES["integrator"], "warmup_steps": 500, "end_frozen": True,
        "adam_eps": {"alarmwork:all": 1e-3, "simple_rnn": None}})
    wired = configs.run_config("alarmwork", 2000, 100, DATA, "per_model", wiring="all")
    plain = configs.run_config("simple_rnn", 2000, 100, DATA, "per_model")
    assert wired["adam_eps"] == 1e-3 and "adam_eps" not in plain      # None: PyTorch's eps
    assert wired["warmup_steps"] == plain["warmup_steps"] == 500
    # each run is the run of the same settings given one by one, under the recipe's name
    assert wired == configs.run_config("alarmwork", 2000, 100, DATA, "integrator", wiring="all",
                                       warmup_steps=500, end_frozen=True, adam_eps=1e-3)
    with pytest.raises(configs.ConfigError, match="sets adam-eps per model and names none for "
                                                  "alarmwork; give --adam-eps"):
        configs.run_config("alarmwork", 2000, 100, DATA, "per_model")
    assert configs.run_config("alarmwork", 2000, 100, DATA, "per_model", adam_eps=1e-2)["adam_eps"] == 1e-2
    assert "adam-eps alarmwork:all 0.001, simple_rnn none," in recipes.describe_recipe("per_model")
    monkeypatch.setitem(recipes.RECIPES, "one_model", {
        **recipes.RECIPES["integrator"], "end_frozen": {"alarmwork:all": True}})
    assert recipes.describe_recipe("one_model").endswith("end-frozen alarmwork:all on")
    monkeypatch.setitem(recipes.RECIPES, "per_model_sgd", {**recipes.RECIPES["assignment"],
                                                           "momentum": {"lstm": 0.5}})
    with pytest.raises(configs.ConfigError, match="sets its optimizer or momentum per model"):
        configs.run_config("lstm", 10, 0, DATA, "per_model_sgd")

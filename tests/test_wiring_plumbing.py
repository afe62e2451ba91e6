"""The clocked networks' wiring (SPEC.md, section 7) from the name a study takes to the model a
run trains: parse_model, the recipes' rate names, the configuration and its key, make_model and
the label of the tables. The command line's --wiring is tested in test_train_rnn.py."""
import argparse

import pytest
import torch

from experiment import configs, recipes, report, runs, training
from studies.common import ModelSpec, parse_model

DATA = {"seq_len": 10, "seed": 2021, "n_train": 10000, "n_dev": 1000, "n_test": 1000}


# ------------------------------------------------------------------------------ the name a study takes

@pytest.mark.parametrize("text, spec", [
    ("alarmwork:all", ModelSpec("alarmwork", 50, "all")),
    ("clockwork:all", ModelSpec("clockwork", 50, "all")),
    ("clockwork:35:all", ModelSpec("clockwork", 35, "all")),
    ("alarmwork", ModelSpec("alarmwork", 50, "slower")),
    ("alarmwork:slower", ModelSpec("alarmwork", 50, "slower")),   # the default, written out
])
def test_parse_model_takes_a_wiring_after_the_width(text, spec):
    assert parse_model(text) == spec
    assert parse_model(str(spec)) == spec            # the name a report writes reads back


def test_a_models_name_leaves_the_default_wiring_out():
    assert str(parse_model("clockwork:35:all")) == "clockwork:35:all"
    assert str(parse_model("alarmwork:all")) == "alarmwork:all"
    assert str(parse_model("alarmwork:slower")) == "alarmwork"


@pytest.mark.parametrize("text, message", [
    ("lstm:all", "'lstm:all': a wiring is for alarmwork and clockwork"),
    ("simple_rnn:all", "a wiring is for alarmwork and clockwork"),
    ("alarmwork:all:all", "expected NAME[:P][:WIRING]"),
    ("clockwork:all:35", "expected NAME[:P][:WIRING]"),          # the width comes first
    ("alarmwork:slower:35", "expected NAME[:P][:WIRING]"),       # even after the default wiring
    ("alarmwork:50:50", "expected NAME[:P][:WIRING]"),           # one width
    ("alarmwork:slower:all", "expected NAME[:P][:WIRING]"),      # one wiring
    ("alarmwork:0", "the width after ':' must be at least 1, got 0"),
    ("alarmwork:bogus", "a wiring from slower, all"),
])
def test_parse_model_refuses_a_wiring_it_cannot_build_in_one_line(text, message):
    with pytest.raises(argparse.ArgumentTypeError) as error:
        parse_model(text)
    assert message in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------------------ the recipes' rates

def test_the_all_wired_networks_rate_has_a_name_of_its_own():
    assert recipes.rate_key("alarmwork", "all") == "alarmwork:all"
    assert recipes.rate_key("clockwork", "all") == "clockwork:all"
    assert recipes.rate_key("alarmwork", "slower") == "alarmwork"
    assert recipes.rate_key("alarmwork") == "alarmwork"


def test_an_all_wired_run_takes_its_own_rate_and_the_assignments_wiring_keeps_its_own(monkeypatch):
    rates = {**recipes.RECIPES["integrator"]["lr"], "alarmwork": 3e-4, "alarmwork:all": 1e-4}
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", rates)
    assert recipes.recipe_lr("integrator", "adam", "alarmwork", "all") == 1e-4
    assert recipes.recipe_lr("integrator", "adam", "alarmwork", "slower") == 3e-4
    all_wired = configs.run_config("alarmwork", 500, 0, DATA, "integrator", wiring="all")
    assert (all_wired["lr"], all_wired["wiring"], all_wired["recipe"]) == (1e-4, "all", "integrator")
    assert configs.run_config("alarmwork", 500, 0, DATA, "integrator")["lr"] == 3e-4


def test_a_recipe_without_the_all_wired_rate_is_refused_by_that_name(monkeypatch):
    rates = {k: v for k, v in recipes.RECIPES["integrator"]["lr"].items() if k != "clockwork:all"}
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", rates)
    with pytest.raises(configs.ConfigError, match="no learning rate for clockwork:all yet"):
        configs.run_config("clockwork", 500, 0, DATA, "integrator", wiring="all")
    # one rate for every model (the assignment's) is every wiring's rate
    assert configs.run_config("clockwork", 500, 0, DATA, wiring="all")["lr"] == 0.01


# ------------------------------------------------------------------------------ the configuration

def test_the_default_wiring_is_left_out_and_keeps_the_key():
    for model in ("alarmwork", "clockwork"):
        plain = configs.run_config(model, 10, 0, DATA)
        assert "wiring" not in plain
        assert configs.run_config(model, 10, 0, DATA, wiring="slower") == plain


def test_the_all_wiring_enters_the_configuration_and_changes_the_key():
    for model in ("alarmwork", "clockwork"):
        plain = configs.run_config(model, 10, 0, DATA)
        all_wired = configs.run_config(model, 10, 0, DATA, wiring="all")
        assert all_wired == {**plain, "wiring": "all"}
        assert configs.normalize(all_wired) == all_wired
        assert runs.run_key(all_wired) != runs.run_key(plain)
        assert not configs.same_run(all_wired, plain)
        assert configs.setting(all_wired, "wiring") == "all" and configs.setting(plain, "wiring") == "slower"


@pytest.mark.parametrize("model", ["simple_rnn", "lstm"])
def test_a_network_without_clocks_has_no_wiring_in_its_configuration(model):
    assert configs.run_config(model, 10, 0, DATA, wiring="all") == configs.run_config(model, 10, 0, DATA)


# ------------------------------------------------------------------------------ the model and its label

@pytest.mark.parametrize("model", ["alarmwork", "clockwork"])
@pytest.mark.parametrize("wiring", ["slower", "all"])
def test_make_model_builds_the_configurations_wiring(model, wiring):
    config = configs.run_config(model, 10, 0, DATA, wiring=wiring)
    assert training.make_model(config).wiring == wiring


@pytest.mark.parametrize("model", ["alarmwork", "clockwork"])
def test_the_integrator_start_of_the_all_wired_network_is_the_average_of_k_states(model, monkeypatch):
    rates = {**recipes.RECIPES["integrator"]["lr"], f"{model}:all": 1e-4}
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", rates)
    network = training.make_model(configs.run_config(model, 10, 0, DATA, "integrator", wiring="all"))
    W_rec = [network.W_rec1, network.W_rec2] if model == "alarmwork" else list(network.W_rec)
    for W in W_rec:                              # I/K for every layer: each reads a sum of K states
        assert torch.equal(W.detach(), torch.eye(W.shape[0]) / len(W_rec))


def test_the_tables_name_the_all_wired_networks():
    assert report.model_label(configs.run_config("alarmwork", 10, 0, DATA, wiring="all")) == \
        "AlarmworkNet all-wired"
    assert report.model_label(configs.run_config("clockwork", 10, 0, DATA, wiring="all",
                                                 hidden=35)) == "Clockwork(1,2,4,8) all-wired P=35"
    assert report.model_label(configs.run_config("alarmwork", 10, 0, DATA)) == "AlarmworkNet"

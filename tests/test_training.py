"""One run's training: the protocol, the optimizers, the LSTM forget-gate bias, checkpoints,
on tiny data; and one committed run, retrained bit for bit."""
import json
import os

import numpy as np
import pytest
import torch

import generate_data_adding_problem as data
from experiment import recipes, training
from lib.machine import blas_kernel, cpu_model
from models import MODELS, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**changes):
    config = {"model": "alarmwork", "seq_len": 4, "seed": 0, "epochs": 5, "batch_size": 20,
              "hidden": 8, "lr": 0.01, "momentum": 0.9, "engine": "bptt", "clip_grad_norm": None,
              "shuffle": False, "device": "cpu", "data": {}}
    config.update(changes)
    return config


# ------------------------------------------------------------------------------ protocol

def test_accuracy_counts_predictions_strictly_within_a_tenth():
    t = torch.tensor([0.0, 0.0, 0.0, 0.5])
    y = torch.tensor([[0.099], [-0.0999], [0.1001], [0.2]])
    assert training.accuracy(y, t) == 50.0


def test_training_stops_only_when_dev_accuracy_is_above_99_5():
    assert not training.should_stop(99.5)
    assert training.should_stop(99.51)


def test_dev_check_at_the_start_of_each_epoch_stops_training(tiny_data, monkeypatch):
    dev_results = iter([40.0, 99.5, 99.6, 12.0])   # the third check (after 2 epochs) stops
    real_evaluate = training.evaluate
    calls = []

    def fake_evaluate(model, x, t):
        calls.append(len(x))
        return next(dev_results) if len(calls) <= 3 else real_evaluate(model, x, t)

    monkeypatch.setattr(training, "evaluate", fake_evaluate)
    arrays = data.load_data_set(tiny_data, 4)
    record = training.train_run(tiny_config(), arrays, show_progress=False)
    assert record["epochs_run"] == 2
    assert [h["dev_accuracy"] for h in record["history"]] == [40.0, 99.5, 99.6]
    assert record["dev_accuracy"] == 99.6
    assert len(calls) == 4   # three dev checks, then the test set once


def test_training_runs_all_epochs_when_dev_accuracy_stays_low(tiny_data):
    arrays = data.load_data_set(tiny_data, 4)
    record = training.train_run(tiny_config(epochs=3), arrays, show_progress=False)
    assert record["epochs_run"] == 3 and record["status"] == "finished"
    assert len(record["history"]) == 4                        # before epochs 1, 2, 3 and at the end
    assert all(h["train_loss"] > 0 for h in record["history"][:-1])
    assert 0.0 <= record["test_accuracy"] <= 100.0


def test_shuffle_is_deterministic_for_a_seed_and_changes_the_batches(tiny_data):
    arrays = data.load_data_set(tiny_data, 4)
    runs = [training.train_run(tiny_config(epochs=2, **options), arrays, show_progress=False)
            for options in ({"shuffle": True}, {"shuffle": True}, {"shuffle": False})]
    losses = [[h.get("train_loss") for h in run["history"]] for run in runs]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]
    assert all("grad_norm" in h for h in runs[0]["history"][:-1])


# ------------------------------------------------------------------------------ gradient clipping

def tiny_parameters_with_gradient(scale):
    layer = torch.nn.Linear(3, 2)
    for p in layer.parameters():
        p.grad = torch.full_like(p, scale)   # 8 entries: norm = scale * sqrt(8)
    return layer


def test_gradient_clipping_changes_nothing_below_the_threshold():
    layer = tiny_parameters_with_gradient(0.1)
    before = [p.grad.clone() for p in layer.parameters()]
    norm = training.clip_or_measure(layer.parameters(), max_norm=1.0)
    assert norm.item() == pytest.approx(0.1 * 8 ** 0.5)
    for p, grad in zip(layer.parameters(), before):
        assert torch.equal(p.grad, grad)


def test_gradient_clipping_caps_the_norm_above_the_threshold():
    layer = tiny_parameters_with_gradient(2.0)
    norm = training.clip_or_measure(layer.parameters(), max_norm=1.0)
    assert norm.item() == pytest.approx(2.0 * 8 ** 0.5)          # the norm before clipping
    clipped = torch.cat([p.grad.flatten() for p in layer.parameters()])
    assert clipped.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(clipped, clipped[0].expand_as(clipped))  # direction kept


def test_without_clipping_the_gradient_norm_is_measured_and_left_alone():
    layer = tiny_parameters_with_gradient(2.0)
    norm = training.clip_or_measure(layer.parameters(), max_norm=None)
    assert norm.item() == pytest.approx(2.0 * 8 ** 0.5)
    assert all((p.grad == 2.0).all() for p in layer.parameters())


# ------------------------------------------------------------------------------ recipes

def test_every_registered_model_has_a_learning_rate_in_every_recipe_whose_sweep_has_run():
    for recipe in ("assignment", "modern"):
        for model in MODELS:
            assert recipes.recipe_lr(recipe, recipes.RECIPES[recipe]["optimizer"], model) > 0
    for model in MODELS:                # chosen, or None until the sweep chooses it
        rate = recipes.recipe_lr("integrator", "adam", model)
        assert rate is None or rate > 0


def test_another_optimizer_than_the_recipes_takes_the_rates_of_the_recipe_that_uses_it(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES["modern"], "lr", {model: 0.003 for model in MODELS})
    assert recipes.recipe_lr("modern", "sgd", "lstm") == 0.01            # the assignment's SGD
    assert recipes.recipe_lr("assignment", "adam", "lstm") == 0.003     # the modern Adam rate
    assert recipes.optimizer_recipe("modern", "sgd")["momentum"] == 0.9


def test_an_assignment_run_is_sgd_with_momentum_exactly():
    model = torch.nn.Linear(2, 1)
    optimizer = training.make_optimizer(tiny_config(), model.parameters())
    assert type(optimizer) is torch.optim.SGD
    reference = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9).defaults
    assert optimizer.defaults == reference


def test_an_adam_run_uses_adam_with_its_rate_and_no_momentum():
    model = torch.nn.Linear(2, 1)
    optimizer = training.make_optimizer(tiny_config(optimizer="adam", lr=0.003, momentum=None),
                                        model.parameters())
    assert type(optimizer) is torch.optim.Adam
    assert optimizer.defaults == torch.optim.Adam(model.parameters(), lr=0.003).defaults


def test_a_tiny_adam_run_trains_end_to_end(tiny_data):
    arrays = data.load_data_set(tiny_data, 7)
    config = tiny_config(model="lstm", seq_len=7, epochs=2, engine=None, optimizer="adam", lr=0.01,
                         momentum=None, clip_grad_norm=1.0, lstm_forget_bias=1.0)
    adam = training.train_run(config, arrays, show_progress=False)
    sgd = training.train_run(tiny_config(model="lstm", seq_len=7, epochs=2, engine=None), arrays,
                             show_progress=False)
    assert adam["status"] == "finished" and adam["epochs_run"] == 2
    assert adam["config"] == config
    assert all("clipped_fraction" in h for h in adam["history"][:-1])
    losses = [h["train_loss"] for h in adam["history"][:-1]]
    assert losses != [h["train_loss"] for h in sgd["history"][:-1]]
    assert losses[1] < losses[0]   # Adam at 0.01 moves the weights fast enough to see it


# ------------------------------------------------------------------------------ LSTM forget gate

def forget_gate_bias(lstm):
    H = lstm.hidden_size
    return (lstm.bias_ih_l0 + lstm.bias_hh_l0)[H:2 * H]


@pytest.mark.parametrize("bias", [1.0, -0.5, 0.0])
def test_lstm_forget_bias_sets_the_forget_gates_pre_activation_bias_only(bias):
    torch.manual_seed(0)
    default = training.make_model(tiny_config(model="lstm", engine=None))
    torch.manual_seed(0)
    model = training.make_model(tiny_config(model="lstm", engine=None, lstm_forget_bias=bias))
    H = model.lstm.hidden_size
    assert torch.equal(forget_gate_bias(model.lstm), torch.full((H,), bias))
    assert not torch.equal(forget_gate_bias(default.lstm), forget_gate_bias(model.lstm))
    for name in ("bias_ih_l0", "bias_hh_l0"):   # gates i, g, o keep PyTorch's init
        kept = torch.cat([getattr(model.lstm, name)[:H], getattr(model.lstm, name)[2 * H:]])
        assert torch.equal(kept, torch.cat([getattr(default.lstm, name)[:H],
                                            getattr(default.lstm, name)[2 * H:]]))
    for (name, p), q in zip(model.named_parameters(), default.parameters()):
        if not name.startswith("lstm.bias"):
            assert torch.equal(p, q), name


def test_without_a_forget_bias_the_lstm_keeps_pytorchs_init():
    torch.manual_seed(0)
    built = training.make_model(tiny_config(model="lstm", engine=None))
    torch.manual_seed(0)
    reference = MODELS["lstm"][1](num_hidden=8)
    for p, q in zip(built.parameters(), reference.parameters()):
        assert torch.equal(p, q)


def test_clockwork_runs_are_built_with_their_periods():
    model = training.make_model(tiny_config(model="clockwork", periods=[1, 3]))
    assert tuple(model.periods) == (1, 3) and len(model.W_rec) == 2


# ------------------------------------------------------------------------------ checkpoints

def without_times(record):
    return {key: value for key, value in record.items() if key != "train_seconds"}


@pytest.mark.parametrize("changes", [{}, {"model": "lstm", "engine": None, "optimizer": "adam",
                                          "lr": 0.01, "momentum": None, "shuffle": True}])
def test_a_run_stopped_after_an_epoch_goes_on_from_its_checkpoint_to_the_same_record(
        tiny_data, tmp_path, monkeypatch, changes):
    arrays = data.load_data_set(tiny_data, 4)
    config = tiny_config(epochs=3, **changes)
    uninterrupted = training.train_run(config, arrays, show_progress=False)

    checkpoint = str(tmp_path / "run.ckpt")
    real_evaluate, calls = training.evaluate, []

    def stop_at_the_third_dev_check(model, x, t):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt      # as if the machine stopped during epoch 2
        return real_evaluate(model, x, t)

    monkeypatch.setattr(training, "evaluate", stop_at_the_third_dev_check)
    with pytest.raises(KeyboardInterrupt):
        training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    assert torch.load(checkpoint, weights_only=True)["epochs_run"] == 2

    calls.clear()
    monkeypatch.setattr(training, "evaluate", lambda *a: calls.append(1) or real_evaluate(*a))
    resumed = training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    assert len(calls) == 3          # dev checks before and after the third epoch, the test set
    assert without_times(resumed) == without_times(uninterrupted)


def test_a_checkpoint_of_another_configuration_is_not_used(tiny_data, tmp_path):
    arrays = data.load_data_set(tiny_data, 4)
    checkpoint = str(tmp_path / "run.ckpt")
    training.train_run(tiny_config(epochs=2, lr=0.05), arrays, show_progress=False,
                       checkpoint=checkpoint)
    record = training.train_run(tiny_config(epochs=2), arrays, show_progress=False,
                                checkpoint=checkpoint)
    fresh = training.train_run(tiny_config(epochs=2), arrays, show_progress=False)
    assert without_times(record) == without_times(fresh)


# ------------------------------------------------------------------------------ bit for bit

def test_the_committed_alarmwork_run_at_l_10_is_reproduced_bit_for_bit(tmp_path):
    # a record that names the machine it was made on (those in results/runs/ predate that):
    # the shortest AlarmworkNet run at L = 10 of the modern recipe, 20 epochs
    path = os.path.join(ROOT, "results", "reach", "modern", "runs",
                        "alarmwork_L010_seed4_3eea207433.json")
    with open(path) as f:
        committed = json.load(f)
    here = {"cpu": cpu_model(), "blas_kernel": blas_kernel(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    differences = [f"{name} {value!r} here, {committed.get(name)!r} in the record"
                   for name, value in here.items() if committed.get(name) != value]
    if differences:   # a record that names no machine differs in all three
        pytest.skip("float sums differ between CPUs and kernels, and this is not the record's "
                    f"machine: {'; '.join(differences)}")
    config = committed["config"]
    sizes = {split: config["data"][f"n_{split}"] for split in data.SPLITS}
    data.write_data_set(str(tmp_path), 10, sizes, config["data"]["seed"])
    arrays = data.load_data_set(str(tmp_path), 10, config["data"])
    record = training.train_run(config, arrays, show_progress=False)
    assert (record["epochs_run"], record["test_accuracy"]) == (committed["epochs_run"],
                                                               committed["test_accuracy"])
    assert [{k: h[k] for k in committed_epoch} for h, committed_epoch in
            zip(record["history"], committed["history"])] == committed["history"]


def test_a_bounded_run_keeps_weight_hh_within_norm_1_after_every_step():
    torch.manual_seed(0)
    config = {"model": "simple_rnn", "hidden": 8, "engine": None, "optimizer": "adam", "lr": 0.3,
              "clip_grad_norm": None, "nonlinearity": "relu", "recurrent_init": "integrator"}
    x, t = torch.rand(16, 30, 2), torch.rand(16, 1)
    norms = {}
    for bound in (None, "integrator"):
        torch.manual_seed(0)
        model = training.make_model(config)
        _, step = training.training_step({**config, "recurrent_bound": bound}, model)
        largest = 0.0
        for _ in range(5):
            step(x, t)
            largest = max(largest, float(torch.linalg.matrix_norm(model.rnn.weight_hh_l0.detach(), 2)))
        norms[bound] = largest
    assert norms[None] > 1.5                       # a large rate moves weight_hh off norm 1
    assert norms["integrator"] <= 1 + 1e-5


def test_watch_sees_each_batch_before_clipping_and_changes_nothing():
    config = {"model": "simple_rnn", "hidden": 8, "engine": None, "optimizer": "adam", "lr": 0.01,
              "clip_grad_norm": 1e-3}
    x, t = torch.rand(16, 30, 2), torch.rand(16, 1)
    seen, results = [], []
    for watch in (None, lambda model, x, loss: seen.append(
            (loss.item(), sum(float(p.grad.pow(2).sum()) for p in model.parameters()) ** 0.5))):
        torch.manual_seed(0)
        model = training.make_model(config)
        _, step = training.training_step(config, model, watch)
        results.append([float(step(x, t)[1]) for _ in range(3)] + [model.rnn.weight_hh_l0.detach()])
    assert results[0][:3] == results[1][:3] and torch.equal(results[0][3], results[1][3])
    assert [norm for _, norm in seen] == pytest.approx(results[1][:3], rel=1e-5)   # unclipped norms


# ------------------------------------------------------------------------------ warm-up, RAdam, eps

def test_the_warmup_gives_step_k_the_rate_lr_k_over_n_then_lr():
    config = {"model": "simple_rnn", "hidden": 8, "engine": None, "optimizer": "adam", "lr": 0.01,
              "clip_grad_norm": None, "warmup_steps": 4}
    x, t = torch.rand(16, 10, 2), torch.rand(16, 1)
    torch.manual_seed(0)
    model = training.make_model(config)
    optimizer, step = training.training_step(config, model)
    rates, largest_moves = [], []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        before = [p.detach().clone() for p in model.parameters()]
        step(x, t)
        largest_moves.append(max(float((p.detach() - b).abs().max())
                                 for p, b in zip(model.parameters(), before)))
    assert rates == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01], rel=1e-12)
    assert 0.9 * 0.0025 < largest_moves[0] <= 0.0025 * (1 + 1e-5)   # Adam's first step: lr/N
    _, plain = training.training_step({**config, "warmup_steps": 0}, model)
    assert plain.warmup is None


def test_a_run_stopped_mid_warmup_goes_on_from_its_checkpoint_to_the_same_record(
        tiny_data, tmp_path, monkeypatch):
    arrays = data.load_data_set(tiny_data, 4)         # 60 samples: 3 steps an epoch
    config = tiny_config(epochs=2, optimizer="adam", lr=0.01, momentum=None, warmup_steps=5)
    uninterrupted = training.train_run(config, arrays, show_progress=False)
    at_full_rate = training.train_run({**config, "warmup_steps": 0}, arrays, show_progress=False)
    assert uninterrupted["history"] != at_full_rate["history"]

    checkpoint = str(tmp_path / "run.ckpt")
    real_evaluate, calls = training.evaluate, []

    def stop_at_the_second_dev_check(model, x, t):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt      # after epoch 1: 3 of the warm-up's 5 steps taken
        return real_evaluate(model, x, t)

    monkeypatch.setattr(training, "evaluate", stop_at_the_second_dev_check)
    with pytest.raises(KeyboardInterrupt):
        training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    saved = torch.load(checkpoint, weights_only=True)
    assert (saved["epochs_run"], saved["warmup"]["last_epoch"]) == (1, 3)
    resumed = training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    assert without_times(resumed) == without_times(uninterrupted)


@pytest.mark.parametrize("name, eps", [("radam", None), ("radam", 1e-3), ("adam", 1e-3)])
def test_adam_and_radam_take_the_rate_and_the_eps_of_the_configuration(name, eps):
    model = torch.nn.Linear(2, 1)
    optimizer = training.make_optimizer(tiny_config(optimizer=name, lr=0.003, momentum=None,
                                                    adam_eps=eps), model.parameters())
    kind = {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}[name]
    assert type(optimizer) is kind
    expected = kind(model.parameters(), lr=0.003, **({} if eps is None else {"eps": eps}))
    assert optimizer.defaults == expected.defaults
    assert optimizer.defaults["eps"] == (1e-8 if eps is None else eps)


# ------------------------------------------------------------------------------ frozen runs

def with_memory(optimizer_name, value, memory, steps_taken=100):
    """A one-entry parameter `value` whose optimizer remembers `memory` (Adam's and RAdam's
    first moment, SGD's momentum buffer) after `steps_taken` steps; the gradient is 0."""
    p = torch.nn.Parameter(torch.tensor([value]))
    optimizer = training.make_optimizer(
        {"optimizer": optimizer_name, "lr": 1e-3, "momentum": 0.9 if optimizer_name == "sgd" else None},
        [p])
    p.grad = torch.zeros_like(p)
    optimizer.step()                                  # makes the state, moves nothing
    state = optimizer.state[p]
    if optimizer_name == "sgd":
        state["momentum_buffer"].fill_(memory)
    else:
        state["exp_avg"].fill_(memory)
        state["exp_avg_sq"].fill_(1e-6)
        state["step"].fill_(steps_taken)
    return p, optimizer


@pytest.mark.parametrize("optimizer_name, value, memory, frozen", [
    ("adam", 1.0, 1e-20, True), ("adam", 1.0, 1e-3, False), ("adam", 0.0, 0.0, True),
    ("adam", 1e-30, 1e-30, False), ("adam", -2.0, 1e-45, True), ("adam", 0.0, 1e-36, False),
    ("radam", 0.5, 1e-20, True), ("radam", 0.0, 1e-40, False),
    ("sgd", 0.25, 1e-12, True), ("sgd", 0.0, 1e-36, False),
])
def test_a_run_called_frozen_for_good_never_moves_again_under_zero_gradients(
        optimizer_name, value, memory, frozen):
    p, optimizer = with_memory(optimizer_name, value, memory)
    before = p.detach().clone()
    assert training.frozen_for_good(optimizer, lr=1e-3) is frozen
    for _ in range(1000):                            # Adam's moment decays but stays nonzero
        p.grad = torch.zeros_like(p)
        optimizer.step()
    assert torch.equal(p.detach(), before) is frozen     # where it is not called frozen, it moves


def pinned_alarmwork(monkeypatch):
    """Every AlarmworkNet built from now on starts with its output pinned at tanh = 1 exactly."""
    real_make_model = training.make_model

    def make_model(config):
        model = real_make_model(config)
        with torch.no_grad():
            model.b_out.fill_(50.0)
        return model
    monkeypatch.setattr(training, "make_model", make_model)


@pytest.mark.parametrize("optimizer", [{"optimizer": "adam", "lr": 0.01, "momentum": None}, {}])
def test_a_run_pinned_for_a_whole_epoch_ends_frozen_with_the_accuracies_of_its_full_budget(
        tiny_data, monkeypatch, optimizer):
    pinned_alarmwork(monkeypatch)
    arrays = data.load_data_set(tiny_data, 4)
    config = tiny_config(epochs=4, **optimizer)
    full = training.train_run(config, arrays, show_progress=False)
    ended = training.train_run({**config, "end_frozen": True}, arrays, show_progress=False)
    assert full["status"] == "finished" and full["epochs_run"] == 4 and "frozen_epoch" not in full
    assert all(h["grad_norm"] == 0.0 for h in full["history"][:-1])
    assert (ended["status"], ended["epochs_run"], ended["frozen_epoch"]) == ("frozen", 1, 1)
    assert (ended["dev_accuracy"], ended["test_accuracy"]) == (full["dev_accuracy"],
                                                               full["test_accuracy"])
    assert ended["history"][:-1] == full["history"][:1]
    assert ended["history"][-1] == {"epoch": 1, "dev_accuracy": full["history"][1]["dev_accuracy"]}


def test_a_run_that_learns_is_not_ended_and_its_record_is_the_plain_runs(tiny_data):
    arrays = data.load_data_set(tiny_data, 4)
    plain = training.train_run(tiny_config(epochs=2), arrays, show_progress=False)
    watched = training.train_run(tiny_config(epochs=2, end_frozen=True), arrays, show_progress=False)
    assert (watched["status"], watched["frozen_epoch"]) == ("finished", None)
    assert watched["config"] == {**plain["config"], "end_frozen": True}
    assert (without_times({**watched, "config": None, "frozen_epoch": None})
            == without_times({**plain, "config": None, "frozen_epoch": None}))


def test_a_frozen_run_stopped_after_its_checkpoint_resumes_as_frozen(tiny_data, tmp_path,
                                                                     monkeypatch):
    pinned_alarmwork(monkeypatch)
    arrays = data.load_data_set(tiny_data, 4)
    config = tiny_config(epochs=4, end_frozen=True)
    uninterrupted = training.train_run(config, arrays, show_progress=False)
    checkpoint = str(tmp_path / "run.ckpt")
    real_evaluate, calls = training.evaluate, []

    def stop_at_the_second_dev_check(model, x, t):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(model, x, t)

    monkeypatch.setattr(training, "evaluate", stop_at_the_second_dev_check)
    with pytest.raises(KeyboardInterrupt):
        training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    resumed = training.train_run(config, arrays, show_progress=False, checkpoint=checkpoint)
    assert resumed["status"] == "frozen"
    assert without_times(resumed) == without_times(uninterrupted)


def test_evaluation_batches_hold_at_most_eval_steps_sample_steps():
    # every length trained before the bound keeps its batches of 1000; L = 10,000 gets 500
    assert training.eval_batch(5000) == training.EVAL_BATCH == 1000
    assert training.eval_batch(10_000) == 500
    assert training.eval_batch(training.EVAL_STEPS * 2) == 1     # one sample is the least


def test_evaluate_scores_the_outputs_of_its_batches_and_leaves_the_model_training(monkeypatch):
    monkeypatch.setattr(training, "EVAL_STEPS", 30)                 # L = 10: 3 samples a batch
    torch.manual_seed(0)
    model = build_model("simple_rnn", 8, "bptt")
    sizes = []
    model.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    x, t = (torch.from_numpy(a) for a in data.adding_problem(7, 10, np.random.default_rng(3)))
    with torch.no_grad():
        whole = model(x)
    sizes.clear()
    y = training.predict(model, x)
    assert sizes == [3, 3, 1] and model.training
    torch.testing.assert_close(y, whole, rtol=0, atol=1e-6)
    t_hit = whole.detach().clone()                   # targets the whole batch's outputs hit
    t_hit[::2] += 0.5                                # and half of them missed
    assert training.evaluate(model, x, t_hit) == pytest.approx(100 * 3 / 7)

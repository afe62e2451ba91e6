"""The marker gradients: what they measure on a network whose answer is known, their split by
the slowest layer's tick, and quick runs of other models (the default's: test_study_outputs.py)."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

from experiment import recipes, training
from studies import marker_gradients


class Adder(nn.Module):
    """y = a * v[m1] + b * v[m2]: reads the markers directly, so its gradients are known."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        values, marks = x[:, :, 0], x[:, :, 1]
        half = x.shape[1] // 2
        first = (values[:, :half] * marks[:, :half]).sum(dim=1)
        second = (values[:, half:] * marks[:, half:]).sum(dim=1)
        return (self.a * first + self.b * second).unsqueeze(1)


def samples(n=6, seq_len=10):
    torch.manual_seed(0)
    x = torch.zeros(n, seq_len, 2)
    x[:, :, 0] = torch.rand(n, seq_len) - 0.5
    for i in range(n):
        x[i, i % 5, 1] = 1.0
        x[i, 5 + (2 * i) % 5, 1] = 1.0
    return x


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.5, 0.5), (0.0, -2.0)])
def test_the_gradient_at_each_marker_is_the_weight_the_answer_gives_its_value(a, b):
    first, second, unmarked = marker_gradients.marker_gradients(Adder(a, b), samples())
    assert (first, second, unmarked) == pytest.approx((abs(a), abs(b), 0.0))


def test_the_measurement_leaves_the_models_own_gradients_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 1))
    model[1].weight.grad = torch.ones_like(model[1].weight)
    marker_gradients.marker_gradients(model, samples())
    assert torch.equal(model[1].weight.grad, torch.ones_like(model[1].weight))


# ------------------------------------------------------------------------------ the split by the slow tick

def marked(positions, seq_len=12):
    """Samples whose markers are at the given 0-based (m1, m2) pairs, values 0.1 everywhere."""
    x = torch.full((len(positions), seq_len, 2), 0.1)
    x[:, :, 1] = 0.0
    for i, (m1, m2) in enumerate(positions):
        x[i, m1, 1] = x[i, m2, 1] = 1.0
    return x


def test_a_marker_is_on_the_slow_tick_when_the_slowest_layer_fires_at_its_step():
    assert marker_gradients.slow_period({"model": "alarmwork"}) == 2
    assert marker_gradients.slow_period({"model": "clockwork", "periods": [1, 2, 4, 8]}) == 8
    assert marker_gradients.slow_period({"model": "simple_rnn"}) is None
    x = marked([(0, 6), (1, 8), (3, 7), (2, 9)])
    assert marker_gradients.markers_on_tick(x, 2).tolist() == [2, 1, 0, 1]
    assert marker_gradients.markers_on_tick(x, 4).tolist() == [1, 1, 0, 0]


def test_the_tick_split_of_a_known_gradient():
    x = marked([(0, 6), (1, 8), (3, 7), (2, 9)])
    # a gradient of 1 at the even steps and 0.25 at the odd ones
    gradient = torch.tensor([[1.0 if step % 2 == 0 else 0.25 for step in range(12)]] * 4)
    gradient[0] *= 2                                   # sample 0: both markers on a tick, weight 2
    split = marker_gradients.tick_split(gradient, x, 2)
    assert split["m1_on"] == pytest.approx((2 + 1) / 2) and split["n_m1_on"] == 2   # samples 0, 3
    assert split["m1_off"] == pytest.approx(0.25) and split["n_m1_off"] == 2        # samples 1, 2
    assert split["m2_on"] == pytest.approx((2 + 1) / 2) and split["n_m2_on"] == 2   # samples 0, 1
    assert split["m2_off"] == pytest.approx(0.25) and split["n_m2_off"] == 2
    assert split["on"] == pytest.approx((2 + 1 + 2 + 1) / 4) and split["off"] == pytest.approx(0.25)


def test_the_dev_accuracy_split_partitions_the_samples_by_where_their_markers_fall():
    x = marked([(0, 6), (1, 8), (3, 7), (2, 9), (4, 10)])          # 2, 1, 0, 1, 2 on a tick
    t = torch.zeros(5)
    y = torch.tensor([[0.0], [0.5], [0.05], [0.0], [0.3]])          # hits: samples 0, 2, 3
    split = marker_gradients.accuracy_by_ticks(y, t, marker_gradients.markers_on_tick(x, 2))
    assert (split["n_both"], split["n_one"], split["n_none"]) == (2, 2, 1)
    assert (split["dev_both"], split["dev_one"], split["dev_none"]) == (50.0, 50.0, 100.0)
    nobody = marker_gradients.accuracy_by_ticks(y, t, torch.zeros(5, dtype=torch.long))
    assert nobody["n_both"] == 0 and math.isnan(nobody["dev_both"]) and nobody["dev_none"] == 60.0


@pytest.mark.parametrize("wiring", ["slower", "all"])
def test_untrained_integrator_alarmwork_hears_an_off_tick_marker_only_when_all_wired(wiring):
    torch.manual_seed(0)
    config = {"model": "alarmwork", "hidden": 16, "engine": None, "nonlinearity": "relu",
              "recurrent_init": "integrator", "wiring": wiring}
    model = training.make_model(config)
    x = marked([(m1, 60 + m1 % 7) for m1 in range(8)], seq_len=80)   # m1 60-80 steps back
    x[:, :, 0] = 0.1 * torch.rand(8, 80)
    gradient, _ = marker_gradients.input_gradient(model, x)
    split = marker_gradients.tick_split(gradient, x, marker_gradients.slow_period(config))
    assert split["m1_on"] > 1e-2 and split["n_m1_on"] == 4 and split["n_m1_off"] == 4
    if wiring == "slower":
        assert split["m1_off"] < 1e-9       # averaged away by Layer_rec1, never read by Layer_rec2
    else:
        assert split["m1_off"] > 1e-2


def test_quick_clockwork_run_splits_every_epoch_and_scores_the_dev_samples_as_the_run(tmp_path):
    marker_gradients.main(["--quick", "--models", "clockwork", "--results-dir", str(tmp_path / "out"),
                           "--data-dir", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "out" / "marker_gradients.csv")
    assert list(rows["epoch"]) == [0, 1, 2]
    assert (rows["n_both"] + rows["n_one"] + rows["n_none"] == 50).all()           # every dev sample
    assert (rows["n_m1_on"] + rows["n_m1_off"] == 20).all()                         # the probe
    assert (rows["dev_accuracy_measured"] == rows["dev_accuracy"]).all()
    weighted = sum(rows[f"dev_{w}"].fillna(0) * rows[f"n_{w}"] for w in marker_gradients.WHERE) / 50
    assert weighted.round(6).tolist() == rows["dev_accuracy"].round(6).tolist()
    text = (tmp_path / "out" / "marker_gradients.md").read_text()
    assert "| Clockwork(1,2,4,8) | 2 " in text and "m1 / m2 on a slow tick" in text
    assert "the split scores the dev samples as the run does: yes, at every epoch" in text


def test_an_all_wired_model_without_a_chosen_rate_is_refused_in_one_line(tmp_path, monkeypatch):
    rates = {k: v for k, v in recipes.RECIPES["integrator"]["lr"].items() if ":" not in k}
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", rates)
    monkeypatch.setattr(marker_gradients, "probed_run", lambda *a: pytest.fail("trained"))
    with pytest.raises(SystemExit) as exit_info:
        marker_gradients.main(["--quick", "--models", "alarmwork:all", "--results-dir", str(tmp_path / "out"),
                               "--data-dir", str(tmp_path)])
    message = str(exit_info.value.code)
    assert message.startswith("error: the integrator recipe has no learning rate for alarmwork:all")
    assert "\n" not in message


def test_an_all_wired_model_with_a_rate_is_trained_and_labelled(tmp_path, monkeypatch):
    rates = {**recipes.RECIPES["integrator"]["lr"], "alarmwork:all": 1e-4}
    monkeypatch.setitem(recipes.RECIPES["integrator"], "lr", rates)
    marker_gradients.main(["--quick", "--models", "alarmwork:all", "--results-dir", str(tmp_path / "out"),
                           "--data-dir", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "out" / "marker_gradients.csv")
    assert set(rows["model"]) == {"AlarmworkNet all-wired"} and rows["on"].notna().all()

"""The marker gradients: what they measure on a network whose answer is known, and the quick run."""
import pandas as pd
import pytest
import torch
from torch import nn

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


def test_quick_run_measures_every_epoch_and_the_end(tmp_path):
    marker_gradients.main(["--quick", "--results-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "out" / "marker_gradients.csv")
    for label in ("SimpleRNN", "AlarmworkNet"):
        assert list(rows[rows["model"] == label]["epoch"]) == [0, 1, 2]
    assert (rows[["first_marker", "second_marker", "unmarked"]] >= 0).all().all()
    text = (tmp_path / "out" / "marker_gradients.md").read_text()
    assert "python -m studies.marker_gradients --quick" in text
    assert (tmp_path / "out" / "marker_gradients.png").read_bytes()[:4] == b"\x89PNG"

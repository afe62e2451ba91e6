"""The gradient-path measurement: per-sample gradients from one backward pass, and the quick run."""
import pandas as pd
import torch

from studies import gradient_paths
from experiment import training


def test_one_backward_pass_gives_each_samples_own_gradient():
    torch.manual_seed(0)
    model = training.make_model({"model": "lstm", "hidden": 6, "engine": None})
    x = torch.randn(3, 9, 2)
    profile = gradient_paths.gradient_profile(model, x)
    one_by_one = []
    for sample in x:
        sample = sample.unsqueeze(0).clone().requires_grad_()
        model(sample).sum().backward()
        one_by_one.append(sample.grad[0, :, 0].abs())
    torch.testing.assert_close(torch.from_numpy(profile), torch.stack(one_by_one).mean(dim=0))


def test_forget_bias_1_carries_more_gradient_to_distant_steps_than_pytorchs_init():
    x = torch.randn(8, 30, 2)
    far = []
    for bias in (None, 1.0):
        torch.manual_seed(0)
        model = training.make_model({"model": "lstm", "hidden": 20, "engine": None,
                                     "lstm_forget_bias": bias})
        far.append(gradient_paths.gradient_profile(model, x)[:5].mean())   # 25-29 steps back
    assert far[1] > 10 * far[0]


def test_quick_run_writes_a_row_per_model_seed_and_step_and_a_table(tmp_path):
    gradient_paths.main(["--quick", "--results-dir", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "gradient_paths.csv")
    assert len(rows) == len(gradient_paths.MODELS) * 2 * 12
    assert (rows["gradient"] >= 0).all() and (rows["gradient"] > 0).any()
    text = (tmp_path / "gradient_paths.md").read_text()
    assert "python -m studies.gradient_paths --quick" in text
    assert all(label in text for label, _, _ in gradient_paths.MODELS)
    assert (tmp_path / "gradient_paths.png").read_bytes()[:4] == b"\x89PNG"


def test_the_window_at_distance_d_averages_distances_d_to_d_plus_7():
    steps = 12
    rows = pd.DataFrame([{"model": "m", "seed": seed, "step": step, "distance_to_end": steps - 1 - step,
                          "gradient": float(steps - 1 - step)} for seed in (0, 1) for step in range(steps)])
    windowed = gradient_paths.windowed(rows).loc["m"]
    assert windowed[0] == sum(range(0, 8)) / 8            # distances 0..7
    assert windowed[3] == sum(range(3, 11)) / 8           # distances 3..10
    assert windowed[11] == 11.0                           # the first step: only itself is left

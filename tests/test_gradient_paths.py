"""The gradient-path measurement: per-sample gradients from one backward pass, the split by the
slowest layer's tick (the quick run: test_study_outputs.py)."""
import math

import pandas as pd
import pytest
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


def test_the_window_at_distance_d_averages_distances_d_to_d_plus_7():
    steps = 12
    rows = pd.DataFrame([{"model": "m", "seed": seed, "step": step, "distance_to_end": steps - 1 - step,
                          "gradient": float(steps - 1 - step)} for seed in (0, 1) for step in range(steps)])
    windowed = gradient_paths.windowed(rows).loc["m"]
    assert windowed[0] == sum(range(0, 8)) / 8            # distances 0..7
    assert windowed[3] == sum(range(3, 11)) / 8           # distances 3..10
    assert windowed[11] == 11.0                           # the first step: only itself is left


# ------------------------------------------------------------------------------ the split by the slow tick

INTEGRATOR = gradient_paths.INTEGRATOR


def alarmwork_reading_the_input_on_the_slow_tick_only(clockwork=False):
    """A clocked network whose only input weights are its slowest layer's: the value at a step
    reaches the output only if that layer fires there, so the gradient marks its ticks."""
    torch.manual_seed(0)
    if clockwork:
        model = training.make_model({"model": "clockwork", "hidden": 6, "engine": None,
                                     "periods": [1, 2, 4, 8]})
        with torch.no_grad():
            for k in range(3):
                model.W_in[k].zero_()
    else:
        model = training.make_model({"model": "alarmwork", "hidden": 6, "engine": None})
        with torch.no_grad():
            model.W_in1.zero_()
    return model


@pytest.mark.parametrize("clockwork, period", [(False, 2), (True, 8)])
def test_the_slow_tick_is_where_the_slowest_layer_reads_the_input(clockwork, period):
    model = alarmwork_reading_the_input_on_the_slow_tick_only(clockwork)
    assert gradient_paths.slow_period("clockwork" if clockwork else "alarmwork",
                                      {"periods": [1, 2, 4, 8]} if clockwork else {}) == period
    profile = gradient_paths.gradient_profile(model, torch.rand(4, 21, 2))
    ticks = [gradient_paths.phase(step, period) == 0 for step in range(21)]
    # every step before the last: heard exactly where it is a tick (the output reads the fastest
    # layer, which reads the slow one's state one step later, so the last step is never heard)
    assert [bool(g > 0) for g in profile[:-1]] == ticks[:-1] and profile[-1] == 0
    assert sum(ticks[:-1]) == (10 if not clockwork else 3)
    if not clockwork:      # the 1-based odd steps of SPEC.md: 0-based 0, 2, 4, ...
        assert [step + 1 for step in range(21) if ticks[step]] == list(range(1, 22, 2))


def hand_rows(seq_len=20, period=4):
    """Rows of one clocked 'model' and two seeds whose gradient is known: 10 + distance on the
    tick, the distance / 100 off it, doubled for seed 1."""
    rows = []
    for seed in (0, 1):
        for step in range(seq_len):
            distance, tick = seq_len - 1 - step, step % period == 0
            rows.append({"model": "m", "seed": seed, "step": step, "distance_to_end": distance,
                         "gradient": (1 + seed) * ((10 + distance) if tick else distance / 100),
                         "slow_period": period, "phase": step % period, "on_slow_tick": tick})
    return pd.DataFrame(rows)


def test_the_tick_split_averages_each_windows_steps_on_the_tick_and_off_it_apart():
    rows = hand_rows()
    on, off = gradient_paths.tick_split(rows)["m"]
    # L = 20, period 4: the ticks are steps 0, 4, 8, 12, 16, i.e. distances 19, 15, 11, 7, 3
    # distances 0-7: on at 3 and 7; off at 0, 1, 2, 4, 5, 6; median over the seeds (x1, x2)
    assert on[0] == pytest.approx(1.5 * (13 + 17) / 2)
    assert off[0] == pytest.approx(1.5 * sum((0, 1, 2, 4, 5, 6)) / 6 / 100)
    assert on[16] == pytest.approx(1.5 * 29)            # distances 16-19: the tick at 19 only
    assert off[16] == pytest.approx(1.5 * (16 + 17 + 18) / 3 / 100)
    assert on.index.equals(off.index) and list(on.index) == list(range(20))


def test_the_tick_and_off_tick_steps_partition_every_clocked_networks_steps():
    seq_len = 24
    models = [m for m in gradient_paths.MODELS if m[1] in ("alarmwork", "clockwork", "simple_rnn")
              and "integrator" not in m[0]]
    rows = gradient_paths.measure(seq_len, 1, 2, 4, models)
    for label, name, options in models:
        run = rows[rows["model"] == label]
        assert list(run["step"]) == list(range(seq_len))
        period = gradient_paths.slow_period(name, options)
        if period is None:
            assert run["on_slow_tick"].isna().all() and run["phase"].isna().all()
            continue
        on = run[run["on_slow_tick"] == True]                # noqa: E712 (a column of objects)
        off = run[run["on_slow_tick"] == False]              # noqa: E712
        assert len(on) + len(off) == seq_len and set(on["step"]).isdisjoint(off["step"])
        assert list(on["step"]) == list(range(0, seq_len, period))
        assert sorted(run["phase"].unique()) == list(range(period))
        windows = gradient_paths.windowed(run, ("model", "on_slow_tick"))
        counts_on = [sum(1 for d in range(w, min(w + 8, seq_len)) if (seq_len - 1 - d) % period == 0)
                     for w in range(seq_len)]
        # a window with no tick has no 'on' value; every other window has both
        assert [not math.isnan(v) for v in windows.loc[(label, True)]] == [c > 0 for c in counts_on]


def test_by_phase_takes_each_phase_of_the_far_steps_apart():
    rows = hand_rows(seq_len=40, period=8)
    rows["model"] = "Clockwork(1,2,4,8)"
    phases = gradient_paths.by_phase(rows, far=20)
    # steps 0-19 are at least 20 back; phase 0: steps 0, 8 and 16 (distances 39, 31, 23)
    assert phases["Clockwork(1,2,4,8)"][0] == pytest.approx(1.5 * (49 + 41 + 33) / 3)
    assert phases["Clockwork(1,2,4,8)"][3] == pytest.approx(1.5 * (36 + 28 + 20) / 3 / 100)
    assert sorted(phases["Clockwork(1,2,4,8)"]) == list(range(8))
    table = gradient_paths.phase_table(rows, far=20)
    assert "phase 0: 1,2,4,8" in table and "phase 4: 1,2,4" in table and "phase 3: 1 " in table


def test_untrained_integrator_alarmwork_hears_far_values_only_on_the_slow_tick_unless_all_wired():
    seq_len = 80
    models = [("slower", "alarmwork", INTEGRATOR), ("all", "alarmwork", {**INTEGRATOR, "wiring": "all"})]
    rows = gradient_paths.measure(seq_len, 2, 8, 16, models)
    far = rows[rows["distance_to_end"] >= 40]
    on = far[far["on_slow_tick"] == True].groupby("model")["gradient"]    # noqa: E712
    off = far[far["on_slow_tick"] == False].groupby("model")["gradient"]  # noqa: E712
    # the assignment's wiring: Layer_rec1 averages an off-tick value away, I/2 a step
    assert on.min()["slower"] > 1e-2 and off.max()["slower"] < 1e-9
    # all-wired: Layer_rec2 reads Layer_rec1 at its next tick and holds the value
    assert on.min()["all"] > 1e-2 and off.min()["all"] > 1e-2

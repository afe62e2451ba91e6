"""benchmark_scalar_vs_vector.py: the agreement check before timing; the files of a --quick run."""
import pandas as pd
import pytest
import torch
from matplotlib import image

import benchmark_scalar_vs_vector as bench
from models import AlarmworkRNN

ENTRIES_OF_QUICK_RUN = {  # (section, what, batch, hidden, seq_len)
    ("layer_out", "Layer_out forward", 20, 50, None),
    ("layer_out", "Layer_out forward+backward", 20, 50, None),
    ("training_step", "training step", 20, 50, 10),
    ("training_step", "training step", 20, 50, 100),
    ("batch_size", "Layer_out forward+backward", 1, 50, None),
    ("batch_size", "Layer_out forward+backward", 20, 50, None),
    ("hidden_size", "Layer_out forward+backward", 20, 10, None),
    ("hidden_size", "Layer_out forward+backward", 20, 50, None),
}


# ------------------------------------------------------------------------------ wrong scalar forms

def scalar_form_without_bias(self, z):
    """Forgets b_out."""
    N, P = z.shape
    return torch.stack([torch.stack([sum(self.W_out[j, i] * z[n, i] for i in range(P))
                                     for j in range(self.W_out.shape[0])]) for n in range(N)])


def scalar_form_without_last_weight(self, z):
    """Stops the sum over hidden units one short."""
    N, P = z.shape
    return torch.stack([torch.stack([self.b_out[j] + sum(self.W_out[j, i] * z[n, i]
                                                         for i in range(P - 1))
                                     for j in range(self.W_out.shape[0])]) for n in range(N)])


def scalar_form_cut_from_the_graph(self, z):
    """Right numbers, but no gradient flows back into the recurrent layers."""
    return AlarmworkRNN.layer_out_scalar(self, z.detach())


def model_with_scalar_form(layer_out_scalar, state_dict):
    """An AlarmworkRNN using `layer_out_scalar` as its scalar form, loaded with `state_dict`."""
    cls = type("WrongScalarRNN", (AlarmworkRNN,), {"layer_out_scalar": layer_out_scalar})
    model = cls(scalar_out=True)
    model.load_state_dict(state_dict)
    return model


# ------------------------------------------------------------------------------ agreement check

def test_real_scalar_and_vector_forms_agree_in_outputs_and_gradients():
    vector, scalar = bench.twin_models()
    largest = bench.check_forms_agree(vector, scalar, *bench.adding_batch(4, 10))
    assert 0.0 <= largest <= bench.TOLERANCE


@pytest.mark.parametrize("wrong_form", [scalar_form_without_bias, scalar_form_without_last_weight])
def test_check_rejects_a_wrong_scalar_form(wrong_form):
    vector, _ = bench.twin_models()
    wrong = model_with_scalar_form(wrong_form, vector.state_dict())
    with pytest.raises(bench.FormsDisagree):
        bench.check_forms_agree(vector, wrong, *bench.adding_batch(4, 10))


def test_check_catches_a_form_whose_output_is_right_but_gradient_wrong():
    vector, _ = bench.twin_models()
    wrong = model_with_scalar_form(scalar_form_cut_from_the_graph, vector.state_dict())
    x, t = bench.adding_batch(4, 10)
    torch.testing.assert_close(wrong(x), vector(x), rtol=0, atol=bench.TOLERANCE)
    with pytest.raises(bench.FormsDisagree, match="gradient of W_"):
        bench.check_forms_agree(vector, wrong, x, t)


def test_check_refuses_models_with_different_weights():
    vector, _ = bench.twin_models(seed=0)
    _, other = bench.twin_models(seed=1)
    with pytest.raises(ValueError, match="same weights"):
        bench.check_forms_agree(vector, other, *bench.adding_batch(4, 10))


def test_main_refuses_to_time_forms_that_disagree(tmp_path, monkeypatch):
    monkeypatch.setattr(AlarmworkRNN, "layer_out_scalar", scalar_form_without_bias)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", "--results-dir", str(tmp_path)])
    message = exit_info.value.code  # a string: Python prints it on stderr and exits with 1
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message
    assert "disagree" in message
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ a quick run

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The results folder of one `--quick` run, shared by the tests below."""
    results_dir = tmp_path_factory.mktemp("results")
    bench.main(["--quick", "--results-dir", str(results_dir)])
    return results_dir


def test_csv_has_a_vector_and_a_scalar_row_for_every_entry(quick_run):
    rows = pd.read_csv(quick_run / "scalar_vs_vector.csv")
    keys = ["section", "what", "batch", "hidden", "seq_len"]
    assert {*keys, "form", "median_s", "iqr_s"} <= set(rows.columns)
    entries = {(r.section, r.what, r.batch, r.hidden, None if pd.isna(r.seq_len) else r.seq_len)
               for r in rows.itertuples()}
    assert entries == ENTRIES_OF_QUICK_RUN
    forms = rows.fillna({"seq_len": 0}).groupby(keys).form
    assert set(forms.apply(frozenset)) == {frozenset({"scalar", "vector"})}
    assert len(rows) == 2 * len(ENTRIES_OF_QUICK_RUN)
    assert (rows.median_s > 0).all() and (rows.iqr_s >= 0).all()


def test_projected_run_is_500_steps_times_50_epochs_of_the_step_median(quick_run):
    rows = pd.read_csv(quick_run / "scalar_vs_vector.csv")
    steps = rows[rows.section == "training_step"]
    assert len(steps) == 4
    assert steps.projected_run_s.to_numpy() == pytest.approx(500 * 50 * steps.median_s.to_numpy())
    assert rows[rows.section != "training_step"].projected_run_s.isna().all()


def test_markdown_has_the_command_the_machine_and_a_ratio_column_in_every_table(quick_run):
    text = (quick_run / "scalar_vs_vector.md").read_text()
    assert f"python benchmark_scalar_vs_vector.py --quick --results-dir {quick_run}" in text
    assert bench.cpu_model() in text and "1 torch thread" in text and torch.__version__ in text
    assert "load average" in text
    table_headers = [line for line in text.splitlines() if line.startswith("| ")
                     and "vector" in line and "scalar" in line]
    assert len(table_headers) == 4
    assert all("scalar/vector" in line for line in table_headers)


def test_markdown_ratio_is_scalar_median_over_vector_median(quick_run):
    rows = pd.read_csv(quick_run / "scalar_vs_vector.csv")
    forward = rows[rows.what == "Layer_out forward"].set_index("form").median_s
    ratio = bench.format_ratio(forward["scalar"] / forward["vector"])
    lines = (quick_run / "scalar_vs_vector.md").read_text().splitlines()
    forward_line = next(line for line in lines if line.startswith("| forward "))
    assert forward_line.rstrip(" |").endswith(ratio)


def test_figure_is_a_png_image(quick_run):
    path = quick_run / "scalar_vs_vector.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(path).shape
    assert width > height > 100


def test_no_temporary_files_are_left_behind(quick_run):
    assert sorted(p.name for p in quick_run.iterdir()) == [
        "scalar_vs_vector.csv", "scalar_vs_vector.md", "scalar_vs_vector.png"]


# ------------------------------------------------------------------------------ formatting

@pytest.mark.parametrize("seconds, text", [(4.213e-6, "4.21 µs"), (0.99996e-3, "1 ms"),
                                           (0.0132, "13.2 ms"), (204.0, "3.4 min"),
                                           (4320.0, "1.2 h")])
def test_times_are_shown_in_the_largest_unit_that_reads_at_least_one(seconds, text):
    assert bench.format_seconds(seconds) == text

"""benchmark_scalar_vs_vector.py: the agreement check before timing; the files of a --quick run."""
from types import SimpleNamespace

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

@pytest.mark.parametrize("form", ["layer_out", "layer_out_scalar"])
def test_each_form_of_layer_out_gives_w_out_z_plus_b_out_and_its_gradients_by_hand(form):
    model = AlarmworkRNN(num_hidden=3)
    with torch.no_grad():
        model.W_out.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        model.b_out.copy_(torch.tensor([0.25]))
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], requires_grad=True)
    a_out = getattr(model, form)(z)
    # 0.5 - 2 + 6 + 0.25 and 0 + 1 + 1 + 0.25
    torch.testing.assert_close(a_out, torch.tensor([[4.75], [2.25]]), rtol=0, atol=0)
    a_out.sum().backward()   # d/dW_out = the sum of z over the batch, d/db_out = N, d/dz = W_out
    torch.testing.assert_close(model.W_out.grad, torch.tensor([[1.0, 1.0, 3.5]]), rtol=0, atol=0)
    torch.testing.assert_close(model.b_out.grad, torch.tensor([2.0]), rtol=0, atol=0)
    torch.testing.assert_close(z.grad, torch.tensor([[0.5, -1.0, 2.0]] * 2), rtol=0, atol=0)


def test_the_check_accepts_the_real_scalar_and_vector_forms():
    vector, scalar = bench.twin_models()
    bench.check_forms_agree(vector, scalar, *bench.adding_batch(4, 10))   # raises if they differ


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


def test_tables_give_scalar_over_vector_and_the_projected_run_of_known_times(monkeypatch):
    medians = {("Layer_out forward", "vector"): 2e-6, ("Layer_out forward", "scalar"): 4.874e-3,
               ("training step", "vector"): 0.01, ("training step", "scalar"): 0.5}

    def measure(entry, threads, min_run_time):   # a Measurement of 5 blocks, median as above
        median = medians.get((entry["what"], entry["form"]), 1e-3)
        return SimpleNamespace(median=median, iqr=0.0, times=[median] * 5, number_per_run=1), "bptt"
    monkeypatch.setattr(bench, "measure", measure)
    text = bench.tables(bench.run_plan(bench.plan(bench.QUICK), 1, 0.0))
    layer_out, training_step = (table_rows(part) for part in text.split("### ")[1:3])
    assert layer_out["forward"][-1] == "2,437"   # 4.874 ms / 2 µs
    # 0.01 s x 500 steps x 50 epochs = 250 s; 0.5 s x 25,000 steps = 12,500 s
    assert training_step["10"][-3:] == ["50.0", "4.17 min", "3.47 h"]


def table_rows(markdown):
    """{first cell: [every cell]} of the rows of a Markdown table, its header included."""
    rows = [[cell.strip() for cell in line.strip(" |").split("|")]
            for line in markdown.splitlines() if line.startswith("| ")]
    return {row[0]: row for row in rows}


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

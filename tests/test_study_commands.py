"""What every study's command line shares: a results folder that cannot be written is refused in
one line before any work, and a list option that names one value twice is refused."""
import importlib

import pytest

from experiment import grid

# (module, its arguments apart from the output folder, the function doing the study's work)
STUDIES = [
    ("studies.divergence", ["--quick"], "watched_run"),
    ("studies.collapse", ["--quick"], "watched_run"),
    ("studies.marker_gradients", ["--quick"], "probed_run"),
    ("studies.gradient_paths", ["--quick"], "measure"),
    ("studies.benchmark_training_speed", [], "measure"),
    ("benchmark_scalar_vs_vector", [], "run_plan"),
    ("studies.reach", ["--models", "lstm", "--lengths", "4", "--seeds", "1"], None),
    ("studies.sweep_learning_rates", ["--models", "lstm"], None),
    ("studies.remedy", ["--seeds", "100"], None),
]


@pytest.mark.parametrize("module, argv, work", STUDIES, ids=[s[0] for s in STUDIES])
def test_an_unwritable_results_folder_is_refused_in_one_line_before_any_work(
        module, argv, work, tmp_path, monkeypatch):
    study = importlib.import_module(module)

    def no_work(*args, **kwargs):
        raise AssertionError("the study worked before checking its results folder")

    if work:
        monkeypatch.setattr(study, work, no_work)
    monkeypatch.setattr(grid, "run_worker", no_work)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        study.main([*argv, "--data-dir", str(tmp_path / "data"), "--results-dir", str(blocker / "out")]
                   if module not in ("studies.gradient_paths", "studies.benchmark_training_speed",
                                     "benchmark_scalar_vs_vector")
                   else [*argv, "--results-dir", str(blocker / "out")])
    message = str(exit_info.value.code)
    assert message.startswith("error: cannot write results to ") and "Not a directory" in message
    assert "\n" not in message


def test_compare_results_refuses_an_unwritable_output_before_reading_anything(tmp_path):
    from studies import compare_results
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        compare_results.main([str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(blocker / "out")])
    assert str(exit_info.value.code).endswith("choose another folder with --output")


@pytest.mark.parametrize("module, argv", [
    ("studies.remedy", ["--seeds", "100", "101", "100"]),
    ("studies.divergence", ["--seeds", "0", "0"]),
    ("studies.collapse", ["--seeds", "1", "1"]),
    ("studies.marker_gradients", ["--models", "alarmwork", "alarmwork"]),
])
def test_a_value_named_twice_is_an_argparse_error(module, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grid, "run_worker", lambda job: pytest.fail("trained"))
    study = importlib.import_module(module)
    with pytest.raises(SystemExit) as exit_info:
        study.main([*argv, "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "each one once, got" in capsys.readouterr().err

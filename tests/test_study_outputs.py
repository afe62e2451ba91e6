"""Where the studies write. Every study's --quick run, in a clone of the repository as a user
gets it, writes into a temporary folder it names and leaves every committed result as it was;
a run of other settings writes into a folder of its own, named after them, where the committed
results of those settings lie. Then what each quick run writes."""
import contextlib
import importlib
import io
import os
import re
import shutil
import subprocess
import tempfile

import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every study with --quick, and the files its run writes
QUICK = {
    "studies.collapse": ["collapse.csv", "collapse.md", "collapse.png"],
    "studies.divergence": ["divergence.csv", "divergence.md", "divergence.png"],
    "studies.marker_gradients": ["marker_gradients.csv", "marker_gradients.md", "marker_gradients.png"],
    "studies.gradient_paths": ["gradient_paths.csv", "gradient_paths.md", "gradient_paths.png"],
    "studies.benchmark_training_speed": ["training_speed.csv", "training_speed.md",
                                         "training_speed_calls.csv"],
    "benchmark_scalar_vs_vector": ["scalar_vs_vector.csv", "scalar_vs_vector.md", "scalar_vs_vector.png"],
    "studies.generalise": ["data", "generalise.csv", "generalise.md", "generalise.png", "retrained.csv",
                           "runs"],
    "studies.recipe_cost": ["cost.md", "epoch_times.csv", "memory.csv", "plan.csv", "subnormals.csv"],
}
# a report of part of a study, in its own folder, on a data set of other sizes than its runs'
OTHER_SETTINGS = [("studies.remedy", ["--report", "--train", "200"])]


def git(*argv, cwd):
    return subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone_runs(tmp_path_factory):
    """A clone of the repository's committed files, and the printed output of each command
    above run in it (this checkout's code, the clone's results/ and data/)."""
    if shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("the repository is not a git checkout here")
    clone = tmp_path_factory.mktemp("clone") / "repository"
    git("clone", "--quiet", ROOT, str(clone), cwd=ROOT)
    temporary = tmp_path_factory.mktemp("tmp")
    here, tempdir = os.getcwd(), tempfile.tempdir
    outputs = {}
    os.chdir(clone)
    tempfile.tempdir = str(temporary)
    try:
        for module, argv in [(module, ["--quick"]) for module in QUICK] + OTHER_SETTINGS:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                importlib.import_module(module).main(argv)
            outputs[module] = printed.getvalue()
    finally:
        os.chdir(here)
        tempfile.tempdir = tempdir
    return clone, temporary, outputs


def quick_folder(clone_runs, module):
    """The folder a quick run said it writes to."""
    _, temporary, outputs = clone_runs
    match = re.search(r"^--quick: the files go to (\S+), ", outputs[module], re.MULTILINE)
    assert match, f"{module} --quick did not say where its files go"
    return temporary / os.path.relpath(match.group(1), temporary)


def test_no_quick_run_nor_part_of_a_study_writes_over_a_committed_result(clone_runs):
    clone, temporary, _ = clone_runs
    changed = [line for line in git("status", "--porcelain", cwd=clone).splitlines()
               if line[3:].startswith("results")]
    assert changed == []
    for module, files in QUICK.items():
        folder = quick_folder(clone_runs, module)
        assert folder.parent == temporary and sorted(p.name for p in folder.iterdir()) == files


def settings_folder(module, argv, tmp_path, monkeypatch):
    """The folder a study's command writes into, parsed in an empty folder (nothing runs)."""
    monkeypatch.chdir(tmp_path)
    return os.path.normpath(importlib.import_module(module).parse_args(argv).results_dir)


def made_by(path):
    """(module, arguments) of the command in a committed report's 'Made by' line."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    module, argv = re.search(r"`python (?:-m )?([^\s`]+?)(?:\.py)?(?: ([^`]*))?`", text).groups()
    return module, argv or ""


@pytest.mark.parametrize("path", [
    "results/reach/collapse/collapse.md", "results/reach/collapse/lr3e-5/collapse.md",
    "results/reach/collapse/clockwork_all/collapse.md",
    "results/reach/divergence/divergence.md", "results/reach/gradient_paths.md",
    "results/reach/marker_gradients/marker_gradients.md",
    "results/reach/marker_gradients/alarmwork_L500/marker_gradients.md",
    "results/reach/marker_gradients/alarmwork_all_L500/marker_gradients.md",
    "results/reach/marker_gradients/clockwork_L100/marker_gradients.md",
    "results/reach/recipe_cost/cost.md",
])
def test_a_committed_results_command_writes_into_its_folder_without_naming_it(
        path, tmp_path, monkeypatch):
    module, argv = made_by(path)
    argv = re.sub(r" ?--results-dir \S+", "", argv).split()
    assert settings_folder(module, argv, tmp_path, monkeypatch) == os.path.dirname(path)


@pytest.mark.parametrize("module, argv, folder", [
    ("studies.divergence", ["--length", "1000", "--seeds", "0", "1"],
     "results/reach/divergence/L1000_seeds0-1"),
    ("studies.collapse", ["--model", "clockwork:all", "--lr", "3e-5"],
     "results/reach/collapse/clockwork_all_lr3e-5"),
    ("studies.gradient_paths", ["--length", "200"], "results/reach/gradient_paths/L200"),
    ("studies.benchmark_training_speed", ["--models", "alarmwork_bptt", "--lengths", "100"],
     "results/training_speed/alarmwork_bptt_L100"),
    ("studies.benchmark_training_speed", ["--flush-denormal"], "results/training_speed/flushed"),
    ("benchmark_scalar_vs_vector", ["--threads", "2"], "results/scalar_vs_vector/threads2"),
    ("benchmark_scalar_vs_vector", ["--threads", "2", "--results-dir", "elsewhere"], "elsewhere"),
])
def test_other_settings_write_into_a_folder_named_after_them(module, argv, folder, tmp_path, monkeypatch):
    assert settings_folder(module, argv, tmp_path, monkeypatch) == os.path.normpath(folder)


# ------------------------------------------------------------------------------ what the quick runs write

def test_quick_collapse_writes_its_table_rows_and_figure(clone_runs):
    folder = quick_folder(clone_runs, "studies.collapse")
    rows = pd.read_csv(folder / "collapse.csv")
    assert sorted(rows["seed"].unique()) == [0, 1] and len(rows) == 2 * 10
    text = (folder / "collapse.md").read_text()
    assert "python -m studies.collapse --quick`" in text and "Adam 0.0001, L = 30" in text
    assert (folder / "collapse.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_divergence_writes_its_table_rows_and_figure(clone_runs):
    folder = quick_folder(clone_runs, "studies.divergence")
    rows = pd.read_csv(folder / "divergence.csv")
    assert sorted(rows["seed"].unique()) == [0, 1] and len(rows) == 2 * 2 * 10
    text = (folder / "divergence.md").read_text()
    assert "python -m studies.divergence --quick`" in text and "rho* = " in text
    assert (folder / "divergence.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_marker_gradients_measure_every_epoch_and_the_end(clone_runs):
    folder = quick_folder(clone_runs, "studies.marker_gradients")
    rows = pd.read_csv(folder / "marker_gradients.csv")
    for label in ("SimpleRNN", "AlarmworkNet"):
        assert list(rows[rows["model"] == label]["epoch"]) == [0, 1, 2]
    assert (rows[["first_marker", "second_marker", "unmarked"]] >= 0).all().all()
    assert rows[rows["model"] == "SimpleRNN"]["on"].isna().all()          # no clock, no split
    assert rows[rows["model"] == "AlarmworkNet"][["m1_on", "m2_on", "dev_both"]].notna().all().all()
    text = (folder / "marker_gradients.md").read_text()
    assert "python -m studies.marker_gradients --quick`" in text
    assert (folder / "marker_gradients.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_gradient_paths_write_a_row_per_model_seed_and_step_and_a_table(clone_runs):
    from studies import gradient_paths
    folder = quick_folder(clone_runs, "studies.gradient_paths")
    rows = pd.read_csv(folder / "gradient_paths.csv")
    assert len(rows) == len(gradient_paths.MODELS) * 2 * 12
    assert (rows["gradient"] >= 0).all() and (rows["gradient"] > 0).any()
    clocked = rows[rows["slow_period"].notna()]
    assert set(clocked["model"]) == {label for label, name, _ in gradient_paths.MODELS
                                     if name in ("alarmwork", "clockwork")}
    assert ((clocked["step"] % clocked["slow_period"]) == clocked["phase"]).all()
    text = (folder / "gradient_paths.md").read_text()
    assert "python -m studies.gradient_paths --quick`" in text
    assert all(label in text for label, _, _ in gradient_paths.MODELS)
    assert "| AlarmworkNet all-wired, ReLU integrator" in text and "back: on / off" in text
    assert "phase 0: 1,2,4,8" in text
    assert (folder / "gradient_paths.png").read_bytes()[:4] == b"\x89PNG"

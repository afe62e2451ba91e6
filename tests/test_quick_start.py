"""The README's quick start on a copy of the repository as git sees it (its tracked files and
the new ones it does not ignore, committed afresh): it trains nothing, prints the table, and
leaves every tracked file as it was."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git(*argv, cwd):
    return subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("the repository is not a git checkout here")
    folder = tmp_path_factory.mktemp("clone") / "repository"
    names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, names.split("\0")):
        if os.path.isfile(os.path.join(ROOT, name)):             # not a file deleted but unstaged
            os.makedirs(os.path.dirname(folder / name), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), folder / name)
    git("init", "--quiet", cwd=folder)
    git("add", "--all", cwd=folder)
    git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet",
        "--message", "the repository as it stands", cwd=folder)
    return folder


def run(clone, *argv):
    return subprocess.run([sys.executable, *argv], cwd=clone, capture_output=True, text=True,
                          timeout=600)


def test_the_quick_start_reuses_the_saved_runs_and_changes_no_tracked_file(clone):
    process = run(clone, "train_rnn.py")
    assert process.returncode == 0, process.stderr
    assert "skipping 12 finished run(s)" in process.stdout
    assert "| SimpleRNN " in process.stdout and "| AlarmworkNet " in process.stdout
    assert git("status", "--porcelain", "--untracked-files=no", cwd=clone) == ""


def test_a_report_of_part_of_the_reach_study_leaves_its_files_alone(clone):
    process = run(clone, "-m", "studies.reach", "--lengths", "10", "50", "--report")
    assert process.returncode == 0, process.stderr
    assert "left as they are" in process.stdout
    assert git("status", "--porcelain", "--untracked-files=no", cwd=clone) == ""

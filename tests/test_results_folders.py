"""The committed results folders: each README.md shows the table its records make today."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("folder", ["results", os.path.join("results", "clip1.0")])
def test_the_folders_readme_holds_its_current_accuracy_table(folder):
    with open(os.path.join(ROOT, folder, "accuracy.md")) as f:
        table = table_lines(f.read())
    with open(os.path.join(ROOT, folder, "README.md")) as f:
        readme = f.read()
    assert table and "\n".join(table) in readme


def test_the_reach_readme_holds_the_current_reach_table():
    with open(os.path.join(ROOT, "results", "reach", "reach.md")) as f:
        table = table_lines(f.read())
    with open(os.path.join(ROOT, "results", "reach", "README.md")) as f:
        readme = f.read()
    assert table and "\n".join(table) in readme


@pytest.mark.parametrize("results_file", [
    "results/accuracy.md", "results/reach/reach.md", "results/training_speed.md"])
def test_the_main_readme_shows_the_current_tables(results_file):
    with open(os.path.join(ROOT, results_file)) as f:
        tables = f.read().split("Cost of one call")[0]       # the speed file's second table is cut
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for line in table_lines(tables):
        assert line in readme, f"{results_file}: {line[:60]}..."

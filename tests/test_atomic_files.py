"""A write that fails part-way leaves the old file (or none), never a half-written one."""
import os

import pytest

from lib.atomic_files import atomic_write, atomic_write_text


def test_a_complete_write_replaces_the_file(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")
    atomic_write_text(str(path), "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["record.json"]


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "adding_problem_L010.npz"
    path.write_bytes(b"the old, complete file")

    def write_half_then_fail(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt   # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), write_half_then_fail, binary=True)
    assert path.read_bytes() == b"the old, complete file"
    assert os.listdir(tmp_path) == ["adding_problem_L010.npz"]


def test_an_interrupted_first_write_leaves_nothing(tmp_path):
    def fail(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(str(tmp_path / "new" / "accuracy.csv"), fail)
    assert os.listdir(tmp_path / "new") == []

"""A write that fails part-way leaves the old file (or none), never a half-written one; a
whole one is on disk before its rename, and readable by whom the umask lets read it."""
import os
import stat
import subprocess
import sys

import pytest

from lib.atomic_files import atomic_write, atomic_write_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_a_written_file_has_the_mode_the_umask_gives(tmp_path):
    # other users of a shared results folder read its records as they read any file there
    written = {}
    for umask in (0o022, 0o027):
        previous = os.umask(umask)
        try:
            path = tmp_path / f"umask{umask:03o}.json"
            atomic_write_text(str(path), "{}")
        finally:
            os.umask(previous)
        written[umask] = stat.S_IMODE(os.stat(path).st_mode)
    assert written == {0o022: 0o644, 0o027: 0o640}


def test_a_write_reaches_the_disk_before_its_rename_and_the_folder_after_it(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append("fsync folder" if stat.S_ISDIR(info.st_mode) else f"fsync file of {info.st_size} bytes")
        real_fsync(fd)

    def replace(source, target):
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(str(tmp_path / "record.json"), "0123456789")
    assert events == ["fsync file of 10 bytes", "rename", "fsync folder"]


CHECK_IN_A_LOOP = """
import sys, time
from lib.atomic_files import check_writable
end = time.monotonic() + 1.5
while time.monotonic() < end:
    check_writable(sys.argv[1])
"""


def test_two_processes_checking_one_folder_at_once_both_find_it_writable(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-c", CHECK_IN_A_LOOP, str(tmp_path)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert os.listdir(tmp_path) == []

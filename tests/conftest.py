"""Fixtures shared by the test files: a tiny data set on disk, and one compute thread per test
process; the slowest files run first."""
import signal

import pytest
import torch

import generate_data_adding_problem as data
from lib.bptt import limit_blas_to_one_thread


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_test_process():
    """Torch and NumPy's BLAS compute on one thread in each test process, as in every process
    that trains (experiment/training.py): the test processes share the CPU cores, and a second
    thread of tiny products only spins against the other processes. A fresh interpreter that a
    test starts keeps its own defaults."""
    torch.set_num_threads(1)
    limit_blas_to_one_thread()


@pytest.fixture(scope="session", autouse=True)
def commands_take_ctrl_c():
    """The commands a test starts take Ctrl-C (SIGINT), as from a terminal: a shell starts a
    background job with SIGINT ignored, and a started process would inherit that."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Data sets of lengths 4 and 7 with 60/20/20 samples; returns their folder."""
    folder = tmp_path_factory.mktemp("data")
    data.main(["--lengths", "4", "7", "--train", "60", "--dev", "20", "--test", "20",
               "--data-dir", str(folder)])
    return str(folder)


# The files that take longest, longest first. pytest-xdist hands out whole files (pytest.ini:
# --dist loadfile, in the order collected: --no-loadscope-reorder), a file to a worker that is
# almost done: a long file handed out last keeps one worker busy while the other waits.
SLOW_FILES = ("test_grid.py", "test_train_rnn.py", "test_cluster.py", "test_training.py",
              "test_cluster_faults.py", "test_claims.py", "test_compare_results.py",
              "test_bptt.py", "test_quick_start.py")


def pytest_collection_modifyitems(items):
    """The slow files first, in the order above; the others after them, as collected."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES)))

"""What lib/machine.py reports about the machine, whatever the importer loaded before it."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_python(code):
    """What `code` prints in a new interpreter started in the repository root."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def test_blas_kernel_and_threads_do_not_depend_on_whether_numpy_was_imported_first():
    report = "from lib.machine import blas_kernel, blas_threads; print(blas_kernel(), blas_threads())"
    after_numpy = fresh_python("import numpy; " + report)
    if after_numpy.startswith("not OpenBLAS"):
        pytest.skip("NumPy does not use OpenBLAS here: there is no kernel name to lose")
    assert fresh_python(report) == after_numpy

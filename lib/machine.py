"""What machine a measurement ran on, for the captions of the benchmarks and the run records."""
import os
import platform

import numpy  # noqa: F401  threadpool_info sees only loaded libraries: load NumPy's BLAS first
from threadpoolctl import threadpool_info


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def blas_threads():
    """NumPy's BLAS threads, which the bptt engine uses (bptt.limit_blas_to_one_thread sets one)."""
    counts = sorted({pool["num_threads"] for pool in threadpool_info()
                     if pool["user_api"] == "blas"})
    return "/".join(map(str, counts)) or "?"


def load_average():
    """The 1-minute load average, e.g. '2.1', or '?' where the system does not say."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "?"



def blas_kernel():
    """The kernel family NumPy's OpenBLAS chose for this CPU, e.g. 'Haswell' or 'SkylakeX'.

    The choice sets the order of the sums inside a matrix product, so the bptt engine's float32
    results, and the training runs that amplify them, differ between kernels. OpenBLAS takes
    OPENBLAS_CORETYPE (read when NumPy is imported) to force one.
    """
    kernels = sorted({pool.get("architecture") or "?" for pool in threadpool_info()
                      if pool.get("internal_api") == "openblas"})
    return "/".join(kernels) or "not OpenBLAS"

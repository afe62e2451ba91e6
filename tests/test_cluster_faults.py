"""What a user can get wrong about a Dask cluster, and what a cluster can do to its runs: a
worker of more than one thread is refused, a worker whose scheduler is gone stops its run, a
malformed or mismatched address ends the command in one line within seconds, and a scheduler
without workers is said to wait for them. Real schedulers and workers of this machine, bound
to 127.0.0.1 and stopped by the tests (test_cluster.py's LocalDaskCluster)."""
import gc
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch
from distributed import Client, fire_and_forget

import generate_data_adding_problem as data
import train_rnn
from experiment import cluster, configs, runs
from test_cluster import LocalDaskCluster, grid_argv, records, run_command

TINY_RUN = ["--models", "lstm", "--lengths", "4", "--seed", "0", "--epochs", "1"]


@pytest.fixture(scope="module")
def two_thread_worker():
    started = LocalDaskCluster(workers=1, threads=2)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def scheduler_alone():
    started = LocalDaskCluster(workers=0)
    yield started
    started.stop()


def test_a_worker_of_two_threads_is_refused_before_any_run(two_thread_worker, tiny_data, tmp_path):
    with pytest.raises(SystemExit) as stop:
        train_rnn.main(["--models", "lstm", "simple_rnn", "--lengths", "4", "--seeds", "2",
                        "--epochs", "1", *grid_argv(tiny_data, str(tmp_path),
                                                    "--scheduler", two_thread_worker.address)])
    message = str(stop.value)
    assert message.startswith("error: the Dask worker tcp://127.0.0.1:"), message
    assert "has 2 threads" in message and "--nthreads 1" in message and "\n" not in message
    assert not records(str(tmp_path))


def test_a_worker_of_two_threads_that_gets_a_run_trains_nothing(two_thread_worker, tiny_data,
                                                                tmp_path, monkeypatch):
    """A worker that joins after the client looked: the worker itself refuses the run."""
    monkeypatch.setattr(cluster, "refuse_threaded", lambda workers: None)
    with pytest.raises(SystemExit) as stop:
        train_rnn.main(TINY_RUN + grid_argv(tiny_data, str(tmp_path),
                                            "--scheduler", two_thread_worker.address))
    message = str(stop.value)
    assert message.startswith("error: the Dask worker tcp://127.0.0.1:"), message
    assert "has 2 threads" in message and "\n" not in message
    assert not os.listdir(tmp_path / "runs")                 # no record, no checkpoint


def test_a_worker_whose_scheduler_is_gone_stops_after_its_epoch(tmp_path):
    sizes = {"train": 400, "dev": 20, "test": 20}
    data.write_data_set(str(tmp_path / "data"), 30, sizes, seed=0)
    config = configs.run_config("lstm", 30, 0, data.generator_options(30, sizes, 0), epochs=500)
    checkpoint = runs.checkpoint_path(str(tmp_path / "res"), config)
    started = LocalDaskCluster(workers=1)
    try:
        with Client(started.address, set_as_default=False) as client:   # the run outlives it
            (worker_pid,) = client.run(os.getpid).values()
            fire_and_forget(client.submit(cluster.train_task, (config, str(tmp_path / "data"),
                                                               str(tmp_path / "res")), pure=False))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not os.path.exists(checkpoint):
            time.sleep(0.05)
        started.kill_scheduler()
        at_kill = epochs_in(checkpoint)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and running(worker_pid):
            time.sleep(0.05)
        assert not running(worker_pid)    # the worker's process, not its nanny's, which lingers
    finally:
        started.stop()
    assert at_kill <= epochs_in(checkpoint) <= at_kill + 2 < 500


def epochs_in(checkpoint):
    return torch.load(checkpoint, weights_only=True)["epochs_run"]


def running(pid):
    """Whether process `pid` runs (a zombie, ended and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------------------ addresses

@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:8786", "tcp://127.0.0.1",
                                     "http://127.0.0.1:8786"])
def test_an_address_without_scheme_or_port_is_refused_by_the_command_line(address, tiny_data,
                                                                          tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_rnn.main(TINY_RUN + grid_argv(tiny_data, str(tmp_path), "--scheduler", address))
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: argument --scheduler: expected tcp://HOST:PORT or tls://HOST:PORT, "
        f"got '{address}'")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A certificate, its own authority, and its key: enough for a client to try TLS."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-subj", "/CN=127.0.0.1", "-days", "1"],
                   check=True, capture_output=True)
    return cert, key


def test_tls_against_a_plain_scheduler_ends_in_one_line_within_seconds(scheduler_alone, tls_files,
                                                                      tiny_data, tmp_path,
                                                                      monkeypatch):
    cert, key = tls_files
    address = scheduler_alone.address.replace("tcp://", "tls://")
    argv = TINY_RUN + grid_argv(tiny_data, str(tmp_path), "--scheduler", address,
                                "--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key)
    unraisable = []                       # what a client's __del__ raises, shown on stderr
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    started = time.monotonic()
    for _ in range(4):                    # the handshake fails in one of two ways, by chance
        with pytest.raises(SystemExit) as stop:
            train_rnn.main(argv)
        message = str(stop.value)
        assert message.startswith(f"error: cannot reach the Dask scheduler at {address} ("), message
        assert "the TLS handshake failed: is the scheduler started with --protocol tls" in message
        assert "\n" not in message
        del stop
        gc.collect()                      # the client that failed to connect goes now
    assert time.monotonic() - started < 10
    assert not unraisable, [str(u.exc_value) for u in unraisable]


def test_a_scheduler_without_workers_is_said_to_wait_for_them(scheduler_alone, tiny_data, tmp_path):
    process = run_command(TINY_RUN + grid_argv(tiny_data, str(tmp_path),
                                               "--scheduler", scheduler_alone.address))
    try:
        line = first_line_starting(process, "waiting for workers", seconds=30)
    finally:
        process.kill()
        process.wait()
    assert line == (f"waiting for workers: the Dask scheduler at {scheduler_alone.address} has "
                    "none (README: More machines)")


def first_line_starting(process, start, seconds):
    """The first line of the process's output that holds `start`, from there; None after
    `seconds`."""
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left).strip()
        except queue.Empty:
            break
        if start in line:                 # after a progress bar's control codes
            return line[line.index(start):]
    return None

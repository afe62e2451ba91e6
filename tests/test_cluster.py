"""The grid on a Dask cluster: a real scheduler and two workers of this machine, bound to
127.0.0.1 and stopped by the tests. The records are the local pool's, bit for bit; a worker
killed mid-run costs at most its epoch in progress; a lost scheduler and Ctrl-C end the
command with one line, every finished record kept, and the same command goes on."""
import errno
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from distributed import Client

import generate_data_adding_problem as data
import train_rnn
from experiment import cluster, configs, grid
from studies.common import study_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class LocalDaskCluster:
    """`dask scheduler` and `dask worker` processes of this machine, as a user starts them
    (from the repository's root, one thread a worker unless told), bound to 127.0.0.1 only."""

    def __init__(self, workers, port=None, threads=1):
        self.port = port or free_port()
        self.address = f"tcp://{HOST}:{self.port}"
        self.scheduler = self.start("distributed.cli.dask_scheduler", "--port", str(self.port))
        self.workers = [self.start("distributed.cli.dask_worker", self.address,
                                   "--nthreads", str(threads), "--name", f"w{i}")
                        for i in range(workers)]
        try:
            with Client(self.address, timeout="60s", set_as_default=False) as client:
                if workers:
                    client.wait_for_workers(workers, timeout=120)
        except BaseException:             # no process outlives a cluster that did not start
            self.stop()
            raise

    def start(self, module, *args):
        return subprocess.Popen([sys.executable, "-m", module, *args, "--host", HOST,
                                 "--no-dashboard"], cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_scheduler(self):
        os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()

    def stop(self):
        for process in [self.scheduler, *self.workers]:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


@pytest.fixture(scope="module")
def dask_cluster():
    started = LocalDaskCluster(workers=2)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory):
    """A length whose runs take a second or so an epoch: long enough to be stopped part-way."""
    folder = tmp_path_factory.mktemp("slow_data")
    data.write_data_set(str(folder), 30, {"train": 1500, "dev": 50, "test": 50}, seed=0)
    return str(folder)


def records(results_dir):
    return {os.path.basename(path): json.load(open(path))
            for path in sorted(glob.glob(os.path.join(results_dir, "runs", "*.json")))}


def epochs_reported(address, key):
    """The epochs the workers reported for one run, in order (a run resumed from its
    checkpoint goes on counting; a run started over would count from 1 again)."""
    with Client(address, set_as_default=False) as client:
        return [event[1] for _, event in client.get_events(cluster.PROGRESS_TOPIC)
                if event[0] == key]


def grid_argv(data_dir, results_dir, *extra):
    return ["--data-dir", data_dir, "--results-dir", results_dir, *extra]


def test_a_grid_on_dask_writes_the_records_of_the_local_pool(dask_cluster, tiny_data, tmp_path):
    argv = ["--models", "simple_rnn", "lstm", "alarmwork", "--lengths", "7", "--seeds", "2",
            "--epochs", "2"]
    train_rnn.main(argv + grid_argv(tiny_data, str(tmp_path / "local"), "--jobs", "1"))
    train_rnn.main(argv + grid_argv(tiny_data, str(tmp_path / "dask"),
                                    "--scheduler", dask_cluster.address))
    local, on_dask = records(str(tmp_path / "local")), records(str(tmp_path / "dask"))
    assert len(local) == 6 and list(local) == list(on_dask)
    for name, record in local.items():
        for field in ("config", "status", "epochs_run", "dev_accuracy", "test_accuracy", "history"):
            assert on_dask[name][field] == record[field], (name, field)
    assert not glob.glob(str(tmp_path / "dask" / "runs" / "*.ckpt"))


def test_a_worker_killed_mid_run_costs_only_its_epoch(dask_cluster, slow_data, tmp_path):
    config_argv = ["--models", "lstm", "--lengths", "30", "--seed", "7", "--epochs", "5"]
    results = str(tmp_path / "dask")
    killed = []

    def kill_the_worker_of_the_run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not glob.glob(os.path.join(results, "runs", "*.ckpt")):
            time.sleep(0.1)
        with Client(dask_cluster.address, set_as_default=False) as client:
            busy = [address for address, keys in client.processing().items() if keys]
            pid = client.run(os.getpid, workers=busy)[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker_of_the_run)
    killer.start()
    train_rnn.main(config_argv + grid_argv(slow_data, results, "--scheduler", dask_cluster.address))
    killer.join()
    assert killed
    train_rnn.main(config_argv + grid_argv(slow_data, str(tmp_path / "local"), "--jobs", "1"))
    (name, record), = records(results).items()
    uninterrupted = records(str(tmp_path / "local"))[name]
    assert record["history"] == uninterrupted["history"]
    assert record["test_accuracy"] == uninterrupted["test_accuracy"]
    reported = epochs_reported(dask_cluster.address, name[:-len(".json")])
    assert reported == sorted(set(reported)) and reported[-1] == 5, reported   # resumed, not restarted


def test_a_record_that_cannot_be_saved_ends_the_command_in_one_line(dask_cluster, tiny_data,
                                                                    tmp_path, monkeypatch):
    saved, save_record = [], grid.save_record

    def save_until_the_disk_is_full(results_dir, record):
        if saved:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                          os.path.join(results_dir, "runs"))
        saved.append(save_record(results_dir, record))

    monkeypatch.setattr(grid, "save_record", save_until_the_disk_is_full)
    with pytest.raises(SystemExit) as stop:
        train_rnn.main(["--models", "lstm", "simple_rnn", "--lengths", "4", "--seed", "0",
                        "--epochs", "1", *grid_argv(tiny_data, str(tmp_path),
                                                    "--scheduler", dask_cluster.address)])
    message = str(stop.value)
    assert message.startswith("error: ") and "\n" not in message, message
    assert f"No space left on device: '{tmp_path}/runs'" in message
    assert len(saved) == len(records(str(tmp_path))) == 1


def run_command(argv):
    return subprocess.Popen([sys.executable, "train_rnn.py", *argv], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def last_line(output):
    return [line for line in output.splitlines() if line.strip()][-1]


def test_a_lost_scheduler_ends_the_command_in_one_line_and_the_same_command_goes_on(slow_data,
                                                                                  tmp_path, capsys):
    port = free_port()
    results = str(tmp_path / "res")
    argv = ["--models", "lstm", "simple_rnn", "--lengths", "30", "--seeds", "2", "--epochs", "4",
            *grid_argv(slow_data, results, "--scheduler", f"tcp://{HOST}:{port}")]
    first = LocalDaskCluster(workers=1, port=port)
    try:
        process = run_command(argv)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not records(results):
            time.sleep(0.1)
        finished = records(results)
        first.kill_scheduler()
        output, _ = process.communicate(timeout=120)
    finally:
        first.stop()
    assert process.returncode == 1 and len(finished) == 1, output
    # one error line; a progress bar's last redraw may land after it in the merged output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert errors[0].startswith(f"error: lost the Dask scheduler at tcp://{HOST}:{port}"), output
    assert "Traceback" not in output
    kept = os.path.getmtime(glob.glob(os.path.join(results, "runs", "*.json"))[0])
    second = LocalDaskCluster(workers=2, port=port)
    try:
        train_rnn.main(argv)                      # the same command, in this process
    finally:
        second.stop()
    assert "skipping 1 finished run(s)" in capsys.readouterr().out
    assert len(records(results)) == 4
    assert os.path.getmtime(os.path.join(results, "runs", next(iter(finished)))) == kept


def test_ctrl_c_on_the_client_stops_the_grid_and_its_runs(dask_cluster, slow_data, tmp_path):
    results = str(tmp_path / "res")
    process = run_command(["--models", "lstm", "--lengths", "30", "--seeds", "2", "--epochs", "20",
                           *grid_argv(slow_data, results, "--scheduler", dask_cluster.address)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not glob.glob(os.path.join(results, "runs", "*.ckpt")):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert last_line(output) == (f"interrupted: 0 of 2 run(s) are saved in {results}/runs; "
                                 "run the same command again to go on")
    assert "Traceback" not in output
    with Client(dask_cluster.address, set_as_default=False) as client:   # the workers stop too,
        deadline = time.monotonic() + 30                                  # after their epoch
        while time.monotonic() < deadline and any(client.processing().values()):
            time.sleep(0.2)
        assert not any(client.processing().values())


def test_an_unreachable_scheduler_is_one_line(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    address = f"tcp://{HOST}:{free_port()}"
    with pytest.raises(SystemExit) as stop:
        train_rnn.main(["--models", "lstm", "--lengths", "4", "--seed", "0", "--epochs", "1",
                        *grid_argv(tiny_data, str(tmp_path), "--scheduler", address)])
    assert str(stop.value).startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert "\n" not in str(stop.value).strip()


@pytest.mark.parametrize("flags, message", [
    (["--tls-ca-file", "ca.pem"], "error: --tls-ca-file, --tls-cert and --tls-key go with --scheduler"),
    (["--scheduler", "tls://127.0.0.1:1"],
     "error: a tls:// scheduler needs --tls-ca-file, --tls-cert and --tls-key"),
    (["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", __file__],
     "error: TLS needs all of --tls-ca-file, --tls-cert and --tls-key"),
    (["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", "absent.pem", "--tls-cert", __file__,
      "--tls-key", __file__], "error: absent.pem: no such file"),
])
def test_tls_flags_are_checked_before_any_training(tiny_data, tmp_path, flags, message):
    with pytest.raises(SystemExit) as stop:
        train_rnn.main(["--models", "lstm", "--lengths", "4", "--seed", "0", "--epochs", "1",
                        *grid_argv(tiny_data, str(tmp_path)), *flags])
    assert str(stop.value) == message
    assert not os.path.exists(tmp_path / "runs") or not os.listdir(tmp_path / "runs")


def test_where_a_study_trained_is_not_part_of_its_command():
    argv = ["--models", "lstm", "--scheduler", "tls://10.0.0.5:8786", "--tls-ca-file=ca.pem",
            "--tls-cert", "c.pem", "--tls-key", "k.pem", "--jobs", "4", "--lengths", "10"]
    assert study_command("studies.reach", argv) == "python -m studies.reach --models lstm --lengths 10"


def test_the_line_of_runs_in_flight():
    config = configs.run_config("lstm", 5000, 3, data.generator_options(5000, data.DEFAULT_SIZES, 2021),
                                "integrator")
    job = (config, "data", "results")
    key = grid.run_key(config)
    assert cluster.describe_in_flight([job], {key: 24}).endswith("L=5000 seed=3 epoch 24/50")
    assert cluster.describe_in_flight([], {}) == ""


def test_a_grid_with_nothing_to_train_needs_no_scheduler(tiny_data, tmp_path, monkeypatch):
    argv = ["--models", "lstm", "--lengths", "4", "--seed", "0", "--epochs", "1",
            *grid_argv(tiny_data, str(tmp_path))]
    train_rnn.main(argv + ["--jobs", "1"])
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    train_rnn.main(argv + ["--scheduler", f"tcp://{HOST}:{free_port()}"])   # no one listens there
    assert len(records(str(tmp_path))) == 1

"""Claims on runs: of the commands that share a results folder, one trains a run at a time.

A command claims a run before the run trains, with a lock file beside its checkpoint
(runs/<key>.lock), made with O_CREAT | O_EXCL so that one command alone can make it. The lock
names its holder: the host, the process id and the process's start time. It goes when the
holder has saved the record, or ends without it (Ctrl-C, an error). What a command does with
a run another one holds (train its other runs, wait, take the record) is experiment/grid.py's.

A holder that died with its lock in place (killed, its machine lost) is recognized, and its
lock taken over. On its own host: its process is gone, or its process id now names another
process (one started at another time). From another host, whose processes cannot be seen:
the lock has not been refreshed for STALE_SECONDS; a holder refreshes its locks every
REFRESH_SECONDS, from a thread of its own, however long an epoch takes. A holder that stalls
longer than that (a suspended machine) may find its run trained twice: the record is the same,
only the time is lost.
"""
import contextlib
import json
import os
import socket
import threading
import time
import uuid

REFRESH_SECONDS = 60
# ten missed refreshes: a holder on a loaded machine, or a file server whose clock is a few
# minutes off this host's, is not taken for dead
STALE_SECONDS = 600
WAIT_SECONDS = 0.5             # how often a command waiting for a run looks at its lock

HOST = socket.gethostname()


def process_start(pid):
    """When process `pid` of this host started (clock ticks since boot), or None where it does
    not run (absent, or a zombie: ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()     # the name before ')' may hold spaces
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def read_lock(path):
    """(text, holder, seconds since its last refresh) of the lock at `path`, or None where there
    is none. holder: the dict the lock holds, or None while it is being written (or unreadable)."""
    try:
        with open(path) as f:
            text = f.read()
            age = time.time() - os.fstat(f.fileno()).st_mtime
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
        holder = holder if isinstance(holder, dict) and {"host", "pid"} <= holder.keys() else None
    except ValueError:
        holder = None
    return text, holder, age


def gone(holder, age):
    """Whether the holder of a lock refreshed `age` seconds ago has ended."""
    if holder is not None and holder["host"] == HOST:
        started = process_start(holder["pid"])
        return started is None or holder.get("started") not in (None, started)
    return age > STALE_SECONDS


def describe(holder):
    """'pid 4242 on host node7': who holds a run, for the line that says a command waits."""
    if holder is None:
        return "another command"
    return f"pid {holder['pid']} on host {holder['host']}"


class Claims:
    """The runs this process holds, each by its lock file; a thread refreshes them until the
    claims are closed (a `with` block), which lets every one go."""

    def __init__(self):
        self.held = {}                 # lock path -> the text this process wrote there
        self.guard = threading.Lock()
        self.closing = threading.Event()
        self.refresher = threading.Thread(target=self.refresh_until_closed, daemon=True)
        self.refresher.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def claim(self, path):
        """(True, the dead holder whose lock was taken over, or None) once this process holds
        `path`; (False, its holder's dict or None) while another command holds it."""
        started = process_start(os.getpid())
        text = json.dumps({"host": HOST, "pid": os.getpid(), "started": started,
                           "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                           "claim": uuid.uuid4().hex})
        taken_from = None
        while True:
            if create(path, text):
                with self.guard:
                    self.held[path] = text
                return True, taken_from
            found = read_lock(path)
            if found is None:                          # let go of meanwhile: try again
                continue
            theirs, holder, age = found
            if not gone(holder, age):
                return False, holder
            remove_if_unchanged(path, theirs)
            taken_from = holder

    def release(self, path):
        """Let the run go: remove its lock, if it is still this process's."""
        with self.guard:
            text = self.held.pop(path, None)
        if text is not None:
            remove_if_unchanged(path, text)

    def close(self):
        self.closing.set()
        self.refresher.join()
        for path in list(self.held):
            self.release(path)

    def refresh_until_closed(self):
        while not self.closing.wait(REFRESH_SECONDS):
            with self.guard:
                held = list(self.held.items())
            for path, text in held:
                found = read_lock(path)
                if found is not None and found[0] == text:
                    with contextlib.suppress(OSError):   # a file server's hiccup: next time
                        os.utime(path)


def create(path, text):
    """Make the lock at `path` holding `text`; False where it exists already."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def remove_if_unchanged(path, text):
    """Remove the lock at `path` if it still holds `text`. It is first moved to a name of this
    process's, so that a lock another command has made there meanwhile is seen, and put back,
    instead of removed."""
    aside = f"{path}.{uuid.uuid4().hex[:12]}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    found = read_lock(aside)
    if found is not None and found[0] != text:
        os.rename(aside, path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(aside)

"""Write a file under a temporary name in the same folder, then rename it into place.

A rename within one folder is atomic, so a reader sees the old file or the whole new
one, never a half-written file, even when the writer is killed part-way. The new file is
flushed to disk before the rename, and the folder after it, so that a power cut leaves the
old file or the new one, not an empty one. It gets the mode any new file gets under the
umask (0644 under umask 022): others who share a results folder read its records.
"""
import errno
import os
import uuid


def atomic_write(path, write, binary=False):
    """Call `write(file_object)` on a temporary file, then rename it to `path`."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp_path = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:12]}-{os.path.basename(path)}")
    # not tempfile.mkstemp, whose files are 0600 whatever the umask
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise
    sync_folder(directory)


def sync_folder(directory):
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno != errno.EINVAL:      # a file system that cannot sync a folder: the
            raise                            # rename is done, only not yet flushed
    finally:
        os.close(fd)


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text))


def check_writable(folder, shown=None, flag="--results-dir"):
    """End the command with one line now, not after hours of work, when files cannot be
    written in `folder` (made if missing). `shown` is the folder the line names (default:
    `folder`), `flag` the option that chooses another."""
    # a name of its own: commands that check one folder at once must not remove each other's
    probe = os.path.join(folder, f".write-check-{uuid.uuid4().hex[:12]}")
    try:
        atomic_write_text(probe, "ok\n")
        os.remove(probe)
    except OSError as error:
        raise SystemExit(f"error: cannot write results to '{shown or folder}' ({error.strerror}); "
                         f"choose another folder with {flag}") from None

"""Write a file under a temporary name in the same folder, then rename it into place.

A rename within one folder is atomic, so a reader sees the old file or the whole new
one, never a half-written file, even when the writer is killed part-way.
"""
import os
import tempfile


def atomic_write(path, write, binary=False):
    """Call `write(file_object)` on a temporary file, then rename it to `path`."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text))


def check_writable(folder, shown=None, flag="--results-dir"):
    """End the command with one line now, not after hours of work, when files cannot be
    written in `folder` (made if missing). `shown` is the folder the line names (default:
    `folder`), `flag` the option that chooses another."""
    probe = os.path.join(folder, ".write-check")
    try:
        atomic_write_text(probe, "ok\n")
        os.remove(probe)
    except OSError as error:
        raise SystemExit(f"error: cannot write results to '{shown or folder}' ({error.strerror}); "
                         f"choose another folder with {flag}") from None

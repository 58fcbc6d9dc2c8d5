"""Crash-safe file writing: write beside the target under a temporary name, then rename.

A reader (or a server polling a directory) therefore sees either the old file or the
whole new one, never a truncated file.
"""

import contextlib
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary file name beside ``path``; renames it onto ``path`` on success
    (with the usual ``0o666 & ~umask`` permissions) and removes it on failure."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text):
    """Writes UTF-8 ``text`` to ``path`` atomically."""
    with atomic_path(path, suffix=os.path.basename(os.fspath(path))) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def save_atomic(save, path, suffix):
    """Calls ``save(tmp)`` on a temporary name beside ``path``, then renames it to ``path``."""
    with atomic_path(path, suffix) as tmp:
        save(tmp)

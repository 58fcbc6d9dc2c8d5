"""TF Serving's model base path layout: ``base_path/<integer version>/``, written so that
a server polling ``base_path`` never sees a partial version."""

import contextlib
import os
import re
import shutil
import tempfile


def existing_versions(base_path):
    """Integer version directories in ``base_path`` (what TF Serving would load), sorted."""
    if not os.path.isdir(base_path):
        return []
    return sorted(int(n) for n in os.listdir(base_path)
                  if re.fullmatch(r"\d+", n) and os.path.isdir(os.path.join(base_path, n)))


def choose_version(base_path, version=None):
    """``version``, checked to be new in ``base_path``, or (``None``) one more than the
    largest there (1 if none); an existing version is never overwritten."""
    versions = existing_versions(base_path)
    if version is None:
        return versions[-1] + 1 if versions else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"`version` must be a non-negative integer, got {version!r}")
    if os.path.exists(os.path.join(base_path, str(version))):
        raise FileExistsError(
            f"version {version} already exists in {base_path}; refusing to overwrite it "
            f"(existing versions: {versions}; pass version=None for the next one)")
    return version


@contextlib.contextmanager
def new_version_dir(base_path, version=None):
    """Yields ``(temporary directory, version)``: write the SavedModel there; on success it
    is renamed to ``base_path/<version>`` (atomic on one file system), on failure removed."""
    base_path = os.fspath(base_path)
    os.makedirs(base_path, exist_ok=True)
    version = choose_version(base_path, version)
    final = os.path.join(base_path, str(version))
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=base_path)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a server may run as another user
        yield tmp, version
        if os.path.exists(final):
            raise FileExistsError(f"version {version} appeared in {base_path} during export")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

import os
import stat

import pytest

from tfseq2seq.util.files import atomic_path, write_text_atomic


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "é\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    assert os.listdir(tmp_path) == ["a.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, ".bin") as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.bin"]

"""Files the project writes get the mode ``open()`` would give them (0666 minus the umask),
not mkstemp's 0600: datasets, checkpoints and weight caches live on shared servers."""

from __future__ import annotations

import os
import stat

from codecfake_build.atomic import FILE_MODE, atomic_write_bytes, atomic_write_json
from codecfake_build.codecs.weights import download


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_get_the_umask_mode_and_leave_no_temp(tmp_path):
    assert FILE_MODE == 0o666 & ~_umask()
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
    assert _mode(tmp_path / "a.bin") == FILE_MODE == _mode(tmp_path / "sub" / "b.json")
    assert FILE_MODE & stat.S_IRGRP or _umask() & stat.S_IRGRP  # group-readable unless the umask says no
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.json", "sub"]


def test_downloaded_weights_get_the_same_mode(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights")
    dest = download(src.as_uri(), tmp_path / "cache" / "model.bin")
    assert dest.read_bytes() == b"weights" and _mode(dest) == FILE_MODE


def test_remove_killed_writes_takes_only_atomic_paths_temp_files(tmp_path):
    from codecfake_build.atomic import atomic_path, remove_killed_writes

    (tmp_path / "sub").mkdir()
    (tmp_path / ".notes.tmp").write_text("a user's file")  # not an atomic_path name: kept
    # A write in progress stands for one a kill -9 interrupted: its temp file has the same name.
    with atomic_path(tmp_path / "sub" / "x.json") as tmp:
        tmp.write_text("{}")
        assert remove_killed_writes(tmp_path) == []  # not recursive: sub/ is left alone
        assert remove_killed_writes(tmp_path, recursive=True) == [tmp]
        tmp.write_text("{}")  # let atomic_path finish its rename
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".notes.tmp", "sub", "x.json"]

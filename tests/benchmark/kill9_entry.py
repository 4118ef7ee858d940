"""Subprocess entry for the kill -9 tests: ``python -m tests.benchmark.kill9_entry <benchmark CLI args>``.

It registers the tiny test detector, then runs ``benchmark.cli.main`` unchanged.  Two
environment variables make the process SIGKILL *itself* at an exact point, which a timer
from outside only hits by luck:

``KILL9_AT=NAME:N[:torn]``
    just before the N-th atomic rename onto a file called NAME (every file the project
    writes goes through ``codecfake_build.atomic``: temp file, fsync, ``os.replace``); with
    ``torn`` the temp file is first cut to half its size, as if the kill landed in the middle
    of ``torch.save`` / the JSON dump.
``KILL9_RECIPES=DIR``
    ``run all`` reads its recipes from DIR instead of configs/recipes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.benchmark.test_training import TINY  # registers the tiny detector

__all__ = ["TINY"]


def _arm(spec: str) -> None:
    name, count, *mode = spec.split(":")
    left = [int(count)]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            left[0] -= 1
            if left[0] == 0:
                if mode == ["torn"]:
                    os.truncate(src, os.path.getsize(src) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace


def _recipes_from(folder: str) -> None:
    from benchmark.matrix import Matrix

    load = Matrix.load.__func__

    def load_with_recipes(cls, path, recipe_dir=None, **kwargs):
        return load(cls, path, recipe_dir=Path(folder), **kwargs)

    Matrix.load = classmethod(load_with_recipes)


if __name__ == "__main__":
    if os.environ.get("KILL9_AT"):
        _arm(os.environ["KILL9_AT"])
    if os.environ.get("KILL9_RECIPES"):
        _recipes_from(os.environ["KILL9_RECIPES"])
    from benchmark.cli import main

    sys.exit(main(sys.argv[1:]))

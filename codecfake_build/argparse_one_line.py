"""The argument parser both CLIs use (``python -m codecfake_build``, ``python -m benchmark``);
a module of its own so importing it costs nothing."""

from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    """A bad flag value is one line (the usage block of plain argparse buries the reason)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}. Fix: see {self.prog} --help\n")

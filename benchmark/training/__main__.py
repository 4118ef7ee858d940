"""``python -m benchmark.training CONFIG.yaml``: train one detector from a YAML config."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from benchmark.data import DataError
from benchmark.training.config import ConfigError
from benchmark.training.loop import DistEnv, TrainingError, train
from codecfake_build.audio import AudioError
from codecfake_build.registry import UnknownNameError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.training", description=__doc__)
    parser.add_argument("config", help="training YAML (see benchmark.training.config.TrainConfig)")
    parser.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run in out_dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        summary = train(args.config, resume=not args.no_resume, progress=not args.quiet)
    # Expected, user-fixable problems are one line on stderr, not a traceback.
    except (ConfigError, DataError, TrainingError, AudioError, UnknownNameError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if DistEnv.from_env().main:  # under torchrun only rank 0 reports
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

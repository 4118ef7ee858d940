"""Logging set-up shared by the command-line tools (``python -m codecfake_build``, ``python -m
benchmark``): one line per message, printed once."""

from __future__ import annotations

import logging

#: Libraries that attach their own stderr handler to their root logger *and* let records
#: propagate (huggingface_hub 2.x, datasets 5.x): with our root handler every one of their
#: warnings (e.g. each download retry when offline) would print twice.  Their own handler stays.
SELF_HANDLING_LIBRARIES = ("huggingface_hub", "datasets")


def configure_cli_logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    for name in SELF_HANDLING_LIBRARIES:
        # Set before the library is imported too: it adds its handler but leaves propagate alone.
        logging.getLogger(name).propagate = False

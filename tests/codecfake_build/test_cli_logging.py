"""The CLIs print each library warning once: huggingface_hub and datasets attach their own
stderr handler and also propagate to the root handler the CLIs install, so every offline
download retry used to appear twice ('Retrying in 8s' and 'WARNING Retrying in 8s')."""

from __future__ import annotations

import logging
import subprocess
import sys

CHILD = """
import logging
from codecfake_build.cli_logging import configure_cli_logging
configure_cli_logging(logging.WARNING)
import huggingface_hub, datasets  # noqa: F401  (imported after, as in a build: their handlers attach now)
logging.getLogger("huggingface_hub.utils._http").warning("hub says once")
logging.getLogger("datasets.builder").warning("datasets says once")
logging.getLogger("codecfake_build.build").warning("ours says once")
"""


def test_each_warning_prints_once():
    # A fresh interpreter: pytest's own root handlers would hide a duplicate.
    err = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stderr
    for text in ("hub says once", "datasets says once", "ours says once"):
        assert err.count(text) == 1, err
    assert "WARNING ours says once" in err


def test_library_loggers_stop_propagating_only_for_self_handling_libraries():
    from codecfake_build.cli_logging import SELF_HANDLING_LIBRARIES

    assert set(SELF_HANDLING_LIBRARIES) == {"huggingface_hub", "datasets"}
    assert logging.getLogger("codecfake_build").propagate

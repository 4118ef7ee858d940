"""Resuming a finished run with fewer optim.epochs than it already trained used to train
nothing, rewrite config.yaml with the lower count and report a model trained for N epochs as
an M < N one (the demo's run JSONs copy that config).  It is refused in one line now; the same
or a higher count resumes as before."""

from __future__ import annotations

import pytest
import yaml

from benchmark.training import TrainingError, train
from tests.benchmark.test_training import make_config  # also registers its tiny detector




def test_fewer_epochs_than_done_is_refused_and_config_kept(built, cache, tmp_path):
    out = tmp_path / "run"
    assert train(make_config(built, cache, out, epochs=2), progress=False)["epochs_completed"] == 2
    with pytest.raises(TrainingError) as err:
        train(make_config(built, cache, out, epochs=1), progress=False)
    line = str(err.value)
    assert "\n" not in line and "2 epochs done" in line and "optim.epochs 1" in line and "Fix:" in line
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["epochs"] == 2
    # the same count is a finished run (nothing to do), a higher one extends it
    assert train(make_config(built, cache, out, epochs=2), progress=False)["epochs_completed"] == 2
    assert train(make_config(built, cache, out, epochs=3), progress=False)["epochs_completed"] == 3

"""The trainer on each device under ``amp: bf16`` and ``amp: fp16`` (autocast, plus a
GradScaler for fp16): two epochs train with finite losses, the dev set is scored and written,
and a run stopped after epoch 1 and resumed ends with the same weights as the straight run.

On a CPU the amp setting is ignored with a warning (the trainer uses AMP only on CUDA), so the
CPU variant checks that warning and the same resume promise in float32.

Resume tolerance: bitwise (``torch.equal``), as the CPU resume test.  With
``deterministic: true`` both runs launch the same kernels on the same inputs in the same
order, and the checkpoint holds every piece of state AMP adds (the GradScaler's scale and
growth tracker, the CUDA RNG), so nothing justifies a looser bound; a difference means
state is lost on resume.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from benchmark.evaluate import read_scores, write_scores
from benchmark.data import BuiltDataset, make_loader
from benchmark.models import create_model, load_weights
from benchmark.training import score_loader, train
from tests.benchmark.test_training import TINY, make_config  # noqa: F401 - registers the tiny model
from tests.gpu.conftest import DEVICES, record


class Crash(Exception):
    pass




def _config(built, cache, out, device: str, amp: str):
    cfg = make_config(built, cache, out, epochs=2, scheduler="cosine")
    cfg.device, cfg.amp, cfg.deterministic = device, amp, True
    return cfg


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_two_amp_epochs_score_and_resume_exactly(built, cache, tmp_path, device, amp, caplog):
    straight = tmp_path / "straight"
    with caplog.at_level("WARNING"):
        summary = train(_config(built, cache, straight, device, amp), progress=False)
    if device == "cpu":
        assert summary["amp"] is False and "only used on CUDA" in caplog.text
    else:
        assert summary["amp"] == amp and summary["device"].startswith("cuda")
    rows = list(csv.DictReader((straight / "train_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("train_loss", "dev_loss", "dev_eer"))
    last = torch.load(straight / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    # fp16 on CUDA keeps a GradScaler, whose state must be in the checkpoint for resume.
    assert (last["scaler"] is not None) == (device == "cuda" and amp == "fp16")

    # Scores of the dev split under the same autocast, written and read back.
    model = create_model(TINY, channels=8)
    load_weights(model, straight / "checkpoints" / "best.pt")
    model.to(device)
    dev = BuiltDataset(built, "validation", cache_dir=str(cache))
    loader = make_loader(dev, batch_size=8, train=False, num_samples=model.num_samples)
    names, scores = score_loader(model, loader, device, amp=device == "cuda", amp_dtype=amp)
    write_scores(tmp_path / "scores.tsv", names, scores)
    back_names, back = read_scores(tmp_path / "scores.tsv")
    assert len(back_names) == 16 and np.isfinite(back).all()
    np.testing.assert_allclose(back, scores, rtol=1e-6, atol=1e-6)  # the file's printed precision

    # Stop after epoch 1, resume in a fresh RNG state: the same weights as the straight run.
    crashed = tmp_path / "crashed"

    def crash_after_first(row):
        if row["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        train(_config(built, cache, crashed, device, amp), progress=False, on_epoch_end=crash_after_first)
    torch.manual_seed(999)
    np.random.seed(999)
    resumed = train(_config(built, cache, crashed, device, amp), progress=False)
    assert resumed["epochs_completed"] == 2
    a, b = _weights(straight / "checkpoints" / "last.pt"), _weights(crashed / "checkpoints" / "last.pt")
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    record("training_resume", device, amp=summary["amp"], max_abs_weight_diff=diff,
           losses=[float(r["train_loss"]) for r in rows])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        f"resumed weights differ from the straight run by up to {diff:.3g} on {device} (amp {amp})"

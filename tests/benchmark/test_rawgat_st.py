"""rawgat-st: parameter count, official checkpoint, parity with the official model.

Reference logits come from the official eurecom-asp/RawGAT-ST-antispoofing code
(see tests/fixtures/rawgat_st_reference/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.models import create_model, load_weights
from codecfake_build.audio import load_audio, tile_to_length
from tests.conftest import SHARED, requires_shared

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "rawgat_st_reference" / "rawgat-st.json"
WEIGHTS = SHARED / "weights" / "rawgat_st" / "RawGAT_ST_mul_Best_epoch.pth"


def test_parameter_count_and_no_stored_sinc_filters():
    model = create_model("rawgat-st")
    assert sum(p.numel() for p in model.parameters()) == 440_810
    assert not any(k.startswith("conv_time") for k in model.state_dict())
    # node counts the official projections are sized for (64,600 samples)
    assert (model.proj1.in_features, model.proj2.in_features, model.proj_node.in_features) == (14, 23, 7)


def test_wrong_length_is_one_actionable_line():
    with pytest.raises(ValueError, match="exactly 64600 samples.*Fix:"):
        create_model("rawgat-st")(torch.zeros(1, 16000))


def test_bad_option_names_valid_ones():
    with pytest.raises(TypeError, match="Valid options: out_channels"):
        create_model("rawgat-st", gat_dim=(1, 2))


def test_frequency_mask_only_in_training():
    # A full training step costs ~20 s on one core, so check the augmentation at the sinc layer.
    model = create_model("rawgat-st")
    wave = torch.randn(1, 4000)
    torch.manual_seed(3)
    masked = model.train()._sinc(wave)
    zeroed = (masked.abs().amax(dim=-1) == 0)[0]
    assert 0 < int(zeroed.sum()) <= 13 and zeroed.nonzero().flatten().diff().eq(1).all()  # one adjacent run
    assert (model.eval()._sinc(wave).abs().amax(dim=-1) > 0).all()
    assert not create_model("rawgat-st", freq_mask=False).train()._sinc(wave).abs().amax(dim=-1).eq(0).any()


@pytest.fixture(scope="module")
def official():
    if not SHARED.is_dir():
        pytest.skip("../shared not present")
    return json.loads(FIXTURE.read_text()), load_weights(create_model("rawgat-st"), WEIGHTS).eval()


@requires_shared
def test_state_dict_keys_and_shapes_match_checkpoint():
    ckpt = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    ours = create_model("rawgat-st").state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ckpt.items()}


def test_matches_official_logits_on_seeded_random_input(official):
    ref, model = official
    wave = 0.1 * torch.randn(2, 64600, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # eval mode is per-sample, so the first row alone keeps the test fast
        ours = model(wave[:1]).double()
    expected = torch.tensor(ref["random_input"]["logits"][:1], dtype=torch.float64)
    diff = (ours - expected).abs().max().item()
    assert diff < 1e-4, f"rawgat-st differs from the official model by {diff:.2e} on the seeded input"


def test_matches_official_logits_on_real_clips(official):
    ref, model = official
    # One bona fide and one spoof clip of the six (each forward is ~5 s on one core).
    clips = [c for c in ref["clips"] if c["path"].endswith(("LJ001-0002.wav", "hifigan.wav"))]
    waves = [tile_to_length(load_audio(SHARED / c["path"], 16000)[0], 64600) for c in clips]
    with torch.no_grad():  # one clip per forward: a batch of two costs more than two single clips on CPU
        ours = torch.cat([model(torch.from_numpy(w)[None]) for w in waves]).double()
    expected = torch.tensor([c["logits"] for c in clips], dtype=torch.float64)
    diff = (ours - expected).abs().max().item()
    print(f"\nrawgat-st: max |ours - official| = {diff:.2e}")
    assert diff < 1e-4, f"rawgat-st differs from the official model by {diff:.2e}"

"""FD-ADD's comparison set: wav2clip, w2v2-base-ft / wavlm-base-ft, rawnet2-voc (tiny configs)."""

from __future__ import annotations

import pytest
import torch

from benchmark.models import create_model
from benchmark.models.wav2clip import (
    Wav2CLIPWeightsError,
    find_wav2clip_checkpoint,
    wav2clip_audio_encoder_state,
)

TINY_WIDTHS = (8, 16, 32, 64)


def _official_wav2clip_checkpoint(path, widths=TINY_WIDTHS, seed=0):
    """A file laid out as the released Wav2CLIP.pt: a flat state dict with ``audio_encoder.*``
    (ResNet18 without fc, plus torchaudio's ``spectrogram.window``) and ``audio_transform.*``
    (the 512-512-512 MLP: Linear at sequential.0 and sequential.3)."""
    torch.manual_seed(seed)
    encoder = create_model("wav2clip", pretrained=False, widths=widths)
    for name, buf in encoder.named_buffers():
        if name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
        elif name.endswith("running_mean"):
            buf.normal_(0, 0.1)
    state = {f"audio_encoder.{k}": v.clone() for k, v in encoder.state_dict().items() if not k.startswith("fc.")}
    state["audio_encoder.spectrogram.window"] = torch.hann_window(512)
    dim = widths[-1]
    for i in (0, 3):
        state[f"audio_transform.sequential.{i}.weight"] = torch.randn(dim, dim)
        state[f"audio_transform.sequential.{i}.bias"] = torch.randn(dim)
    torch.save(state, path)
    return state


def test_wav2clip_state_maps_official_keys_to_resnet18(tmp_path):
    ckpt = tmp_path / "Wav2CLIP.pt"
    official = _official_wav2clip_checkpoint(ckpt, widths=(64, 128, 256, 512))
    state = wav2clip_audio_encoder_state(ckpt)
    ours = create_model("resnet18-spec").state_dict()
    assert set(state) == {k for k in ours if not k.startswith("fc.")}
    assert "layer2.0.downsample.0.weight" in state and "layer4.1.bn2.running_var" in state
    assert torch.equal(state["layer3.1.conv2.weight"], official["audio_encoder.layer3.1.conv2.weight"])
    # The ResNet18 encoder loads into resnet18-spec with only the head left to train.
    missing, unexpected = create_model("resnet18-spec").load_state_dict(state, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected


def test_wav2clip_detector_uses_the_encoder_weights(tmp_path):
    ckpt = tmp_path / "Wav2CLIP.pt"
    official = _official_wav2clip_checkpoint(ckpt)
    model = create_model("wav2clip", checkpoint=str(ckpt), widths=TINY_WIDTHS).eval()
    assert torch.equal(model.layer1[0].conv1.weight, official["audio_encoder.layer1.0.conv1.weight"])
    assert torch.equal(model.bn1.running_mean, official["audio_encoder.bn1.running_mean"])
    wave = torch.randn(2, 48000)
    with torch.no_grad():
        logits = model(wave)
        assert logits.shape == (2, 2)
        # Scores do not depend on the batch (per-example standardisation, not Wav2CLIP's batch-wide one).
        assert torch.allclose(model(wave[:1]), logits[:1], atol=1e-4)
    assert model.frontend.hop_length == 187


def test_wav2clip_weight_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    with pytest.raises(Wav2CLIPWeightsError, match=r"Wav2CLIP\.pt.*offline.*Fix: download https://github.com/"):
        find_wav2clip_checkpoint()
    with pytest.raises(Wav2CLIPWeightsError, match=r"nope\.pt: Wav2CLIP checkpoint not found\. Fix"):
        find_wav2clip_checkpoint(tmp_path / "nope.pt")
    cached = tmp_path / "cache" / "wav2clip" / "Wav2CLIP.pt"
    cached.parent.mkdir(parents=True)
    _official_wav2clip_checkpoint(cached)
    assert find_wav2clip_checkpoint() == cached
    create_model("wav2clip", widths=TINY_WIDTHS)  # found in the cache


def test_wav2clip_bad_checkpoints_give_one_line(tmp_path):
    bad = tmp_path / "other.pt"
    torch.save({"encoder.conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(Wav2CLIPWeightsError, match=r"other\.pt: no audio_encoder"):
        wav2clip_audio_encoder_state(bad)
    ckpt = tmp_path / "Wav2CLIP.pt"
    _official_wav2clip_checkpoint(ckpt)  # tiny widths
    with pytest.raises(Wav2CLIPWeightsError, match=r"does not fit this ResNet") as err:
        create_model("wav2clip", checkpoint=str(ckpt))  # full ResNet18
    assert "\n" not in str(err.value)

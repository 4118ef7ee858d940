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


# ---------------------------------------------------------------- w2v2-base-ft / wavlm-base-ft

@pytest.fixture(scope="module")
def tiny_ssl(tmp_path_factory):
    from tests.benchmark.test_ssl_frontend import make_tiny

    root = tmp_path_factory.mktemp("ssl")
    return {k: str(make_tiny(k, root / k)) for k in ("wav2vec2", "wavlm")}


@pytest.mark.parametrize("name,kind", [("w2v2-base-ft", "wav2vec2"), ("wavlm-base-ft", "wavlm")])
def test_ssl_finetune_is_mean_pooled_last_hidden_state(tiny_ssl, name, kind):
    from transformers import AutoModel

    model = create_model(name, ssl_model=tiny_ssl[kind]).eval()
    assert model.num_samples == 48000 and model.crop == "middle"
    wave = torch.randn(2, 48000)
    ref = AutoModel.from_pretrained(tiny_ssl[kind]).eval()
    with torch.no_grad():
        expected = ref(wave).last_hidden_state.mean(dim=1)  # raw waveform in, as FD-ADD
        assert torch.allclose(model.embed(wave), expected, atol=1e-5)
        assert torch.allclose(model(wave), model.fc(expected), atol=1e-5)
    # Every transformer layer is kept and trained; the CNN feature encoder stays frozen.
    assert len(model.frontend.ssl.encoder.layers) == ref.config.num_hidden_layers
    model.train()
    model.frontend.ssl.config.layerdrop = 0.0
    model(wave).sum().backward()
    assert model.frontend.ssl.encoder.layers[-1].feed_forward.output_dense.weight.grad is not None
    assert all(p.grad is None for p in model.frontend.ssl.feature_extractor.parameters())
    assert model.frontend_params() + model.backend_params() == sum(p.numel() for p in model.parameters())
    assert model.backend_params() == 2 * 32 + 2


def test_ssl_finetune_defaults_and_missing_weights(monkeypatch, tmp_path):
    from benchmark.frontends.ssl import SSLWeightsError
    from benchmark.models.ssl_finetune import WAVLM_BASE, W2V2_BASE, WavLMBaseFinetune, Wav2Vec2BaseFinetune

    assert (Wav2Vec2BaseFinetune.default_ssl, WavLMBaseFinetune.default_ssl) == (W2V2_BASE, WAVLM_BASE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SSLWeightsError) as err:
        create_model("w2v2-base-ft", ssl_model=str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(TypeError, match="Valid options: ssl_model"):
        create_model("wavlm-base-ft", layers=3)

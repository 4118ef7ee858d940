"""FD-ADD's comparison set: wav2clip, w2v2-base-ft / wavlm-base-ft, rawnet2-voc (tiny configs)."""

from __future__ import annotations

import numpy as np
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


# ---------------------------------------------------------------- rawnet2-voc

TINY_RAWNET = dict(sinc_filters=4, first_conv=64, filts=((4, 4), (4, 8), (8, 8)), gru_node=8, nb_fc_node=8,
                   nb_gru_layer=1)


def test_rawnet2_voc_transform_labels_and_cut():
    from benchmark.models.rawnet2_voc import VocoderLabel

    fn = VocoderLabel(100, ("hifigan", "melgan"))
    rng = np.random.default_rng(0)
    wave = np.arange(250, dtype=np.float32)
    cut, extras = fn(wave, rng, target=1, system="none")
    assert extras == {"vocoder": 0} and np.array_equal(cut, wave[:100])  # official: the first 4 s
    assert fn(wave, rng, target=0, system="melgan")[1] == {"vocoder": 2}
    short, _ = fn(wave[:40], rng, target=0, system="hifigan")
    assert np.array_equal(short[:80], np.tile(wave[:40], 2))  # repeated when short
    rand = VocoderLabel(100, ("hifigan",), random_crop=True)
    starts = {int(rand(wave, np.random.default_rng(s), target=0, system="hifigan")[0][0]) for s in range(8)}
    assert len(starts) > 1
    with pytest.raises(ValueError, match="spoof system 'wavegrad' is not among .*Fix: drop model.kwargs.systems"):
        fn(wave, rng, target=0, system="wavegrad")


def test_rawnet2_voc_heads_and_multitask_loss():
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = create_model("rawnet2-voc", systems=["a", "b", "c"], **TINY_RAWNET)
    assert model.own_loss and model.uses_systems and model.num_samples == 64000
    assert model.fc2_multi_gru.out_features == 4 and model.fc2_gru.out_features == 2
    wave = torch.randn(4, 4000)
    target = torch.tensor([1, 0, 0, 0])
    vocoder = torch.tensor([0, 1, 3, 2])
    model.train()
    loss, parts = model(wave, target=target, extras={"vocoder": vocoder})
    assert set(parts) == {"binary", "vocoder"} and not parts["binary"].requires_grad
    assert loss.item() == pytest.approx((parts["binary"] + parts["vocoder"]).item(), rel=1e-6)
    model.eval()
    with torch.no_grad():
        h = model.embed(wave)
        expected = 0.5 * F.cross_entropy(model.fc2_gru(model.fc1_gru(h)), target) + \
            0.5 * F.cross_entropy(model.fc2_multi_gru(model.fc1_multi_gru(h)), vocoder)
        loss, _ = model(wave, target=target, extras={"vocoder": vocoder})
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        # Scoring: the binary head's log-softmax, exactly RawNet2's output on the same trunk.
        out = model(wave)
        assert out.shape == (4, 2) and torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)
        assert torch.allclose(out, F.log_softmax(model.fc2_gru(model.fc1_gru(h)), dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="aux_lambda must be in"):
        create_model("rawnet2-voc", aux_lambda=1.5, **TINY_RAWNET)


def test_rawnet2_voc_trains_end_to_end(tmp_path, monkeypatch):
    import csv

    from benchmark.models.rawnet2_voc import RawNet2Voc
    from benchmark.training import TrainConfig, train
    from tests.benchmark.test_data import write_built_dataset

    monkeypatch.setattr(RawNet2Voc, "num_samples", 4000)
    built = write_built_dataset(tmp_path / "built", {"train": 16, "validation": 8})
    kwargs = {k: [list(v) for v in val] if k == "filts" else val for k, val in TINY_RAWNET.items()}
    cfg = TrainConfig.from_dict({
        "data": {"dataset": str(built), "cache_dir": str(tmp_path / "hf")},
        "model": {"name": "rawnet2-voc", "kwargs": kwargs},
        "optim": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "num_workers": 0},
        "seed": 3, "device": "cpu", "out_dir": str(tmp_path / "run")})
    summary = train(cfg, progress=False)
    systems = summary["model_kwargs"]["systems"]
    assert systems and "none" not in systems
    rows = list(csv.DictReader((tmp_path / "run/train_log.csv").open()))
    assert float(rows[0]["train_binary"]) + float(rows[0]["train_vocoder"]) == \
        pytest.approx(float(rows[0]["train_loss"]), rel=1e-5)


# ---------------------------------------------------------------- FD-ADD's ASVspoof 2021 DF task

def test_inner_dataset_21df_trains_on_progress_and_tests_on_eval(tmp_path):
    from benchmark.protocols import load_protocol, resolve
    from tests.benchmark.test_readers import write_audio, write_lines

    categories = ["traditional_vocoder", "waveform_concatenation", "neural_vocoder_autoregressive",
                  "neural_vocoder_nonautoregressive", "unknown"]
    rows = []
    for i in range(40):
        subset = "progress" if i < 25 else "eval"
        if i % 3 == 0:
            rows.append(f"LA_0001 DF_E_{i:07d} nocodec asvspoof bonafide bonafide notrim {subset} bonafide - - - -")
        else:
            rows.append(f"LA_0001 DF_E_{i:07d} nocodec asvspoof A{i:02d} spoof notrim {subset} {categories[i % 5]} - - - -")
    write_lines(tmp_path / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt", rows)
    for i, line in enumerate(rows):
        write_audio(tmp_path / "ASVspoof2021_DF_eval" / "flac" / f"{line.split()[1]}.flac", 16000, i)
    resolved = resolve(load_protocol("inner-dataset_21df"), {"asvspoof2021-df": str(tmp_path)}, seed=0)
    trained = resolved.train + resolved.dev
    assert {it.get("subset") for it in trained} == {"progress"}
    assert "unknown" not in {it.vocoder_category for it in trained}  # the unseen category
    assert len(resolved.dev) > 0 and len(resolved.train) > len(resolved.dev)
    (test,) = resolved.tests
    assert test.name == "21DF" and {it.get("subset") for it in test.items} == {"eval"} and len(test.items) == 15
    assert "unknown" in test.conditions()

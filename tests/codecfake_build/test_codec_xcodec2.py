"""xcodec2 through transformers: our Kaldi filterbank against the official feature
extractor (fixture), tiny random-weight checkpoints written by save_pretrained, weight
resolution and equal-length batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.cli import main as cli_main
from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.xcodec2 import Xcodec2Codec, semantic_features
from tests.codecfake_build.signals import harmonic_glide

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xcodec2_features" / "xcodec2_features.npz"
TINY = dict(semantic_model_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=16, output_hidden_size=16, conv_depthwise_kernel_size=3),
            hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, head_dim=16, encoder_hidden_size=4, quantization_dim=48)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("xcodec2") / "xcodec2-hf"
    torch.manual_seed(0)
    model = transformers.Xcodec2Model(transformers.Xcodec2Config(**TINY))
    with torch.no_grad():
        # transformers' init (std 0.02, zero biases) leaves the FSQ input near zero, so every
        # frame gets the middle code and the decoder (zero biases) returns silence; unit-gain
        # weights and small biases make codes and output depend on the audio.
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)):
                m.weight.normal_(0.0, m.weight[0].numel() ** -0.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
    model.save_pretrained(str(d))
    return d


def _speech(seconds: float) -> np.ndarray:
    return harmonic_glide(seconds)


def _check(out: list[np.ndarray], waves: list[np.ndarray]) -> None:
    assert len(out) == len(waves)
    for y, x in zip(out, waves):
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.all(np.isfinite(y)) and np.any(y != 0)


def test_features_match_the_official_extractor():
    ref = np.load(FIXTURE)
    for i in range(3):
        w = ref[f"wave{i}"]
        n = Xcodec2Codec._padded_length(None, len(w))  # type: ignore[arg-type]
        padded = np.zeros(n, np.float32)
        padded[: len(w)] = w
        np.testing.assert_array_equal(padded, ref[f"input_values{i}"][0, 0])
        feats = semantic_features(torch.from_numpy(padded)[None]).numpy()
        assert feats.shape == ref[f"input_features{i}"].shape == (1, n // 320, 160)
        np.testing.assert_allclose(feats, ref[f"input_features{i}"], atol=1e-4, rtol=0)


def test_loads_from_weights_dir_and_resynthesizes(ckpt, hub_cache):
    codec = create_codec("xcodec2", weights=str(ckpt))
    codec.load()
    x = _speech(0.4)
    waves = [x, x[:1234], x[:10]]  # the last is shorter than one frame
    _check(codec.resynthesize(waves, 16000), waves)


def test_loads_from_project_cache(ckpt, tmp_path, hub_cache):
    root = tmp_path / "codecfake" / "xcodec2"
    shutil.copytree(ckpt, root)
    codec = create_codec("xcodec2")
    assert codec.checkpoint_dir() == root
    x = _speech(0.3)
    _check(codec.resynthesize([x], 16000), [x])


def test_missing_weights_name_the_file_repo_and_flag(tmp_path, hub_cache):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("xcodec2").load()
    assert "HKUSTAudio/xcodec2-hf" in str(err.value) and "--weights xcodec2=" in str(err.value)
    (tmp_path / "cfg_only").mkdir()
    (tmp_path / "cfg_only" / "config.json").write_text("{}")
    with pytest.raises(CodecUnavailableError, match="has no model.safetensors"):
        create_codec("xcodec2", weights=str(tmp_path / "cfg_only")).load()


def test_incomplete_checkpoint_is_refused(ckpt, tmp_path, hub_cache):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "cut"
    d.mkdir()
    shutil.copy(ckpt / "config.json", d / "config.json")
    sd = load_file(str(ckpt / "model.safetensors"))
    sd.pop(next(k for k in sd if k.startswith("semantic_encoder.")))
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CodecUnavailableError, match="not a complete Xcodec2Model checkpoint"):
        create_codec("xcodec2", weights=str(d)).load()


def test_batched_equals_one_at_a_time(ckpt, hub_cache):
    x = _speech(1.0)
    # 2950 and 3150 pad to the same 10 frames and share a pass; 4001 pads to 13.
    waves = [x[5000:5000 + 4001], x[2000:2000 + 2950], x[:3150]]
    codec = create_codec("xcodec2", weights=str(ckpt))
    codec.load()
    assert not codec._mixed_lengths_exact()
    passes, raw = [], []
    encode, resynth = codec._encode, codec._resynthesize
    codec._encode = lambda x, valid: passes.append(tuple(x.shape)) or encode(x, valid)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, 16000)
    assert sorted(passes) == [(1, 4160), (2, 3200)]
    single = [codec.resynthesize([w], 16000)[0] for w in waves]
    for b, s in [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]:
        assert np.abs(s).max() > 0.01
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_codes_are_one_16_bit_codebook_at_50_hz(ckpt, hub_cache):
    codes = create_codec("xcodec2", weights=str(ckpt)).codes(_speech(0.2))
    assert codes.shape == (1, 11)  # 3200 samples + 1 -> 11 frames
    assert codes.min() >= 0 and codes.max() < 65536 and len(np.unique(codes)) > 1


def test_listing_and_bitrate(capsys):
    assert cli_main(["codecs", "--json"]) == 0
    (entry,) = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "xcodec2"]
    assert entry["sample_rate"] == 16000 and entry["frame_size"] == 320
    assert {k: v["bitrate_kbps"] for k, v in entry["configs"].items()} == {"0.8kbps": 0.8}
    assert "2502.04128" in Xcodec2Codec.paper and "NC" in Xcodec2Codec.licence


def test_released_architecture_config():
    """init_random builds ~0.8 B parameters (too slow for a unit test on CPU); check the
    architecture it would build and count its parameters without allocating them."""
    overrides = Xcodec2Codec.official_architectures["HKUSTAudio/xcodec2-hf"]
    cfg = transformers.Xcodec2Config(**overrides)
    assert (cfg.sampling_rate, cfg.hop_length, list(cfg.quantization_levels)) == (16000, 320, [4] * 8)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.quantization_dim) == (1024, 12, 2048)
    sem = cfg.semantic_model_config
    assert (sem.model_type, sem.hidden_size, sem.num_hidden_layers) == ("wav2vec2-bert", 1024, 16)
    with torch.device("meta"):
        model = transformers.Xcodec2Model(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 0.5e9 < n < 1.5e9

"""xcodec through transformers: tiny random-weight checkpoints written by save_pretrained
(with tiny HuBERT / WavLM semantic models whose conv strides, and so the 320-sample frame,
are the real ones), weight resolution, bandwidths and equal-length batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.cli import main as cli_main
from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.xcodec import XcodecCodec
from tests.codecfake_build.signals import harmonic_glide

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

TINY_SEMANTIC = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                     conv_dim=[8] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
TINY_ACOUSTIC = dict(encoder_hidden_size=2, decoder_hidden_size=16, hidden_size=8, codebook_dim=4)


def _checkpoint(d: Path, semantic: str = "hubert") -> Path:
    torch.manual_seed(0)
    cfg = transformers.XcodecConfig(semantic_model_config=dict(TINY_SEMANTIC, model_type=semantic),
                                    acoustic_model_config=TINY_ACOUSTIC)
    model = transformers.XcodecModel(cfg)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed"):  # transformers starts codebooks at zero
                buf.normal_()
        # DAC-style init (std 0.02) gives near-silent output; std 0.7/sqrt(fan-in) brings it
        # to ~0.1 so the 1e-4 batching tolerance means something.
        for m in model.acoustic_decoder.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                m.weight.normal_(0.0, 0.7 * m.weight[0].numel() ** -0.5)
    model.save_pretrained(str(d))
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("xcodec")
    return {"hubert": _checkpoint(root / "xcodec-hubert-librispeech"),
            "wavlm": _checkpoint(root / "xcodec-wavlm-mls", "wavlm")}


def _speech(seconds: float, rate: int = 16000) -> np.ndarray:
    return harmonic_glide(seconds, rate)


def _check(out: list[np.ndarray], waves: list[np.ndarray]) -> None:
    assert len(out) == len(waves)
    for y, x in zip(out, waves):
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.all(np.isfinite(y)) and np.any(y != 0)


@pytest.mark.parametrize("spec,key", [("xcodec@2kbps", "hubert"), ("xcodec@wavlm-mls-0.5kbps", "wavlm")])
def test_loads_from_weights_dir_and_resynthesizes(spec, key, ckpt, hub_cache):
    codec = create_codec(spec, weights=str(ckpt[key]))
    codec.load()
    x = _speech(0.4)
    waves = [x, x[:1234], x[:10]]  # the last is shorter than one frame
    _check(codec.resynthesize(waves, 16000), waves)


def test_loads_from_project_cache_by_repo_name(ckpt, tmp_path, hub_cache):
    root = tmp_path / "codecfake" / "xcodec"
    shutil.copytree(ckpt["hubert"], root / "xcodec-hubert-librispeech")
    codec = create_codec("xcodec@1kbps")
    assert codec.checkpoint_dir() == root / "xcodec-hubert-librispeech"
    x = _speech(0.3)
    _check(codec.resynthesize([x], 16000), [x])
    # The LibriSpeech HuBERT files are no answer for the WavLM variant.
    with pytest.raises(CodecUnavailableError, match="hf-audio/xcodec-wavlm-mls"):
        create_codec("xcodec@wavlm-mls-1kbps").load()


def test_missing_weights_name_the_file_repo_and_flag(tmp_path, hub_cache):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("xcodec").load()
    assert "hf-audio/xcodec-hubert-librispeech" in str(err.value) and "--weights xcodec=" in str(err.value)
    (tmp_path / "cfg_only").mkdir()
    (tmp_path / "cfg_only" / "config.json").write_text("{}")
    with pytest.raises(CodecUnavailableError, match="has no model.safetensors"):
        create_codec("xcodec", weights=str(tmp_path / "cfg_only")).load()


def test_semantic_model_must_match_the_config(ckpt, hub_cache):
    with pytest.raises(CodecUnavailableError, match="uses a hubert semantic model"):
        create_codec("xcodec@wavlm-more-data-4kbps", weights=str(ckpt["hubert"])).load()


def test_incomplete_checkpoint_is_refused(ckpt, tmp_path, hub_cache):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "cut"
    d.mkdir()
    shutil.copy(ckpt["hubert"] / "config.json", d / "config.json")
    sd = load_file(str(ckpt["hubert"] / "model.safetensors"))
    sd.pop(next(k for k in sd if k.startswith("semantic_model.")))
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CodecUnavailableError, match="not a complete XcodecModel checkpoint"):
        create_codec("xcodec", weights=str(d)).load()


def test_batched_equals_one_at_a_time(ckpt, hub_cache):
    x = _speech(1.0)
    # Two clips with the same number of frames (share a pass) and one other length.
    waves = [x[5000:5000 + 4001], x[2000:2000 + 2807], x[:3150], x[9000:9000 + 4100]]
    codec = create_codec("xcodec@4kbps", weights=str(ckpt["hubert"]))
    codec.load()
    assert not codec._mixed_lengths_exact()
    passes, raw = [], []
    encode, resynth = codec._encode, codec._resynthesize
    codec._encode = lambda x, valid: passes.append(x.shape[1]) or encode(x, valid)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, 16000)
    assert sorted(passes) == [2880, 3200, 4160]  # 3150 and 2807 -> 10 frames; 4001 and 4100 -> 13
    single = [codec.resynthesize([w], 16000)[0] for w in waves]
    for b, s in [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]:
        assert np.abs(s).max() > 0.02
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_padding_a_clip_changes_it_so_lengths_are_not_mixed(ckpt, hub_cache):
    """Why only equal lengths share a pass: the same clip padded by one more frame decodes
    differently (GroupNorm over time, bidirectional attention, non-causal convolutions)."""
    codec = create_codec("xcodec@4kbps", weights=str(ckpt["hubert"]))
    codec.load()
    x = _speech(0.4)[:3200]
    with torch.inference_mode():
        t = torch.from_numpy(np.stack([x, np.zeros_like(x)]))
        a = codec._decode(codec._encode(t[:1], None), None)[0].numpy()
        padded = torch.cat([t[:1], torch.zeros(1, 320)], dim=1)
        b = codec._decode(codec._encode(padded, None), None)[0, :3200].numpy()
    assert np.abs(a - b).max() > 1e-3


def test_bandwidth_sets_codebook_count(ckpt, hub_cache):
    n_cb = {}
    for kbps in ("0.5", "1", "1.5", "2", "4"):
        codes = create_codec(f"xcodec@{kbps}kbps", weights=str(ckpt["hubert"])).codes(_speech(0.2))
        n_cb[kbps] = codes.shape[0]
        assert codes.shape[1] == 10 and codes.max() < 1024
    assert n_cb == {"0.5": 1, "1": 2, "1.5": 3, "2": 4, "4": 8}


def test_listing_and_bitrates(capsys):
    assert cli_main(["codecs", "--json"]) == 0
    (entry,) = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "xcodec"]
    assert entry["sample_rate"] == 16000 and entry["frame_size"] == 320
    cfgs = entry["configs"]
    assert {k: v["bitrate_kbps"] for k, v in cfgs.items() if "-" not in k} == {
        "0.5kbps": 0.5, "1kbps": 1.0, "1.5kbps": 1.5, "2kbps": 2.0, "4kbps": 4.0}
    assert len(cfgs) == 25 and cfgs["hubert-general-balanced-4kbps"]["bitrate_kbps"] == 4.0
    assert "2408.17175" in XcodecCodec.paper


def test_init_random_builds_the_released_architecture():
    codec = create_codec("xcodec@wavlm-mls-1kbps")
    desc = codec.init_random(seed=0)
    cfg = codec.model.config
    assert "hf-audio/xcodec-wavlm-mls architecture (160.7 M parameters)" in desc
    assert (cfg.sample_rate, cfg.hop_length, cfg.codebook_size, cfg.num_quantizers) == (16000, 320, 1024, 8)
    sem = cfg.semantic_model_config
    assert (sem.model_type, sem.hidden_size, sem.num_hidden_layers) == ("wavlm", 768, 12)
    assert list(cfg.acoustic_model_config.downsampling_ratios) == [8, 5, 4, 2]
    codes = codec.codes(_speech(0.1))
    assert codes.shape == (2, 5) and len(np.unique(codes)) > 1

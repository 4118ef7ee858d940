"""mimi through transformers: tiny random-weight checkpoints written by save_pretrained
(the hub's flat key layout; real weights cannot be downloaded here), weight resolution,
and the causal-batching claim (mixed lengths in one pass equal one clip at a time)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.cli import main as cli_main
from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.mimi import MimiCodec
from tests.codecfake_build.signals import harmonic_glide

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

# Narrow channels and one transformer layer; the strides (frame 1920 samples at 24 kHz),
# the 2048-entry codebooks, the causal layout and the attention window are the real ones.
TINY = dict(hidden_size=32, num_filters=4, codebook_dim=16, vector_quantization_hidden_dimension=16,
            num_hidden_layers=1, intermediate_size=32, num_attention_heads=2, num_key_value_heads=2,
            upsample_groups=32, num_quantizers=16)


def _checkpoint(d: Path, **overrides) -> Path:
    torch.manual_seed(0)
    model = transformers.MimiModel(transformers.MimiConfig(**{**TINY, **overrides}))
    with torch.no_grad():
        # transformers starts the codebooks at zero (every code would be 0).
        for m in model.modules():
            if hasattr(m, "embed_sum"):
                m.embed_sum.normal_()
                m._embed = None
        # transformers' Kaiming init makes the output ~10x louder than speech (std ~2), which
        # would let float round-off alone approach the 1e-4 batching tolerance; scale the
        # output layer to speech level (std ~0.2).
        last = model.decoder.decoder_seanet.layers[-1].conv
        last.weight.mul_(0.1)
        last.bias.mul_(0.1)
    model.save_pretrained(str(d))
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(frame_rate=12.5)  # as in the hub config.json
    (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("mimi") / "mimi")


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    return harmonic_glide(seconds, 24000, seed)


def _check(out: list[np.ndarray], waves: list[np.ndarray]) -> None:
    assert len(out) == len(waves)
    for y, x in zip(out, waves):
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.all(np.isfinite(y)) and np.any(y != 0)


def test_loads_from_weights_dir_and_resynthesizes(ckpt, hub_cache):
    codec = create_codec("mimi@16cb", weights=str(ckpt))
    codec.load()
    assert codec.checkpoint_dir() == ckpt
    x = _speech(0.5)
    waves = [x, x[:1234], x[:10]]  # the last is shorter than one frame
    _check(codec.resynthesize(waves, 24000), waves)
    (y,) = codec.resynthesize([x[::3].copy()], 8000, out_sr=16000)  # resampled in and out
    assert y.shape == (len(x) * 2 // 3,)


def test_loads_from_project_cache(ckpt, tmp_path, hub_cache):
    root = tmp_path / "codecfake" / "mimi" / "mimi"
    shutil.copytree(ckpt, root)
    codec = create_codec("mimi")  # no --weights: $CODECFAKE_CACHE/mimi/mimi/
    assert codec.checkpoint_dir() == root
    x = _speech(0.3)
    _check(codec.resynthesize([x], 24000), [x])


def test_missing_weights_name_the_file_repo_and_flag(tmp_path, hub_cache):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("mimi").load()
    assert "kyutai/mimi" in str(err.value) and "--weights mimi=" in str(err.value)
    (tmp_path / "cfg_only").mkdir()
    (tmp_path / "cfg_only" / "config.json").write_text("{}")
    with pytest.raises(CodecUnavailableError, match="has no model.safetensors"):
        create_codec("mimi", weights=str(tmp_path / "cfg_only")).load()
    with pytest.raises(CodecUnavailableError, match=r"nope/config.json does not exist|nope is not a directory"):
        create_codec("mimi", weights=str(tmp_path / "nope")).load()


def test_checkpoint_must_have_enough_codebooks(ckpt, hub_cache):
    with pytest.raises(CodecUnavailableError, match="has 16 codebooks, fewer than 32"):
        create_codec("mimi@32cb", weights=str(ckpt)).load()


def test_incomplete_checkpoint_is_refused(ckpt, tmp_path, hub_cache):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "cut"
    d.mkdir()
    shutil.copy(ckpt / "config.json", d / "config.json")
    sd = load_file(str(ckpt / "model.safetensors"))
    sd.pop(next(k for k in sd if k.startswith("decoder_transformer.")))
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CodecUnavailableError, match="not a complete MimiModel checkpoint"):
        create_codec("mimi", weights=str(d)).load()


def test_batched_mixed_lengths_equal_one_at_a_time(ckpt, hub_cache):
    x = _speech(1.0)
    waves = [x[5000:5000 + 4001], x[2000:2000 + 9607], x[:2807]]  # not whole frames, unsorted
    codec = create_codec("mimi@8cb", weights=str(ckpt))
    codec.load()
    assert codec._mixed_lengths_exact()
    passes, raw = [], []
    encode, resynth = codec._encode, codec._resynthesize
    codec._encode = lambda x, valid: passes.append(x.shape[0]) or encode(x, valid)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, 24000)
    assert passes == [3]  # one forward pass for three lengths
    single = [codec.resynthesize([w], 24000)[0] for w in waves]
    for b, s in [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]:
        assert np.abs(s).max() > 0.05  # the tolerance is small relative to the signal
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_causal_what_follows_a_clip_cannot_change_it(ckpt, hub_cache):
    """The proof behind mixed-length batching: replacing everything after a clip's last
    whole frame by loud noise changes neither its codes nor its decoded samples."""
    codec = create_codec("mimi@16cb", weights=str(ckpt))
    codec.load()
    x = _speech(0.8)
    n = 3 * 1920
    tail = np.random.default_rng(1).standard_normal(len(x) - n).astype(np.float32)
    y = np.concatenate([x[:n], tail])
    assert np.array_equal(codec.codes(x)[:, :3], codec.codes(y)[:, :3])
    with torch.inference_mode():
        t = torch.from_numpy(np.stack([x, y]))
        valid = torch.tensor([len(x), len(y)])
        out = codec._decode(codec._encode(t, valid), valid).numpy()
    np.testing.assert_allclose(out[0, :n], out[1, :n], atol=1e-5, rtol=0)
    assert np.abs(out[0, n:] - out[1, n:]).max() > 1e-2  # the noise does change what follows


def test_codes_have_the_configs_codebooks_of_11_bits(ckpt, hub_cache):
    for cfg, n_cb in (("8cb", 8), ("16cb", 16)):
        codec = create_codec(f"mimi@{cfg}", weights=str(ckpt))
        codes = codec.codes(_speech(0.5))
        assert codes.shape == (n_cb, 7)  # 12000 samples -> ceil(12000 / 1920) frames
        assert codes.min() >= 0 and codes.max() < 2048
        assert len(np.unique(codes[0])) > 1


def test_listing_and_bitrates(capsys):
    assert cli_main(["codecs", "--json"]) == 0
    (entry,) = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "mimi"]
    assert entry["sample_rate"] == 24000 and entry["frame_size"] == 1920
    assert {k: v["bitrate_kbps"] for k, v in entry["configs"].items()} == {"8cb": 1.1, "16cb": 2.2, "32cb": 4.4}
    assert MimiCodec.default_config == "8cb" and "2410.00037" in MimiCodec.paper


def test_init_random_builds_the_released_architecture():
    codec = create_codec("mimi@8cb")
    desc = codec.init_random(seed=0)
    cfg = codec.model.config
    assert (cfg.num_quantizers, cfg.codebook_size, cfg.frame_size, cfg.hidden_size) == (32, 2048, 1920, 512)
    assert (cfg.num_hidden_layers, cfg.sliding_window, list(cfg.upsampling_ratios)) == (8, 250, [8, 6, 5, 4])
    assert "kyutai/mimi architecture (79.3 M parameters)" in desc
    wave = _speech(0.5)
    codes = codec.codes(wave)
    assert codes.shape == (8, 7) and len(np.unique(codes[1])) > 1
    (y,) = codec.resynthesize([wave], 24000)
    assert y.shape == wave.shape and np.isfinite(y).all()

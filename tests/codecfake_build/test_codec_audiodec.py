"""audiodec: parity with the official facebookresearch/AudioDec demo path on a tiny random
model (fixture), loading official-format checkpoints (``exp`` folder, cache, zip download),
refusing bad ones, and batching clips of different lengths exactly.
"""

from __future__ import annotations

import collections
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from codecfake_build.cli import main as cli_main
from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.audiodec import AudioDecCodec

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audiodec_reference"
AE_DIR = "autoencoder/symAD_libritts_24000_hop300"
VOC_DIR = "vocoder/AudioDec_v1_symAD_libritts_24000_hop300_clean"
CKPT = "checkpoint-500000steps.pkl"


def _write_exp(root: Path, drop: str | None = None, configs: bool = True) -> Path:
    """The fixture's tiny model as the official ``exp`` folder: training checkpoints
    (generator, discriminator, optimizer and scheduler state) with config.yml beside them."""
    state = load_file(str(FIXTURE / "state_dict.safetensors"))
    cfgs = json.loads((FIXTURE / "configs.json").read_text())
    for part, sub in (("autoencoder", AE_DIR), ("vocoder", VOC_DIR)):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        gen = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".") and k != drop}
        torch.save({"model": {"generator": gen, "discriminator": {}},
                    "optimizer": {"generator": {"state": {}, "param_groups": []}},
                    "scheduler": {"generator": {"milestones": collections.Counter({200000: 1}), "gamma": 0.5}},
                    "steps": 500000, "epochs": 10}, d / CKPT)
        if configs:
            (d / "config.yml").write_text(yaml.safe_dump(dict(cfgs[part], sampling_rate=24000)))
    return root


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return _write_exp(tmp_path_factory.mktemp("audiodec") / "exp")


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """An empty project cache, offline."""
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    return tmp_path / "cache" / "audiodec"


def _reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "io.npz") as f:
        return {k: f[k] for k in f.files}


# ---- parity with the official implementation -------------------------------------------------
def test_matches_official_demo_path(exp, env):
    ref = _reference()
    codec = create_codec("audiodec", weights=str(exp))
    codec.load()
    assert np.array_equal(codec.codes(ref["input"]), ref["codes"])
    (y,) = codec._resynthesize([ref["input"]])
    assert y.shape == ref["output"].shape
    assert np.max(np.abs(y - ref["output"])) < 1e-4
    # The framework path (24 kHz in and out; peak 0.40 is below the limiter) gives the same.
    (z,) = codec.resynthesize([ref["input"]], 24000)
    assert np.max(np.abs(z - ref["output"])) < 1e-4


def test_start_of_output_depends_on_the_official_warm_up(exp, env):
    ref = _reference()
    codec = create_codec("audiodec", weights=str(exp))
    codec.load()
    for m in codec.model.modules():
        if hasattr(m, "context_len"):
            m.context = None  # zero state instead of the state left by coding 8192 zeros
    (y,) = codec._resynthesize([ref["input"]])
    err = np.abs(y - ref["output"])
    assert err[:3000].max() > 1e-2 and err[3000:].max() < 1e-4


def test_weight_norm_tensors_load_under_their_checkpoint_names(exp, env):
    codec = create_codec("audiodec", weights=str(exp))
    codec.load()
    ours = set(codec.model.vocoder.state_dict())
    official = {k[len("vocoder."):] for k in load_file(str(FIXTURE / "state_dict.safetensors"))
                if k.startswith("vocoder.") and not k.endswith("pad_buffer")}
    assert ours == official
    assert "input_conv.conv.weight_g" in ours and "upsamples.0.deconv.weight_v" in ours
    assert "blocks.0.conv_out.weight_g" in ours and not any(k.endswith(".weight") for k in ours)


# ---- where the weights come from --------------------------------------------------------------
def test_loads_from_cache_dir_and_from_an_audiodec_checkout(tmp_path, env):
    _write_exp(env)  # $CODECFAKE_CACHE/audiodec/ laid out like exp/
    codec = create_codec("audiodec")
    assert codec.weights_dir() == env
    codec.load()
    checkout = tmp_path / "AudioDec"
    _write_exp(checkout / "exp")
    assert create_codec("audiodec", weights=str(checkout)).weights_dir() == checkout / "exp"


def test_missing_files_are_named(tmp_path, env):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("audiodec").load()
    msg = str(err.value)
    assert str(env / AE_DIR / CKPT) in msg and "--weights audiodec=PATH" in msg
    partial = _write_exp(tmp_path / "exp")
    (partial / VOC_DIR / CKPT).unlink()
    with pytest.raises(CodecUnavailableError, match=f"{VOC_DIR}/{CKPT} does not exist"):
        create_codec("audiodec", weights=str(partial)).load()


def test_downloads_and_unpacks_the_official_zip(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CODECFAKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    src = _write_exp(tmp_path / "src" / "exp")
    archive = tmp_path / "exp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, "exp/" + f.relative_to(src).as_posix())
        zf.writestr("exp/vocoder/other_model/checkpoint-1steps.pkl", b"not needed")
    monkeypatch.setattr(AudioDecCodec, "weights_url", archive.as_uri())
    codec = create_codec("audiodec")
    codec.load()
    cache = tmp_path / "cache" / "audiodec"
    assert codec.weights_dir() == cache
    got = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert got == sorted([f"{AE_DIR}/{CKPT}", f"{AE_DIR}/config.yml", f"{VOC_DIR}/{CKPT}", f"{VOC_DIR}/config.yml"])
    ref = _reference()
    (y,) = codec._resynthesize([ref["input"][:6000]])
    assert np.max(np.abs(y - ref["output"][:6000])) < 1e-4  # causal: a prefix decodes the same


def test_zip_without_the_model_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CODECFAKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    archive = tmp_path / "exp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("exp/README.md", "nothing")
    monkeypatch.setattr(AudioDecCodec, "weights_url", archive.as_uri())
    with pytest.raises(CodecUnavailableError, match=f"has no {AE_DIR}/{CKPT}"):
        create_codec("audiodec").load()
    assert not (tmp_path / "cache" / "audiodec" / ".exp.zip").exists()
    monkeypatch.setattr(AudioDecCodec, "weights_url", (tmp_path / "absent.zip").as_uri())
    with pytest.raises(CodecUnavailableError, match="could not be downloaded from file:"):
        create_codec("audiodec").load()


# ---- refusing bad checkpoints ----------------------------------------------------------------
def test_incomplete_or_foreign_checkpoints_are_refused(tmp_path, env):
    cut = _write_exp(tmp_path / "cut", drop="vocoder.blocks.1.convs1.2.conv.weight_v")
    with pytest.raises(CodecUnavailableError, match=r"not a complete checkpoint.*blocks\.1\.convs1\.2\.conv\.weight_v"):
        create_codec("audiodec", weights=str(cut)).load()
    # Without config.yml the released (full-size) architecture is expected: shapes mismatch.
    bare = _write_exp(tmp_path / "bare", configs=False)
    with pytest.raises(CodecUnavailableError, match=r"expected \(32, 1, 7\)"):
        create_codec("audiodec", weights=str(bare)).load()
    # A vocoder whose config names a stats file needs the code statistics from its checkpoint.
    nostats = _write_exp(tmp_path / "nostats", drop="vocoder.mean")
    with pytest.raises(CodecUnavailableError, match=r"e\.g\. mean: missing"):
        create_codec("audiodec", weights=str(nostats)).load()
    cfg = bare / AE_DIR / "config.yml"
    cfg.write_text(yaml.safe_dump({"model_type": "symAudioDec", "generator_params": {"mode": "noncausal"}}))
    with pytest.raises(CodecUnavailableError, match="mode = 'noncausal'; only 'causal'"):
        create_codec("audiodec", weights=str(bare)).load()
    torch.save({"weights": {}}, bare / AE_DIR / CKPT)
    cfg.unlink()
    with pytest.raises(CodecUnavailableError, match=r"no \['model'\]\['generator'\]"):
        create_codec("audiodec", weights=str(bare)).load()
    (bare / AE_DIR / CKPT).write_bytes(b"garbage")
    with pytest.raises(CodecUnavailableError, match=f"cannot read {bare / AE_DIR / CKPT}"):
        create_codec("audiodec", weights=str(bare)).load()


# ---- batching ------------------------------------------------------------------------------------
def test_mixed_length_batch_equals_one_at_a_time(exp, env):
    x = _reference()["input"]
    # Lengths that are not whole frames, unsorted, from different parts of the input; the
    # last is shorter than one frame (the framework pads it to 300).
    waves = [x[8000:8000 + 4001], x[20000:20000 + 1603], x[:2807], x[5000:5123]]
    codec = create_codec("audiodec", weights=str(exp))
    codec.load()
    passes, raw = [], []
    forward, resynth = codec.model.forward, codec._resynthesize
    codec.model.forward = lambda t: passes.append(tuple(t.shape)) or forward(t)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, 24000)
    assert passes == [(4, 4001)]  # one pass, padded to the longest clip
    single = [codec.resynthesize([w], 24000)[0] for w in waves]
    for b, s in [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]:
        assert b.shape == s.shape
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)
    for w in waves[:3]:
        padded = np.concatenate([w, x[:3000]])  # any continuation: codes of the clip's frames stay
        n = -(-len(w) // 300)
        assert np.array_equal(codec.codes(padded)[:, :n], codec.codes(w))


def test_batches_are_capped_by_padded_seconds():
    codec = create_codec("audiodec")
    codec.max_batch_seconds = 2.0
    assert codec._groups([24000, 24000, 24000, 100]) == [[3, 0], [1, 2]]


# ---- listing, released architecture --------------------------------------------------------------
def test_listing_and_bitrate(capsys):
    assert cli_main(["codecs", "--json"]) == 0
    (entry,) = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "audiodec"]
    assert entry["sample_rate"] == 24000 and entry["frame_size"] == 300
    # 24000 / 300 = 80 frames/s x 8 codebooks x log2(1024) bits
    assert {k: v["bitrate_kbps"] for k, v in entry["configs"].items()} == {"24khz": 6.4}
    assert "CC-BY-NC" in AudioDecCodec.licence and "exp.zip" in AudioDecCodec.weights_source


def test_init_random_builds_the_released_architecture():
    codec = create_codec("audiodec")
    desc = codec.init_random(seed=0)
    # Counted with the official classes and configs at e451e62 (torch.nn.utils.weight_norm on the
    # vocoder): encoder 3,806,368 + projector 98,304 of models/autoencoder/AudioDec.Generator
    # (symAD_libritts_24000_hop300) + 19,461,090 of models/vocoder/HiFiGAN.Generator
    # (AudioDec_v1_symAD_libritts_24000_hop300_clean).  The codebooks are buffers (8 x 64 x 1024).
    assert sum(p.numel() for p in codec.model.parameters()) == 3_806_368 + 98_304 + 19_461_090
    assert "(23.4 M parameters)" in desc
    # The released vocoder normalises its input with the stored code statistics.
    assert codec.model.vocoder.cfg.normalises_input and codec.model.vocoder.mean.shape == (64,)
    assert [tuple(layer.embed.shape) for layer in codec.model.analysis.quantizer.codebook.layers] == [(64, 1024)] * 8
    wave = (0.1 * np.sin(np.linspace(0, 60, 2400))).astype(np.float32)  # 0.15 s: keeps it fast
    (y,) = codec.resynthesize([wave], 16000)
    assert y.shape == wave.shape and np.isfinite(y).all()

"""encodec and dac through transformers: real loading code on tiny random-weight
checkpoints written in the hub's layout (real weights cannot be downloaded here),
real speech from ../shared, weight resolution and batching exactness.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build.codecs import CodecUnavailableError, create_codec, parse_codec_list
from codecfake_build.codecs.base import group_by_length
from codecfake_build.codecs.dac import DacCodec
from codecfake_build.codecs.encodec import EncodecCodec

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Small channel counts keep every model under a second per clip; the strides, sample
# rates, codebook sizes and counts are the real ones, so bitrates and lengths are real.
ENCODEC_24K = dict(num_filters=2, hidden_size=8, codebook_dim=8, num_lstm_layers=1)
ENCODEC_48K = dict(ENCODEC_24K, sampling_rate=48000, audio_channels=2, use_causal_conv=False,
                   norm_type="time_group_norm", normalize=True, chunk_length_s=1.0, overlap=0.01,
                   target_bandwidths=[3.0, 6.0, 12.0, 24.0])
DAC = {
    "16khz": dict(downsampling_ratios=[2, 4, 5, 8], n_codebooks=12, sampling_rate=16000),
    "24khz": dict(downsampling_ratios=[2, 4, 5, 8], n_codebooks=32, sampling_rate=24000),
    "44khz": dict(downsampling_ratios=[2, 4, 8, 8], n_codebooks=9, sampling_rate=44100),
}


def _speech(shared: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(shared / "data" / "speech" / "en" / "lyra_testdata" / "sample1_16kHz.wav"),
                    dtype="float32")
    return (x if seconds is None else x[: int(seconds * sr)]), sr


def _hub_layout(d: Path) -> Path:
    """Rewrite a fresh save_pretrained dir the way the hub checkpoints were written (by
    transformers 4.x): old weight-norm tensor names and a ``torch_dtype`` config key."""
    sd = load_file(str(d / "model.safetensors"))
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
               .replace("parametrizations.weight.original1", "weight_v"): v for k, v in sd.items()}
    save_file(legacy, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    cfg.pop("dtype", None)
    cfg.update(torch_dtype="float32", transformers_version="4.42.0.dev0")
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    return d


def _encodec_checkpoint(d: Path, **cfg) -> Path:
    torch.manual_seed(0)
    model = transformers.EncodecModel(transformers.EncodecConfig(**cfg))
    # transformers initialises EnCodec codebooks to zeros (every code would be 0); random
    # codebooks make the codes, and so the batching checks, depend on the audio.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed") or name.endswith("codebook.embed_avg"):
                buf.copy_(torch.randn_like(buf))
        # A louder last layer puts the output near speech level (std ~0.25 instead of ~0.01),
        # so the 1e-4 batching tolerance is tight relative to the signal.
        last = model.decoder.layers[-1]
        for p in last.parameters():
            p.mul_(20.0)
    model.save_pretrained(str(d))
    return _hub_layout(d)


def _dac_checkpoint(d: Path, **cfg) -> Path:
    torch.manual_seed(0)
    model = transformers.DacModel(transformers.DacConfig(encoder_hidden_size=2, decoder_hidden_size=16,
                                                         codebook_dim=4, **cfg))
    # transformers' DAC init (std 0.02) gives ~0.008 output, too quiet for a 1e-4 batching
    # check to mean much; std 0.7/sqrt(fan-in) gives ~0.05-0.2 while keeping float
    # round-off (~1e-7) far below the tolerance.  Naive padded batching then misses by >2e-3.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                m.weight.normal_(0.0, 0.7 * m.weight[0].numel() ** -0.5)
    model.save_pretrained(str(d))
    return _hub_layout(d)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    out = {"encodec": _encodec_checkpoint(root / "encodec24", **ENCODEC_24K),
           "encodec48": _encodec_checkpoint(root / "encodec48", **ENCODEC_48K)}
    for name, cfg in DAC.items():
        out[f"dac{name}"] = _dac_checkpoint(root / f"dac{name}", **cfg)
    return out


def _check_roundtrip(out: list[np.ndarray], waves: list[np.ndarray]) -> None:
    assert len(out) == len(waves)
    for y, x in zip(out, waves):
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.all(np.isfinite(y))
        assert np.max(np.abs(y)) <= 0.99 + 1e-6
        assert np.any(y != 0)


# ---- explicit --weights directory, real speech ---------------------------------------------
@pytest.mark.parametrize("spec,key", [
    ("encodec@6kbps", "encodec"),
    ("encodec@48khz-6kbps", "encodec48"),
    ("dac@16khz", "dac16khz"),
    ("dac@44khz", "dac44khz"),
])
def test_roundtrip_real_speech_from_weights_dir(spec, key, ckpt, shared, hub_cache):
    x, sr = _speech(shared, 0.8)
    codec = create_codec(spec, weights=str(ckpt[key]))
    codec.load()
    assert codec.model.config.sampling_rate == codec.native_rate
    waves = [x, x[:1234], x[4000:4010]]  # the last is shorter than one frame
    _check_roundtrip(codec.resynthesize(waves, sr), waves)


def test_dac_24khz_resamples_and_returns_16k(ckpt, shared, hub_cache):
    x, sr = _speech(shared, 1.0)
    assert sr == 16000
    codec = create_codec("dac@24khz", weights=str(ckpt["dac24khz"]))
    assert codec.native_rate == 24000 and codec.native_frame_size == 320
    calls = []
    inner = codec._resynthesize
    codec._resynthesize = lambda batch: calls.append([len(b) for b in batch]) or inner(batch)
    (y,) = codec.resynthesize([x], sr)
    assert calls == [[24000]]  # the model saw 1.0 s at 24 kHz
    _check_roundtrip([y], [x])
    (y2,) = codec.resynthesize([x], sr, out_sr=22050)
    assert len(y2) == 22050


# ---- weight resolution -----------------------------------------------------------------------
def test_loads_from_hf_cache_layout(ckpt, shared, hub_cache):
    repo = hub_cache / "models--facebook--encodec_24khz"
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        (snap / f).write_bytes((ckpt["encodec"] / f).read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    codec = create_codec("encodec")  # no --weights
    codec.load()
    assert codec.checkpoint_dir() == snap
    x, sr = _speech(shared, 0.5)
    _check_roundtrip(codec.resynthesize([x], sr), [x])


def test_project_cache_is_used_only_at_the_configs_rate(ckpt, tmp_path, hub_cache):
    import shutil

    root = tmp_path / "codecfake" / "encodec"
    shutil.copytree(ckpt["encodec"], root / "encodec_24khz")
    assert create_codec("encodec@12kbps").checkpoint_dir() == root / "encodec_24khz"
    # The 24 kHz files are no answer for the 48 kHz model: fall through to the (empty) HF cache.
    with pytest.raises(CodecUnavailableError, match="facebook/encodec_48khz"):
        create_codec("encodec@48khz-6kbps").checkpoint_dir()
    shutil.copytree(ckpt["encodec48"], root, dirs_exist_ok=True)
    assert create_codec("encodec@48khz-6kbps").checkpoint_dir() == root


@pytest.mark.parametrize("spec,repo", [("encodec", "facebook/encodec_24khz"),
                                       ("encodec@48khz-12kbps", "facebook/encodec_48khz"),
                                       ("dac@44khz", "descript/dac_44khz")])
def test_offline_without_weights_names_repo_and_flag(spec, repo, hub_cache):
    codec = create_codec(spec)
    with pytest.raises(CodecUnavailableError) as err:
        codec.load()
    msg = str(err.value)
    assert repo in msg and f"--weights {codec.registry_name}=" in msg


def test_explicit_dir_without_weights_is_an_error(tmp_path, hub_cache):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CodecUnavailableError, match="model.safetensors"):
        create_codec("dac", weights=str(tmp_path)).load()
    with pytest.raises(CodecUnavailableError, match="--weights encodec="):
        create_codec("encodec", weights=str(tmp_path / "nope")).load()


def test_incomplete_checkpoint_is_refused(ckpt, tmp_path, hub_cache):
    d = tmp_path / "cut"
    d.mkdir()
    (d / "config.json").write_bytes((ckpt["dac16khz"] / "config.json").read_bytes())
    sd = load_file(str(ckpt["dac16khz"] / "model.safetensors"))
    sd.pop(next(k for k in sd if k.startswith("decoder.")))
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CodecUnavailableError, match="not a complete DacModel checkpoint"):
        create_codec("dac", weights=str(d)).load()


def test_checkpoint_must_match_config(ckpt, hub_cache):
    with pytest.raises(CodecUnavailableError, match="48000 Hz"):
        create_codec("encodec@48khz-6kbps", weights=str(ckpt["encodec"])).load()
    with pytest.raises(CodecUnavailableError, match="16000 Hz"):
        create_codec("dac@16khz", weights=str(ckpt["dac24khz"])).load()


def test_checkpoint_must_offer_the_configs_bandwidth(tmp_path, hub_cache):
    d = _encodec_checkpoint(tmp_path / "low", **{**ENCODEC_24K, "target_bandwidths": [1.5, 3.0]})
    with pytest.raises(CodecUnavailableError, match=r"supports \[1.5, 3.0\] kbps, not 6\. Fix: choose one"):
        create_codec("encodec@6kbps", weights=str(d)).load()
    create_codec("encodec@3kbps", weights=str(d)).load()


def test_missing_transformers_says_how_to_install(monkeypatch, ckpt):
    monkeypatch.setitem(sys.modules, "transformers", None)
    for spec, key in (("encodec", "encodec"), ("dac", "dac16khz")):
        with pytest.raises(CodecUnavailableError, match=r"pip install 'codecfake-bench\[codecs\]'"):
            create_codec(spec, weights=str(ckpt[key])).load()


# ---- batching ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,key", [
    ("encodec@6kbps", "encodec"),
    ("encodec@48khz-3kbps", "encodec48"),
    ("dac@16khz", "dac16khz"),
    ("dac@24khz", "dac24khz"),
    ("dac@44khz", "dac44khz"),
])
def test_batched_equals_one_at_a_time(spec, key, ckpt, shared, hub_cache):
    x, sr = _speech(shared)
    # Lengths that are not whole frames, in unsorted order, from different parts of the clip.
    waves = [x[8000:8000 + 4001], x[20000:20000 + 1603], x[:2807]]
    codec = create_codec(spec, weights=str(ckpt[key]))
    codec.load()
    passes, raw = [], []
    encode, resynth = codec._encode, codec._resynthesize
    codec._encode = lambda x, valid: passes.append(x.shape[0]) or encode(x, valid)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, sr)
    # One forward pass for all three, except EnCodec 48 kHz (equal lengths only).
    assert passes == ([3] if codec._mixed_lengths_exact() else [1, 1, 1])
    assert codec._mixed_lengths_exact() == (spec != "encodec@48khz-3kbps")
    single = [codec.resynthesize([w], sr)[0] for w in waves]
    # Both the stored result and the model output before peak limiting (which can be
    # several times louder with random weights) must match.
    pairs = [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]
    for b, s in pairs:
        assert b.shape == s.shape
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_batches_are_capped_by_padded_seconds(ckpt, hub_cache):
    codec = create_codec("encodec", weights=str(ckpt["encodec"]))
    codec.load()
    codec.max_batch_seconds = 2.0
    assert codec._groups([24000, 24000, 24000, 100]) == [[3, 0], [1, 2]]


def test_cpu_budget_is_smaller_than_the_gpu_one(ckpt, hub_cache):
    cpu = create_codec("encodec", weights=str(ckpt["encodec"]))
    cuda = create_codec("encodec", device="cuda", weights=str(ckpt["encodec"]))
    assert cpu.batch_seconds() == cpu.cpu_max_batch_seconds == 4.0
    assert cuda.batch_seconds() == cuda.max_batch_seconds == 60.0
    # Ten 2 s clips at 24 kHz: two per pass on a CPU, all ten in one pass on a GPU.
    assert [len(g) for g in group_by_length([48000] * 10, int(cpu.batch_seconds() * 24000), True)] == [2] * 5
    assert [len(g) for g in group_by_length([48000] * 10, int(cuda.batch_seconds() * 24000), True)] == [10]


def test_dac_masks_only_padded_batches(ckpt, shared, hub_cache, monkeypatch):
    import codecfake_build.codecs.dac as dac_module

    x, sr = _speech(shared, 0.3)
    codec = create_codec("dac@16khz", weights=str(ckpt["dac16khz"]))
    codec.load()
    calls = []
    real = dac_module._mask_past_valid
    monkeypatch.setattr(dac_module, "_mask_past_valid", lambda m, v: calls.append(len(v)) or real(m, v))
    codec.resynthesize([x[:3200]], sr)
    assert calls == []  # one clip: nothing is padded, so nothing is masked
    codec.resynthesize([x[:3200], x[:2000]], sr)
    assert calls == [2, 2]  # encoder and decoder of the padded pair


# ---- configs -----------------------------------------------------------------------------------
def test_encodec_bandwidth_sets_codebook_count(ckpt, shared, hub_cache):
    x, sr = _speech(shared, 0.3)
    from codecfake_build.audio import resample

    n_cb = {}
    for cfg in ("1.5kbps", "6kbps", "12kbps", "24kbps"):
        (spec,) = parse_codec_list(f"encodec@{cfg}")
        codec = create_codec(spec, weights=str(ckpt["encodec"]))
        codes = codec.codes(resample(x, sr, 24000))
        n_cb[cfg] = codes.shape[0]
        assert codes.shape[1] == 7200 // 320 + 1  # 0.3 s at 75 frames/s, last frame partial
    assert n_cb == {"1.5kbps": 2, "6kbps": 8, "12kbps": 16, "24kbps": 32}
    codec = create_codec("encodec@48khz-3kbps", weights=str(ckpt["encodec48"]))
    assert codec.codes(resample(x, sr, 48000)).shape[0] == 2


def test_dac_codes_use_every_codebook(ckpt, hub_cache):
    for name, cfg in DAC.items():
        codec = create_codec(f"dac@{name}", weights=str(ckpt[f"dac{name}"]))
        codes = codec.codes(np.full(codec.native_frame_size * 3, 0.1, np.float32))
        # The stride-5 decoders return 8 samples fewer than the padded input, so a clip of
        # exactly 3 frames gets a 4th frame to keep its last samples.
        assert codes.shape == (cfg["n_codebooks"], 3 if name == "44khz" else 4)
        with torch.inference_mode():
            y = codec.model.decode(audio_codes=torch.from_numpy(codes)[None]).audio_values
        assert y.shape[-1] == codec._decoded_length(codes.shape[1]) >= 3 * codec.native_frame_size


def test_metadata_and_bitrates():
    assert EncodecCodec.default_config == "6kbps" and DacCodec.default_config == "16khz"
    enc = EncodecCodec.describe()
    assert {k: v["bitrate_kbps"] for k, v in enc["configs"].items() if not k.startswith("48")} == {
        "1.5kbps": 1.5, "3kbps": 3, "6kbps": 6, "12kbps": 12, "24kbps": 24}
    assert enc["configs"]["48khz-6kbps"]["sample_rate"] == 48000
    dac = DacCodec.describe()["configs"]
    assert {k: (v["bitrate_kbps"], v["sample_rate"], v["frame_size"]) for k, v in dac.items()} == {
        "16khz": (6.0, 16000, 320), "24khz": (24.0, 24000, 320), "44khz": (7.75, 44100, 512)}
    assert "CC-BY-NC" in EncodecCodec.licence and "MIT" in EncodecCodec.licence
    assert "MIT" in DacCodec.licence
    assert "2210.13438" in EncodecCodec.paper and "2306.06546" in DacCodec.paper
    with pytest.raises(ValueError, match="encodec@6kbps"):
        parse_codec_list("encodec@7kbps")


@pytest.mark.parametrize("spec,params_m", [("encodec@1.5kbps", 14.9), ("dac@16khz", 74.1)])
def test_init_random_builds_the_released_architecture(spec, params_m):
    codec = create_codec(spec)
    desc = codec.init_random(seed=0)
    assert f"({params_m} M parameters)" in desc
    wave = (0.1 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)
    (y,) = codec.resynthesize([wave], 16000)
    assert y.shape == wave.shape and np.isfinite(y).all()


def test_init_random_is_refused_where_no_architecture_is_defined():
    codec = create_codec("mp3@32kbps")
    with pytest.raises(CodecUnavailableError, match="--weights mp3=PATH"):
        codec.init_random()

"""snac through the official PyPI package (1.2.1): tiny random models built by the package
and saved in the hub layout (config.json = SNAC's kwargs, pytorch_model.bin), loaded via
--weights, the project cache and the HF cache layout; output compared with the package's
own from_pretrained + encode/decode; mixed-length batching exactness; positional noise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.snac import RELEASED_CONFIGS, SnacCodec, _PositionalNoise, _use_positional_noise

torch = pytest.importorskip("torch")
snac = pytest.importorskip("snac")
from snac.layers import NoiseBlock  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*jit.script.*:DeprecationWarning")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Real rates, strides, codebook sizes and attention window (so hops, padding units and
# bitrates are real), few channels.  The 32 kHz one has the windowed attention (its
# latent is 64 wide: one 64-dim head).
TINY = {
    "24khz": dict(RELEASED_CONFIGS["hubertsiuzdak/snac_24khz"], encoder_dim=2, decoder_dim=16, codebook_dim=4),
    "32khz": dict(RELEASED_CONFIGS["hubertsiuzdak/snac_32khz"], encoder_dim=4, decoder_dim=64, codebook_dim=4),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _signal(n: int, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 370, 910, 2300), 1))
    return (0.2 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t)) + 0.02 * rng.standard_normal(n)).astype(np.float32)


def _write(d: Path, cfg: dict) -> Path:
    torch.manual_seed(0)
    model = snac.SNAC(**cfg)
    d.mkdir(parents=True)
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("snac")
    return {name: _write(root / f"snac_{name}", cfg) for name, cfg in TINY.items()}


def _package_reference(d: Path, wave: np.ndarray) -> tuple[np.ndarray, list]:
    """The package's own loader and encode/decode (noise made positional, as in the codec)."""
    model = snac.SNAC.from_pretrained(str(d))
    _use_positional_noise(model, NoiseBlock)
    with torch.inference_mode():
        codes = model.encode(torch.from_numpy(wave)[None, None])
        y = model.decode(codes)
    return y[0, 0, : len(wave)].numpy(), [c[0].numpy() for c in codes]


@pytest.mark.parametrize("name,n", [("24khz", 5000), ("32khz", 13001)])
def test_matches_the_package_on_its_own_checkpoint(name, n, ckpt, hub_cache):
    rate = TINY[name]["sampling_rate"]
    wave = _signal(n, rate)
    codec = create_codec(f"snac@{name}", weights=str(ckpt[name]))
    (ours,) = codec._resynthesize([wave])
    ref, ref_codes = _package_reference(ckpt[name], wave)
    assert ours.shape == wave.shape and float(np.std(ref)) > 0.01
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    codes = codec.codes(wave)
    assert [c.shape for c in codes] == [c.shape for c in ref_codes]
    assert all(np.array_equal(a, b) for a, b in zip(codes, ref_codes))
    # The package pads to hop x lcm(stride, window): 2048 at 24 kHz, 12288 at 32 kHz.
    unit = 2048 if name == "24khz" else 12288
    assert codes[-1].shape == (-(-n // unit) * unit // codec.native_frame_size,)


@pytest.mark.parametrize("name,lengths", [("24khz", [9001, 1999, 4100, 333]),
                                          ("32khz", [30000, 5000, 15000])])
def test_mixed_lengths_share_a_pass_and_equal_one_at_a_time(name, lengths, ckpt, hub_cache, monkeypatch):
    rate = TINY[name]["sampling_rate"]
    base = _signal(40000, rate, seed=3)
    waves = [base[i * 97: i * 97 + n] for i, n in enumerate(lengths)]
    codec = create_codec(f"snac@{name}", weights=str(ckpt[name]))
    codec.load()
    assert codec._mixed_lengths_exact()
    passes = []
    inner = codec._run
    codec._run = lambda ws: passes.append(len(ws)) or inner(ws)
    batched = codec._resynthesize(waves)
    assert passes == [len(waves)]
    single = [codec._resynthesize([w])[0] for w in waves]
    for b, s, w in zip(batched, single, waves):
        assert b.shape == s.shape == w.shape and float(np.std(s)) > 0.01
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)
    # Without the masking, padding a short clip further changes its output.
    from codecfake_build.codecs import dac

    class _NoMask:
        def __init__(self, *a):
            pass

        def __enter__(self):
            return None

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(dac, "_mask_past_valid", _NoMask)
    naive = codec._resynthesize(waves)
    assert max(float(np.max(np.abs(b - s))) for b, s in zip(naive, single)) > 1e-3


def test_output_is_reproducible_across_calls(ckpt, hub_cache):
    wave = _signal(6000, 24000)
    codec = create_codec("snac@24khz", weights=str(ckpt["24khz"]))
    a = codec._resynthesize([wave])[0]
    torch.manual_seed(123)  # the global RNG no longer matters
    b = codec._resynthesize([wave])[0]
    assert np.array_equal(a, b)


def test_positional_noise_is_standard_normal_and_length_independent():
    src = _PositionalNoise(seed=7)
    long = src.get(100_000, "cpu", torch.float32)
    assert abs(float(long.mean())) < 0.02 and abs(float(long.std()) - 1) < 0.02
    fresh = _PositionalNoise(seed=7).get(40_000, "cpu", torch.float32)
    assert torch.equal(fresh, long[:40_000])
    assert not torch.equal(_PositionalNoise(seed=8).get(100, "cpu", torch.float32), long[:100])


def test_weight_resolution_cache_and_hf_layout(ckpt, tmp_path, hub_cache):
    root = tmp_path / "codecfake" / "snac"
    shutil.copytree(ckpt["24khz"], root / "snac_24khz")
    assert create_codec("snac@24khz").checkpoint_dir() == root / "snac_24khz"
    # 24 kHz files are no answer for the 32 kHz model: fall through to the (empty) HF cache.
    with pytest.raises(CodecUnavailableError, match="hubertsiuzdak/snac_32khz is not in the HF cache"):
        create_codec("snac@32khz").checkpoint_dir()
    repo = hub_cache / "models--hubertsiuzdak--snac_32khz"
    snap = repo / "snapshots" / COMMIT
    shutil.copytree(ckpt["32khz"], snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    codec = create_codec("snac@32khz")
    assert codec.checkpoint_dir() == snap
    wave = _signal(3000, 16000)
    y = codec.resynthesize([wave], 16000)[0]
    assert y.shape == wave.shape and np.isfinite(y).all() and np.any(y != 0)


def test_missing_and_bad_files_are_named(ckpt, tmp_path, hub_cache):
    d = tmp_path / "partial"
    d.mkdir()
    shutil.copy(ckpt["24khz"] / "config.json", d)
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("snac", weights=str(d)).load()
    assert f"{d / 'pytorch_model.bin'} does not exist" in str(err.value) and "--weights snac=" in str(err.value)
    with pytest.raises(CodecUnavailableError, match="24000 Hz model; snac@32khz needs 32000 Hz"):
        create_codec("snac@32khz", weights=str(ckpt["24khz"])).load()
    state = torch.load(ckpt["24khz"] / "pytorch_model.bin", weights_only=True)
    state.pop(next(k for k in state if k.startswith("decoder.")))
    torch.save(state, d / "pytorch_model.bin")
    with pytest.raises(CodecUnavailableError, match=r"1 missing \(e\.g\. decoder\."):
        create_codec("snac", weights=str(d)).load()
    (d / "config.json").write_text(json.dumps(dict(TINY["24khz"], bogus=1)))
    with pytest.raises(CodecUnavailableError, match="'bogus', which snac.SNAC does not take"):
        create_codec("snac", weights=str(d)).load()


def test_legacy_weight_norm_names_load(ckpt, tmp_path, hub_cache):
    d = tmp_path / "legacy"
    shutil.copytree(ckpt["24khz"], d)
    state = torch.load(d / "pytorch_model.bin", weights_only=True)
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
               .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    assert any(k.endswith("weight_g") for k in legacy)
    torch.save(legacy, d / "pytorch_model.bin")
    wave = _signal(3000, 24000)
    a = create_codec("snac", weights=str(d))._resynthesize([wave])[0]
    b = create_codec("snac", weights=str(ckpt["24khz"]))._resynthesize([wave])[0]
    assert np.array_equal(a, b)


def test_missing_package_says_how_to_install(monkeypatch, ckpt):
    monkeypatch.setitem(sys.modules, "snac", None)
    with pytest.raises(CodecUnavailableError, match=r"pip install --no-deps snac==1\.2\.1"):
        create_codec("snac", weights=str(ckpt["24khz"])).load()


def test_metadata_and_listing():
    d = SnacCodec.describe()
    assert {k: (v["bitrate_kbps"], v["sample_rate"], v["frame_size"]) for k, v in d["configs"].items()} == {
        "24khz": (0.98, 24000, 512), "32khz": (1.9, 32000, 384), "44khz": (2.6, 44100, 384)}
    assert "0.984 kbps" in d["configs"]["24khz"]["description"]
    assert "2410.14411" in d["paper"] and "MIT" in d["licence"]
    out = subprocess.run([sys.executable, "-m", "codecfake_build", "codecs", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (entry,) = [c for c in json.loads(out.stdout) if c["name"] == "snac"]
    assert entry["sample_rate"] == 24000 and set(entry["configs"]) == {"24khz", "32khz", "44khz"}


def test_init_random_builds_the_released_architecture():
    codec = create_codec("snac@24khz")
    assert "(19.8 M parameters)" in codec.init_random(seed=0)  # official README: 19.8 M
    wave = _signal(8000, 16000)
    (y,) = codec.resynthesize([wave], 16000)
    assert y.shape == wave.shape and np.isfinite(y).all()

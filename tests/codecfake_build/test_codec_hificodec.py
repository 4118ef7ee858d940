"""hificodec: parity with the official AcademiCodec classes (tests/fixtures/hificodec_reference),
loading official-format checkpoints from disk, weight resolution and its errors, batching."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.base import CodecConfig
from codecfake_build.codecs.hificodec import HiFiCodec

torch = pytest.importorskip("torch")
from safetensors.numpy import load_file  # noqa: E402

from codecfake_build.codecs import _hificodec_net as hn  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hificodec_reference"
TINY_ARCH = json.loads((FIXTURE / "tiny_config.json").read_text())
CKPT = "HiFi-Codec-16k-320d"


def _tiny_official() -> dict[str, dict[str, "torch.Tensor"]]:
    """The fixture's state dict in the official file layout."""
    ckpt: dict[str, dict] = {p: {} for p in hn.PARTS}
    for key, value in load_file(str(FIXTURE / "tiny_official_state.safetensors")).items():
        part, rest = key.split(".", 1)
        ckpt[part][rest] = torch.from_numpy(value)
    return ckpt


def _net_from(flat: dict[str, "torch.Tensor"], arch: hn.HiFiCodecArch) -> hn.HiFiCodecNet:
    net = hn.HiFiCodecNet(arch).eval()
    assert hn.check_official(net, flat) == []
    net.load_state_dict(hn.fold_official_state(flat))
    return net


def _run(net: hn.HiFiCodecNet, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        codes = net.encode(torch.from_numpy(wave)[None])
        return codes[0].numpy(), net.decode(codes)[0].numpy()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These convolutions are small; extra threads only contend on a shared CPU.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---- parity with the official classes --------------------------------------------------
def test_parity_tiny_official_weights():
    io = np.load(FIXTURE / "tiny_io.npz")
    flat = hn.flatten_official(_tiny_official())
    codes, out = _run(_net_from(flat, hn.HiFiCodecArch.from_dict(TINY_ARCH)), io["input"])
    np.testing.assert_array_equal(codes, io["codes"])
    assert out.shape == io["output"].shape
    assert np.abs(out - io["output"]).max() < 1e-4
    assert io["output"].std() > 0.05  # the check is not against near-silence


def test_parity_released_architecture():
    spec = importlib.util.spec_from_file_location("hificodec_weights", FIXTURE / "deterministic_weights.py")
    dw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dw)
    io = np.load(FIXTURE / "released_16k_io.npz")
    arch = hn.HiFiCodecArch()
    # Parameter count of the official classes with egs/HiFi-Codec-16k-320d/config_16k_320d.json
    # (sum of p.numel() over Generator, Encoder and Quantizer at AcademiCodec b6ac1347).
    assert hn.official_parameter_count(arch) == 63_630_882 == int(io["n_values"])
    with torch.device("meta"):
        net = hn.HiFiCodecNet(arch)
    flat = {k: torch.from_numpy(v) for k, v in dw.official_state(hn.official_shapes(net), int(io["seed"])).items()}
    assert hn.check_official(net, flat) == []
    net.load_state_dict(hn.fold_official_state(flat), assign=True)
    codes, out = _run(net.eval(), io["input"])
    np.testing.assert_array_equal(codes, io["codes"])
    assert np.abs(out - io["output"]).max() < 1e-4


# ---- the codec on official-format files ------------------------------------------------
@pytest.fixture
def tiny_config(monkeypatch) -> str:
    """A config with the fixture's architecture that reads the 16k-320d file name."""
    cfg = CodecConfig("tiny", 2.0, {"checkpoint": CKPT, "sample_rate": 16000, "frame_size": 40,
                                    "arch": TINY_ARCH})
    monkeypatch.setitem(HiFiCodec.configs, "tiny", cfg)
    return "hificodec@tiny"


@pytest.fixture
def ckpt_dir(tmp_path) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    torch.save(_tiny_official(), d / CKPT)
    return d


@pytest.fixture
def empty_caches(hub_cache, tmp_path) -> Path:
    """Empty project cache (returned) and an empty, offline HF hub cache."""
    return tmp_path / "codecfake"


def _assert_fixture_output(codec: HiFiCodec) -> None:
    io = np.load(FIXTURE / "tiny_io.npz")
    codes, out = _run(codec.net, io["input"])
    np.testing.assert_array_equal(codes, io["codes"])
    assert np.abs(out - io["output"]).max() < 1e-4
    # codes() pads to whole frames (1,017 -> 1,040 samples), so only its frame count is checked.
    assert codec.codes(io["input"]).shape == (26, 4)


def test_load_from_weights_dir_and_file(tiny_config, ckpt_dir, empty_caches):
    for path in (ckpt_dir, ckpt_dir / CKPT):
        codec = create_codec(tiny_config, weights=str(path))
        codec.load()
        _assert_fixture_output(codec)
        y = codec.resynthesize([np.zeros(777, np.float32) + 0.1], 16000)[0]
        assert y.shape == (777,) and np.isfinite(y).all()


def test_load_from_project_cache(tiny_config, ckpt_dir, empty_caches):
    empty_caches.joinpath("hificodec").mkdir(parents=True)
    (ckpt_dir / CKPT).rename(empty_caches / "hificodec" / CKPT)
    codec = create_codec(tiny_config)
    codec.load()
    _assert_fixture_output(codec)


def test_download_asks_the_hub_for_the_pinned_file(tiny_config, ckpt_dir, empty_caches, monkeypatch):
    from codecfake_build.codecs import weights

    calls = []

    def fake_snapshot(codec, repo_id, explicit=None, revision=None, allow_patterns=None):
        calls.append((codec, repo_id, revision, allow_patterns))
        return ckpt_dir

    monkeypatch.setattr(weights, "hf_snapshot", fake_snapshot)
    codec = create_codec(tiny_config)
    codec.load()
    assert calls == [("hificodec", "Dongchao/AcademiCodec", "827e793904fe43cac45157efc26d0b6920cfda14", [CKPT])]
    _assert_fixture_output(codec)


def test_missing_file_errors_name_the_file(tiny_config, tmp_path, empty_caches):
    with pytest.raises(CodecUnavailableError, match=r"HiFi-Codec-24k-320d is neither in .*hificodec "
                                                    r"nor in the HF cache \(offline mode"):
        create_codec("hificodec@24k-320d").load()
    with pytest.raises(CodecUnavailableError, match=r"HiFi-Codec-16k-320d-large-universal"):
        create_codec("hificodec@16k-320d-large-universal").load()
    with pytest.raises(CodecUnavailableError, match=rf"{tmp_path / 'nowhere' / CKPT} does not exist"):
        create_codec(tiny_config, weights=str(tmp_path / "nowhere")).load()


def test_wrong_rate_file_is_refused(tmp_path, empty_caches):
    f = tmp_path / "HiFi-Codec-24k-320d"
    f.write_bytes(b"")
    with pytest.raises(CodecUnavailableError, match="is the HiFi-Codec-24k-320d checkpoint, but hificodec@16k-320d"):
        create_codec("hificodec@16k-320d", weights=str(f)).load()


def test_incomplete_or_foreign_checkpoints_are_refused(tiny_config, tmp_path, empty_caches):
    good = _tiny_official()
    cases = {
        "missing": ({**good, "encoder": {k: v for k, v in good["encoder"].items() if k != "conv_post.bias"}},
                    r"missing encoder.conv_post.bias"),
        "shape": ({**good, "quantizer": {**good["quantizer"],
                                         "quantizer_modules.0.embedding.weight": torch.zeros(3, 32)}},
                  r"quantizer.quantizer_modules.0.embedding.weight has shape \(3, 32\), expected \(64, 32\)"),
        "nopart": ({"generator": good["generator"]}, r"no 'encoder' state dict"),
    }
    for name, (ckpt, pattern) in cases.items():
        d = tmp_path / name
        d.mkdir()
        torch.save(ckpt, d / CKPT)
        with pytest.raises(CodecUnavailableError, match=pattern):
            create_codec(tiny_config, weights=str(d)).load()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / CKPT).write_bytes(b"not a checkpoint")
    with pytest.raises(CodecUnavailableError, match=rf"cannot read .*{CKPT} as a HiFi-Codec checkpoint"):
        create_codec(tiny_config, weights=str(tmp_path / "junk")).load()


# ---- batching ----------------------------------------------------------------------------
def test_batched_equals_one_at_a_time(tiny_config, ckpt_dir, empty_caches):
    codec = create_codec(tiny_config, weights=str(ckpt_dir))
    rng = np.random.default_rng(0)
    lengths = [1000, 1300, 1000, 985, 333, 1300]  # 985 pads to 1000: shares a pass with the 1000s
    waves = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    groups = codec._groups(lengths)
    assert sorted(map(sorted, groups)) == [[0, 2, 3], [1, 5], [4]]
    batched = codec._resynthesize(waves)
    for w, y in zip(waves, batched):
        single = codec._resynthesize([w])[0]
        assert y.shape == single.shape == w.shape
        assert np.abs(y - single).max() < 1e-4
        assert y.std() > 0.01


def test_padding_changes_the_whole_output(tiny_config, ckpt_dir, empty_caches):
    """Why clips of different padded lengths never share a pass: the encoder's GroupNorms
    average over the clip, so extra padding changes the output even at its start."""
    codec = create_codec(tiny_config, weights=str(ckpt_dir))
    codec.load()
    w = np.load(FIXTURE / "tiny_io.npz")["input"][:1000]
    with torch.inference_mode():
        alone = codec.net(torch.from_numpy(w)[None])[0].numpy()
        padded = codec.net(torch.from_numpy(np.pad(w, (0, 400)))[None])[0, :1000].numpy()
    assert np.abs(alone[:200] - padded[:200]).max() > 1e-3


# ---- released architecture and listing ------------------------------------------------------
def test_init_random_builds_the_released_architecture():
    codec = create_codec("hificodec@24k-320d")
    msg = codec.init_random(seed=0)
    assert msg == "random init, HiFi-Codec-24k-320d architecture (63.6 M parameters)"
    y = codec.resynthesize([np.zeros(640, np.float32) + 0.01], 24000)[0]
    assert y.shape == (640,) and np.isfinite(y).all()


def test_cli_lists_hificodec():
    out = subprocess.run([sys.executable, "-m", "codecfake_build", "codecs", "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    entry = next(c for c in (data if isinstance(data, list) else data.values()) if c["name"] == "hificodec")
    assert entry["sample_rate"] == 16000
    assert {k: (v["bitrate_kbps"], v["sample_rate"]) for k, v in entry["configs"].items()} == {
        "16k-320d": (2.0, 16000), "16k-320d-large-universal": (2.0, 16000), "24k-320d": (3.0, 24000)}

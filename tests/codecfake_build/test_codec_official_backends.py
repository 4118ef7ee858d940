"""encodec-official and dac-official: the optional backends on Meta's ``encodec`` and
Descript's ``descript-audio-codec`` packages.  Neither package can run here (both import
torchaudio), so: (1) loading them for real must fail with a one-line reason and fix;
(2) the glue (weight resolution, the documented calls, batching, trimming) is tested
against stand-in modules with the packages' interface.  The real packages are not run."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.dac import DacCodec
from codecfake_build.codecs.dac_official import DacOfficialCodec
from codecfake_build.codecs.encodec import EncodecCodec
from codecfake_build.codecs.encodec_official import EncodecOfficialCodec

torch = pytest.importorskip("torch")


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "codecfake"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torchhub"))
    monkeypatch.delenv("CODECFAKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


# ---- the real packages cannot load here: clear one-line errors --------------------------------
@pytest.mark.parametrize("spec,module,alt", [("encodec-official", "encodec", "--codec encodec"),
                                             ("dac-official@44khz", "dac", "--codec dac")])
def test_unavailable_package_gives_reason_and_fix(spec, module, alt, env, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed, whatever this machine has
    with pytest.raises(CodecUnavailableError) as err:
        create_codec(spec).load()
    msg = str(err.value)
    assert "\n" not in msg and f"'{module}'" in msg and alt in msg and "torchaudio" in msg


@pytest.mark.parametrize("spec,module", [("encodec-official", "encodec"), ("dac-official", "dac")])
def test_a_torchaudio_failure_inside_the_package_is_reported(spec, module, env, monkeypatch):
    real = importlib.import_module

    def failing(name, *a, **k):
        if name == module:
            err = ModuleNotFoundError("No module named 'torchaudio'")
            err.name = "torchaudio"
            raise err
        return real(name, *a, **k)

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(importlib, "import_module", failing)
    with pytest.raises(CodecUnavailableError, match=r"No module named 'torchaudio'\)\. Fix: use --codec"):
        create_codec(spec).load()


def test_dac_official_mentions_the_protobuf_pin(env, monkeypatch):
    monkeypatch.setitem(sys.modules, "dac", None)
    with pytest.raises(CodecUnavailableError, match=r"protobuf<3\.20"):
        create_codec("dac-official").load()


def test_same_configs_as_the_transformers_backends():
    assert EncodecOfficialCodec.configs is EncodecCodec.configs
    assert DacOfficialCodec.configs is DacCodec.configs
    assert EncodecOfficialCodec.describe()["configs"] == {
        k: {**v} for k, v in EncodecCodec.describe()["configs"].items()}
    assert "dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th" in EncodecOfficialCodec.weights_source
    assert "releases/download/0.0.5/weights_16khz.pth" in DacOfficialCodec.weights_source


# ---- stand-in encodec package ------------------------------------------------------------------
class _FakeEncodecModel(torch.nn.Module):
    """The documented surface of encodec.EncodecModel; output = a fixed nonlinearity of the
    input with a bandwidth-dependent gain, two extra samples (trimmed by forward)."""

    loads: list = []

    def __init__(self, rate: int, channels: int, bandwidths: list[float]):
        super().__init__()
        self.sample_rate, self.channels, self.target_bandwidths = rate, channels, bandwidths
        self.bandwidth = None
        self.seen: list = []

    @staticmethod
    def _get(name: str, repository, rate, channels, bws):
        assert repository is None or (repository / name).is_file()
        _FakeEncodecModel.loads.append(repository)
        return _FakeEncodecModel(rate, channels, bws)

    @staticmethod
    def encodec_model_24khz(pretrained=True, repository=None):
        return _FakeEncodecModel._get("encodec_24khz-d7cc33bc.th", repository, 24000, 1, [1.5, 3., 6, 12., 24.])

    @staticmethod
    def encodec_model_48khz(pretrained=True, repository=None):
        return _FakeEncodecModel._get("encodec_48khz-7e698e3e.th", repository, 48000, 2, [3., 6., 12., 24.])

    def set_target_bandwidth(self, bandwidth):
        if bandwidth not in self.target_bandwidths:
            raise ValueError(f"unsupported {bandwidth}")
        self.bandwidth = bandwidth

    def forward(self, x):
        assert x.dim() == 3 and x.shape[1] == self.channels
        self.seen.append(tuple(x.shape))
        y = torch.tanh(3 * x) * (self.bandwidth / 24) + 0.01 * torch.arange(x.shape[1])[None, :, None]
        return torch.cat([y, y[..., :2]], dim=-1)[..., : x.shape[-1]]


@pytest.fixture
def fake_encodec(monkeypatch):
    mod = types.ModuleType("encodec")
    mod.EncodecModel = _FakeEncodecModel
    monkeypatch.setitem(sys.modules, "encodec", mod)
    _FakeEncodecModel.loads = []
    return mod


def test_encodec_official_weight_resolution(fake_encodec, env, monkeypatch):
    d = env / "w"
    d.mkdir()
    with pytest.raises(CodecUnavailableError, match=f"{d / 'encodec_24khz-d7cc33bc.th'} does not exist"):
        create_codec("encodec-official", weights=str(d)).load()
    (d / "encodec_24khz-d7cc33bc.th").write_bytes(b"x")
    create_codec("encodec-official", weights=str(d)).load()
    create_codec("encodec-official", weights=str(d / "encodec_24khz-d7cc33bc.th")).load()
    assert _FakeEncodecModel.loads == [d, d]
    # Nothing anywhere, offline: the exact file is named.
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    with pytest.raises(CodecUnavailableError, match="encodec_48khz-7e698e3e.th is not in .* nor in torch hub"):
        create_codec("encodec-official@48khz-6kbps").load()
    # torch hub's cache: the package loads it itself (repository None), no network.
    hub = env / "torchhub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "encodec_48khz-7e698e3e.th").write_bytes(b"x")
    create_codec("encodec-official@48khz-6kbps").load()
    cache = env / "codecfake" / "encodec-official"
    cache.mkdir(parents=True)
    (cache / "encodec_24khz-d7cc33bc.th").write_bytes(b"x")
    create_codec("encodec-official@3kbps").load()
    assert _FakeEncodecModel.loads[2:] == [None, cache]


def test_encodec_official_load_errors_are_one_line(fake_encodec, env, monkeypatch):
    def broken(pretrained=True, repository=None):
        raise RuntimeError("Error(s) in loading state_dict for EncodecModel:\n\tMissing key(s)")

    monkeypatch.setattr(_FakeEncodecModel, "encodec_model_24khz", staticmethod(broken))
    d = env / "w"
    d.mkdir()
    (d / "encodec_24khz-d7cc33bc.th").write_bytes(b"x")
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("encodec-official", weights=str(d)).load()
    assert "\n" not in str(err.value) and "Error(s) in loading state_dict" in str(err.value)


def test_encodec_official_calls_and_batching(fake_encodec, env):
    d = env / "w"
    d.mkdir()
    for f in ("encodec_24khz-d7cc33bc.th", "encodec_48khz-7e698e3e.th"):
        (d / f).write_bytes(b"x")
    rng = np.random.default_rng(0)
    waves = [0.3 * rng.standard_normal(n).astype(np.float32) for n in (1000, 700, 1000, 333)]
    codec = create_codec("encodec-official@12kbps", weights=str(d))
    out = codec._resynthesize(waves)
    assert codec.model.bandwidth == 12.0
    assert sorted(codec.model.seen) == [(1, 1, 333), (1, 1, 700), (2, 1, 1000)]  # equal lengths only
    for y, w in zip(out, waves):
        np.testing.assert_allclose(y, np.tanh(3 * w) * 0.5, atol=1e-6)
    stereo = create_codec("encodec-official@48khz-24kbps", weights=str(d))
    (y,) = stereo._resynthesize([waves[1]])
    assert stereo.model.seen == [(1, 2, 700)]  # mono clip on both channels, mixed back to mono
    np.testing.assert_allclose(y, np.tanh(3 * waves[1]) + 0.005, atol=1e-6)
    full = stereo.resynthesize([waves[0]], 16000)[0]
    assert full.shape == waves[0].shape


# ---- stand-in dac package ---------------------------------------------------------------------
class _FakeDAC(torch.nn.Module):
    """dac.DAC's documented surface: preprocess pads to whole hops, encode returns a tuple
    whose first item is z, decode returns 8 samples fewer than it got (the 16/24 kHz case)."""

    def __init__(self, rate: int, hop: int):
        super().__init__()
        self.sample_rate, self.hop_length = rate, hop
        self.seen: list = []

    @classmethod
    def load(cls, path):
        rate = {"16khz": 16000, "24khz": 24000, "44khz": 44100}[Path(path).read_text()]
        return cls(rate, 512 if rate == 44100 else 320)

    def preprocess(self, audio, sample_rate):
        assert sample_rate == self.sample_rate
        return torch.nn.functional.pad(audio, (0, -audio.shape[-1] % self.hop_length))

    def encode(self, audio):
        assert audio.shape[-1] % self.hop_length == 0
        self.seen.append(tuple(audio.shape))
        return 2 * audio, None, None, 0.0, 0.0

    def decode(self, z):
        return torch.tanh(z)[..., : z.shape[-1] - 8]


@pytest.fixture
def fake_dac(monkeypatch, env):
    downloads = []

    def download(model_type="44khz", model_bitrate="8kbps", tag="latest"):
        tags = {"44khz": "0.0.1", "24khz": "0.0.4", "16khz": "0.0.5"}
        p = env / "home" / ".cache" / "descript" / "dac" / f"weights_{model_type}_{model_bitrate}_{tags[model_type]}.pth"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(model_type)
        downloads.append(model_type)
        return p

    mod = types.ModuleType("dac")
    mod.DAC = _FakeDAC
    mod.utils = types.SimpleNamespace(download=download)
    monkeypatch.setitem(sys.modules, "dac", mod)
    return downloads


def test_dac_official_weight_resolution(fake_dac, env, monkeypatch):
    d = env / "w"
    d.mkdir()
    with pytest.raises(CodecUnavailableError, match=f"{d / 'weights_16khz_8kbps_0.0.5.pth'} does not exist"):
        create_codec("dac-official", weights=str(d)).load()
    (d / "weights_16khz.pth").write_text("16khz")  # the release asset's own name
    assert create_codec("dac-official", weights=str(d)).weights_file() == d / "weights_16khz.pth"
    create_codec("dac-official", weights=str(d)).load()
    (d / "other.pth").write_text("24khz")
    with pytest.raises(CodecUnavailableError, match="24000 Hz DAC; dac-official@16khz needs 16000 Hz"):
        create_codec("dac-official", weights=str(d / "other.pth")).load()
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    with pytest.raises(CodecUnavailableError, match="weights_44khz_8kbps_0.0.1.pth is not in"):
        create_codec("dac-official@44khz").load()
    monkeypatch.delenv("CODECFAKE_OFFLINE")
    codec = create_codec("dac-official@44khz")
    codec.load()  # online: the package's own download, into its own cache
    assert fake_dac == ["44khz"] and codec.model.sample_rate == 44100
    assert create_codec("dac-official@44khz").weights_file().name == "weights_44khz_8kbps_0.0.1.pth"


def test_dac_official_calls_and_batching(fake_dac, env):
    rng = np.random.default_rng(1)
    waves = [0.3 * rng.standard_normal(n).astype(np.float32) for n in (700, 650, 1000, 100)]
    codec = create_codec("dac-official@24khz")
    out = codec._resynthesize(waves)
    # Padded to whole 320-sample frames; equal padded lengths share a pass.
    assert sorted(codec.model.seen) == [(1, 1, 320), (1, 1, 1280), (2, 1, 960)]
    for y, w in zip(out, waves):
        n = min(len(w), -(-len(w) // 320) * 320 - 8)
        assert len(y) == n
        np.testing.assert_allclose(y, np.tanh(2 * w[:n]), atol=1e-6)
    (y,) = codec.resynthesize([waves[2]], 24000)  # the framework zero-fills the last samples
    assert y.shape == (1000,)

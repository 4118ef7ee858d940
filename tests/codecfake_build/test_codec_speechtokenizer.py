"""speechtokenizer through the official PyPI package (1.0.1): a tiny random model built by
the package and saved in the hub's layout (speechtokenizer_hubert_avg/config.json +
SpeechTokenizer.pt), loaded through --weights, the project cache and the HF cache
layout; output compared with the package's own loader and encode/decode calls."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codecfake_build.codecs import CodecUnavailableError, create_codec
from codecfake_build.codecs.speechtokenizer import RELEASED_CONFIG, SpeechTokenizerCodec, import_model_class

torch = pytest.importorskip("torch")
pytest.importorskip("einops")
if __import__("importlib.util").util.find_spec("speechtokenizer") is None:
    pytest.skip("speechtokenizer package not installed", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Real strides, rate and codebook size (so hop, frame rate and bitrates are real); a few
# channels and one LSTM layer keep a clip well under a second.
TINY = dict(RELEASED_CONFIG, n_filters=2, dimension=8, semantic_dimension=4, lstm_layers=1)
# Training-only keys of the released config.json, which loading must ignore.
TRAINING_KEYS = {"num_mels": 80, "learning_rate": 1e-4, "semantic_model_layer": "avg"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CI machine is shared; one intra-op thread keeps these tiny models fast and steady."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    """A speech-like test signal (harmonics with a moving pitch and noise); real speech is
    used where ../shared is present."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _write_checkpoint(root: Path) -> Path:
    """A random SpeechTokenizer built by the package, saved as the hub repo lays it out."""
    torch.manual_seed(0)
    model = import_model_class()(TINY)
    with torch.no_grad():
        # Codebooks at the encoder's output scale (the package starts them at zero and fills
        # them by k-means in training), so the codes depend on the audio.
        scale = model.encoder(torch.from_numpy(_speech(0.5))[None, None]).std()
        for name, buf in model.named_buffers():
            if name.endswith("_codebook.embed"):
                buf.normal_(0.0, float(scale))
            elif name.endswith("_codebook.inited"):
                buf.fill_(1.0)
        # A louder last layer puts the output near speech level, so a 1e-4 tolerance is tight.
        for p in model.decoder.model[-1].parameters():
            p.mul_(30.0)
    d = root / "speechtokenizer_hubert_avg"
    d.mkdir(parents=True)
    torch.save(model.state_dict(), d / "SpeechTokenizer.pt")
    (d / "config.json").write_text(json.dumps({**TINY, **TRAINING_KEYS}, indent=4))
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _write_checkpoint(tmp_path_factory.mktemp("st") / "SpeechTokenizer")


def _package_reference(ckpt: Path, wave: np.ndarray, n_q: int) -> np.ndarray:
    """The package's own loader and encode/decode on the clip zero-padded to whole frames."""
    d = ckpt / "speechtokenizer_hubert_avg"
    model = import_model_class().load_from_checkpoint(str(d / "config.json"), str(d / "SpeechTokenizer.pt"))
    model.eval()
    n = -(-len(wave) // 320) * 320
    x = torch.zeros(1, 1, n)
    x[0, 0, : len(wave)] = torch.from_numpy(wave)
    with torch.inference_mode():
        y = model.decode(model.encode(x, n_q=n_q))
    return y[0, 0, : len(wave)].numpy()


def test_importing_skips_the_trainer_and_torchaudio():
    code = ("import sys; from codecfake_build.codecs.speechtokenizer import import_model_class; "
            "import_model_class(); bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torchaudio', 'accelerate', 'beartype', 'lion_pytorch') or m == 'speechtokenizer.trainer'];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_matches_the_package_on_its_own_checkpoint(ckpt, hub_cache):
    wave = _speech(0.7)[:11111]  # not a whole number of frames
    for cfg, n_q in (("nq8", 8), ("nq2", 2)):
        codec = create_codec(f"speechtokenizer@{cfg}", weights=str(ckpt))
        (ours,) = codec._resynthesize([wave])
        ref = _package_reference(ckpt, wave, n_q)
        assert ours.shape == wave.shape and 0.05 < float(np.std(ref)) < 2
        np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
        assert codec.codes(wave).shape == (n_q, 35)  # ceil(11111 / 320) frames


def test_quantiser_count_changes_the_output(ckpt, hub_cache):
    wave = _speech(0.4)
    outs = [create_codec(f"speechtokenizer@{c}", weights=str(ckpt))._resynthesize([wave])[0]
            for c in ("nq1", "nq8")]
    assert np.max(np.abs(outs[0] - outs[1])) > 1e-3


def test_weights_path_forms_and_cache(ckpt, tmp_path, hub_cache):
    sub = ckpt / "speechtokenizer_hubert_avg"
    for explicit in (ckpt, sub, sub / "SpeechTokenizer.pt"):
        assert create_codec("speechtokenizer", weights=str(explicit)).checkpoint_dir() == sub
    # The project cache, flat or in the hub's sub-folder.
    cache = tmp_path / "codecfake" / "speechtokenizer"
    shutil.copytree(sub, cache)
    codec = create_codec("speechtokenizer@nq4")
    assert codec.checkpoint_dir() == cache
    wave = _speech(0.3)
    y = codec.resynthesize([wave], 16000)[0]
    assert y.shape == wave.shape and np.isfinite(y).all() and np.any(y != 0)


def test_hf_cache_layout(ckpt, hub_cache):
    repo = hub_cache / "models--fnlp--SpeechTokenizer"
    snap = repo / "snapshots" / COMMIT
    shutil.copytree(ckpt / "speechtokenizer_hubert_avg", snap / "speechtokenizer_hubert_avg")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    assert create_codec("speechtokenizer").checkpoint_dir() == snap / "speechtokenizer_hubert_avg"


def test_missing_files_are_named(ckpt, tmp_path, hub_cache):
    with pytest.raises(CodecUnavailableError, match="fnlp/SpeechTokenizer is not in the HF cache"):
        create_codec("speechtokenizer").load()
    d = tmp_path / "partial" / "speechtokenizer_hubert_avg"
    d.mkdir(parents=True)
    shutil.copy(ckpt / "speechtokenizer_hubert_avg" / "config.json", d)
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("speechtokenizer", weights=str(d.parent)).load()
    msg = str(err.value)
    assert f"{d / 'SpeechTokenizer.pt'} does not exist" in msg and "--weights speechtokenizer=" in msg


def test_incomplete_or_foreign_checkpoints_are_refused(ckpt, tmp_path, hub_cache):
    src = ckpt / "speechtokenizer_hubert_avg"
    d = tmp_path / "cut"
    shutil.copytree(src, d)
    state = torch.load(d / "SpeechTokenizer.pt", weights_only=True)
    state.pop(next(k for k in state if k.startswith("decoder.")))
    torch.save(state, d / "SpeechTokenizer.pt")
    with pytest.raises(CodecUnavailableError, match=r"1 missing \(e\.g\. decoder\."):
        create_codec("speechtokenizer", weights=str(d)).load()
    cfg = json.loads((src / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(cfg, n_filters=4)))
    shutil.copy(src / "SpeechTokenizer.pt", d)
    with pytest.raises(CodecUnavailableError, match="mis-shaped"):
        create_codec("speechtokenizer", weights=str(d)).load()
    (d / "config.json").write_text(json.dumps(dict(cfg, n_q=2)))
    with pytest.raises(CodecUnavailableError, match="has 2 RVQ layers but speechtokenizer@nq8 uses 8"):
        create_codec("speechtokenizer", weights=str(d)).load()
    (d / "config.json").write_text(json.dumps(dict(cfg, sample_rate=24000)))
    with pytest.raises(CodecUnavailableError, match="24000 Hz model"):
        create_codec("speechtokenizer", weights=str(d)).load()


def test_missing_package_says_how_to_install(monkeypatch, ckpt):
    for mod in ("speechtokenizer", "speechtokenizer.model"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(CodecUnavailableError, match=r"pip install --no-deps speechtokenizer==1\.0\.1"):
        create_codec("speechtokenizer", weights=str(ckpt)).load()


def test_batched_equals_one_at_a_time(ckpt, hub_cache):
    base = _speech(1.0, seed=1)
    # Unsorted, different lengths; two share a padded length (7 frames) and one pass.
    waves = [base[:4001], base[3000:3000 + 2100], base[500:500 + 2200], base[:1603]]
    codec = create_codec("speechtokenizer@nq8", weights=str(ckpt))
    codec.load()
    passes = []
    inner = codec._codes_and_audio
    codec._codes_and_audio = lambda ws: passes.append(len(ws)) or inner(ws)
    raw = codec._resynthesize(waves)
    assert sorted(passes) == [1, 1, 2]
    single = [codec._resynthesize([w])[0] for w in waves]
    for b, s, w in zip(raw, single, waves):
        assert b.shape == s.shape == w.shape
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)
    out = codec.resynthesize(waves, 16000)
    for y, w in zip(out, waves):
        assert y.shape == w.shape and np.max(np.abs(y)) <= 0.99 + 1e-6


def test_real_speech_roundtrip(ckpt, shared, hub_cache):
    import soundfile as sf

    x, sr = sf.read(str(shared / "data" / "speech" / "en" / "arctic" / "arctic_a0007.wav"), dtype="float32")
    x = x[: int(0.8 * sr)]
    codec = create_codec("speechtokenizer@nq8", weights=str(ckpt))
    (y,) = codec.resynthesize([x], sr, out_sr=24000)
    assert len(y) == int(round(len(x) * 24000 / sr)) and np.isfinite(y).all() and np.any(y != 0)


def test_metadata_and_listing():
    d = SpeechTokenizerCodec.describe()
    assert d["sample_rate"] == 16000 and d["frame_size"] == 320 and d["default_config"] == "nq8"
    assert {k: v["bitrate_kbps"] for k, v in d["configs"].items()} == {f"nq{n}": n * 0.5 for n in range(1, 9)}
    assert "2308.16692" in d["paper"] and "fnlp/SpeechTokenizer" in d["weights_source"]
    out = subprocess.run([sys.executable, "-m", "codecfake_build", "codecs", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (entry,) = [c for c in json.loads(out.stdout) if c["name"] == "speechtokenizer"]
    assert entry["sample_rate"] == 16000 and set(entry["configs"]) == {f"nq{n}" for n in range(1, 9)}


def test_init_random_builds_the_released_architecture():
    codec = create_codec("speechtokenizer@nq8")
    desc = codec.init_random(seed=0)
    # 166 tensors as in the released SpeechTokenizer.pt; 103.7 M parameters (computed).
    assert "(103.7 M parameters)" in desc and len(codec.model.state_dict()) == 166
    wave = _speech(0.5)
    (y,) = codec.resynthesize([wave], 16000)
    assert y.shape == wave.shape and np.isfinite(y).all()

"""FunCodec: parity with the official implementation (tiny random models, fixture made
by the official code), loading official-format checkpoint directories, errors,
batching, configs and the released architecture."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from codecfake_build.codecs.base import CodecUnavailableError, create_codec
from codecfake_build.codecs.funcodec import CHECKPOINTS, FunCodecCodec

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "funcodec_reference"
REPO_DS320 = "alibaba-damo/audio_codec-encodec-en-libritts-16k-nq32ds320-pytorch"
REPO_GR1 = "alibaba-damo/audio_codec-freqcodec_magphase-en-libritts-16k-gr1nq32ds320-pytorch"
FREQ_CASES = ["freq_gn_gr1", "freq_wn_causal"]


def _official_dir(d: Path, case: str, state_edit=None) -> Path:
    """An official-format checkpoint directory (config.yaml + pickled model.pth) holding the
    fixture model plus the training-only tensors a released model.pth also carries."""
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE / f"{case}.config.yaml", d / "config.yaml")
    state = load_file(str(FIXTURE / f"{case}.model.safetensors"))
    state["discriminator.discriminators.0.convs.0.weight"] = torch.zeros(2, 2, 3, 9)
    state["mel_spec_transforms.0.mel_basis"] = torch.zeros(64, 17)
    if state_edit is not None:
        state = state_edit(state)
    torch.save(state, d / "model.pth")
    return d


@pytest.fixture
def offline(hub_cache, tmp_path) -> Path:
    """Empty project cache (returned) and an empty, offline HF hub cache."""
    return tmp_path / "codecfake"


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def freq_ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "freq_reference.npz") as d:
        return {k: d[k] for k in d.files}


# ---- parity with the official implementation ---------------------------------------------------
@pytest.mark.parametrize("case", ["gn", "wn_causal"])
@pytest.mark.parametrize("n_q", [2, 4])
def test_matches_official_funcodec(case, n_q, ref, tmp_path, offline):
    codec = create_codec(f"funcodec@en-libritts-ds320-nq{n_q}", weights=str(_official_dir(tmp_path / case, case)))
    codec.load()
    speech = ref["speech"]
    codes = np.stack([codec.codes(w) for w in speech], axis=1)
    np.testing.assert_array_equal(codes, ref[f"{case}_nq{n_q}_codes"])
    expected = ref[f"{case}_nq{n_q}_recon"][:, 0]
    assert expected.std() > 0.05  # the fixture is loud enough for 1e-4 to mean something
    # _resynthesize is the codec's whole model path (both clips have one length: one pass).
    got = np.stack(codec._resynthesize(list(speech)))
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-4


def test_per_layer_codebook_layout_loads_too(ref, tmp_path, offline):
    """Checkpoints trained with use_ddp: false store one codebook module per layer."""
    def per_layer(state):
        out = {k: v for k, v in state.items() if not k.startswith("quantizer.rq.model.")}
        for name in ("inited", "cluster_size", "embed", "embed_avg"):
            for i, t in enumerate(state[f"quantizer.rq.model.{name}"]):
                out[f"quantizer.rq.model.layers.{i}._codebook.{name}"] = t.reshape(-1) if name == "inited" else t
        return out

    codec = create_codec("funcodec@en-libritts-ds320-nq4", weights=str(_official_dir(tmp_path, "gn", per_layer)))
    got = np.stack(codec._resynthesize(list(ref["speech"])))
    assert np.max(np.abs(got - ref["gn_nq4_recon"][:, 0])) < 1e-4


# ---- weight resolution and errors ----------------------------------------------------------------
def test_loads_from_project_cache(ref, offline):
    _official_dir(offline / "funcodec" / REPO_DS320.split("/")[1], "gn")
    codec = create_codec("funcodec@en-libritts-ds320-nq2")
    assert codec.checkpoint_dir() == offline / "funcodec" / REPO_DS320.split("/")[1]
    (y,) = codec.resynthesize([ref["speech"][0]], 16000)
    assert y.shape == ref["speech"][0].shape and np.isfinite(y).all() and np.any(y != 0)


def test_offline_without_weights_names_repo_and_fix(offline):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec("funcodec").load()
    msg = str(err.value)
    assert REPO_DS320 in msg and "--weights funcodec=" in msg and "config.yaml and model.pth" in msg


def test_missing_model_file_is_named(tmp_path, offline):
    d = _official_dir(tmp_path / "ck", "gn")
    codec = create_codec("funcodec@en-libritts-ds320-nq2", weights=str(d / "model.pth"))
    assert codec.checkpoint_dir() == d  # a path to model.pth means its folder
    (d / "model.pth").unlink()
    with pytest.raises(CodecUnavailableError, match=r"ck/model\.pth does not exist"):
        create_codec("funcodec", weights=str(d)).load()
    (d / "config.yaml").unlink()
    with pytest.raises(CodecUnavailableError, match=r"ck/config\.yaml does not exist"):
        create_codec("funcodec", weights=str(d)).load()


def test_incomplete_or_foreign_checkpoints_are_refused(tmp_path, offline):
    cut = _official_dir(tmp_path / "cut", "gn",
                        lambda s: {k: v for k, v in s.items() if k != "decoder.model.0.conv.conv.weight"})
    with pytest.raises(CodecUnavailableError, match="not a complete checkpoint.*decoder.model.0.conv.conv.weight"):
        create_codec("funcodec@en-libritts-ds320-nq4", weights=str(cut)).load()
    full = _official_dir(tmp_path / "full", "gn")
    with pytest.raises(CodecUnavailableError, match="hop 320.*needs 16000 Hz and hop 640"):
        create_codec("funcodec@en-libritts-ds640-nq4", weights=str(full)).load()
    with pytest.raises(CodecUnavailableError, match="has 4 quantisers but .* needs 32"):
        create_codec("funcodec@en-libritts-ds320-nq32", weights=str(full)).load()
    (full / "config.yaml").write_text((full / "config.yaml").read_text().replace("model: encodec", "model: freq_codec"))
    with pytest.raises(CodecUnavailableError, match="config.yaml: not a usable FunCodec config.*freq_codec"):
        create_codec("funcodec@en-libritts-ds320-nq4", weights=str(full)).load()
    (full / "model.pth").write_bytes(b"not a checkpoint")
    (full / "config.yaml").write_bytes((FIXTURE / "gn.config.yaml").read_bytes())
    with pytest.raises(CodecUnavailableError, match=r"cannot read .*model\.pth"):
        create_codec("funcodec@en-libritts-ds320-nq4", weights=str(full)).load()


# ---- batching ------------------------------------------------------------------------------------------
def test_batched_equals_one_at_a_time(ref, tmp_path, offline):
    x = np.concatenate([ref["speech"][0], ref["speech"][1] * 5])
    waves = [x[100:100 + 4001], x[2000:2000 + 1603], x[:4001] * 0.5, x[5000:5000 + 2807]]
    codec = create_codec("funcodec@en-libritts-ds320-nq4", weights=str(_official_dir(tmp_path, "gn")))
    codec.load()
    passes, raw = [], []
    forward, resynth = codec.model.forward, codec._resynthesize
    codec.model.forward = lambda w, n: passes.append(w.shape[0]) or forward(w, n)
    codec._resynthesize = lambda batch: raw.append(resynth(batch)) or raw[-1]
    batched = codec.resynthesize(waves, 16000)
    # Padding would change a clip (GroupNorm over time, whole-clip RMS): equal lengths only.
    assert sorted(passes) == [1, 1, 2]
    single = [codec.resynthesize([w], 16000)[0] for w in waves]
    for b, s in [*zip(batched, single), *zip(raw[0], [r[0] for r in raw[1:]])]:
        assert b.shape == s.shape
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_groups_are_equal_length_and_capped():
    codec = create_codec("funcodec")
    codec.max_batch_seconds = 2.0
    assert codec._groups([16000, 100, 16000, 16000, 100]) == [[1, 4], [0, 2], [3]]


def test_short_and_silent_clips(tmp_path, offline):
    codec = create_codec("funcodec@en-libritts-ds320-nq4", weights=str(_official_dir(tmp_path, "gn")))
    waves = [np.zeros(16000, np.float32), (0.1 * np.sin(np.arange(50))).astype(np.float32)]
    out = codec.resynthesize(waves, 16000)
    assert [len(y) for y in out] == [16000, 50]
    assert np.all(np.isfinite(out[0])) and np.max(np.abs(out[0])) < 1e-6  # silence stays silent
    assert np.all(np.isfinite(out[1]))


# ---- configs, listing, released architecture ------------------------------------------------------
def test_configs_and_bitrates():
    cfgs = FunCodecCodec.configs
    assert len(CHECKPOINTS) == 6 and FunCodecCodec.default_config == "en-libritts-ds320-nq32"
    assert {k: c.bitrate_kbps for k, c in cfgs.items() if k.startswith("en-libritts")} == {
        "en-libritts-ds320-nq1": 0.5, "en-libritts-ds320-nq2": 1.0, "en-libritts-ds320-nq4": 2.0,
        "en-libritts-ds320-nq8": 4.0, "en-libritts-ds320-nq16": 8.0, "en-libritts-ds320-nq32": 16.0,
        "en-libritts-ds640-nq2": 0.5, "en-libritts-ds640-nq4": 1.0, "en-libritts-ds640-nq8": 2.0,
        "en-libritts-ds640-nq16": 4.0, "en-libritts-ds640-nq32": 8.0}
    assert cfgs["zh_en-general-ds640-nq32"].params["repo"] == (
        "alibaba-damo/audio_codec-encodec-zh_en-general-16k-nq32ds640-pytorch")
    assert create_codec("funcodec@zh_en-general-ds640-nq8").native_frame_size == 640


def test_listed_by_the_cli():
    out = subprocess.run([sys.executable, "-m", "codecfake_build", "codecs", "--json"],
                         capture_output=True, text=True, check=True).stdout
    (entry,) = [c for c in json.loads(out) if c["name"] == "funcodec"]
    assert entry["sample_rate"] == 16000 and entry["configs"]["en-libritts-ds320-nq32"]["bitrate_kbps"] == 16.0
    assert entry["configs"]["freqcodec-en-libritts-gr8-ds320-nq16"]["bitrate_kbps"] == 8.0


@pytest.mark.parametrize("spec,n_params", [("funcodec@en-libritts-ds320-nq8", 14_855_843),
                                           ("funcodec@zh_en-general-ds640-nq8", 57_549_987)])
def test_init_random_builds_the_released_architecture(spec, n_params):
    # Counts of the official classes built from the official recipe values
    # (egs/LibriTTS/codec/conf/encodec_16k_n32_600k_step{,_ds640}.yaml, FunCodec 3435d87).
    codec = create_codec(spec)
    desc = codec.init_random(seed=0)
    assert codec.parameter_count() == n_params
    assert f"({n_params / 1e6:.2f} M parameters)" in desc
    if "ds320" in spec:
        wave = (0.1 * np.sin(np.linspace(0, 80, 4000))).astype(np.float32)  # 0.25 s keeps this quick
        (y,) = codec.resynthesize([wave], 16000)
        assert y.shape == wave.shape and np.isfinite(y).all()
        assert codec.codes(wave).shape == (8, 13)  # 12.5 frames, the last one padded


# ---- FreqCodec (frequency domain) ------------------------------------------------------------------
def _freq_spec(n_q: int = 4, group: int = 1) -> str:
    return f"funcodec@freqcodec-en-libritts-gr{group}-ds320-nq{n_q}"


@pytest.mark.parametrize("case", FREQ_CASES)
@pytest.mark.parametrize("n_q", [2, 4])
def test_freqcodec_matches_official_funcodec(case, n_q, freq_ref, tmp_path, offline):
    codec = create_codec(_freq_spec(n_q), weights=str(_official_dir(tmp_path / case, case)))
    codec.load()
    speech = freq_ref["freq_speech"]
    codes = np.stack([codec.codes(w) for w in speech], axis=1)
    np.testing.assert_array_equal(codes, freq_ref[f"{case}_nq{n_q}_codes"])
    expected = freq_ref[f"{case}_nq{n_q}_recon"][:, 0]
    assert expected.std() > 0.02  # loud enough for 1e-4 to mean something
    # One pass for both (equal-length) clips; the official output is 4960 of 5000 samples
    # long (32 STFT frames -> 31 hops), and so is ours.
    got = np.stack(codec._resynthesize(list(speech)))
    assert got.shape == expected.shape == (2, 4960)
    assert np.max(np.abs(got - expected)) < 1e-4
    # The framework pads the missing tail: the clip keeps its length, the rest is the same audio.
    full = codec.resynthesize(list(speech), 16000)
    assert [len(y) for y in full] == [5000, 5000]
    assert max(np.max(np.abs(y[:4960] - e)) for y, e in zip(full, expected)) < 1e-4


def test_freqcodec_checkpoint_without_stft_windows_loads(freq_ref, tmp_path, offline):
    """The STFT windows are fixed torchaudio buffers; a model.pth without them loses nothing."""
    strip = lambda s: {k: v for k, v in s.items() if not k.endswith("_trans_func.window")}  # noqa: E731
    codec = create_codec(_freq_spec(4), weights=str(_official_dir(tmp_path, "freq_gn_gr1", strip)))
    got = np.stack(codec._resynthesize(list(freq_ref["freq_speech"])))
    assert np.max(np.abs(got - freq_ref["freq_gn_gr1_nq4_recon"][:, 0])) < 1e-4


def test_freqcodec_loads_from_project_cache_and_names_its_files_offline(freq_ref, offline):
    with pytest.raises(CodecUnavailableError) as err:
        create_codec(_freq_spec(32, group=1)).load()
    assert REPO_GR1 in str(err.value) and "config.yaml and model.pth" in str(err.value)
    cached = offline / "funcodec" / REPO_GR1.split("/")[1]
    _official_dir(cached, "freq_gn_gr1")
    codec = create_codec(_freq_spec(2))
    assert codec.checkpoint_dir() == cached
    (y,) = codec.resynthesize([freq_ref["freq_speech"][0]], 16000)
    assert y.shape == (5000,) and np.isfinite(y).all() and np.any(y != 0)


def test_time_and_frequency_checkpoints_are_not_interchangeable(tmp_path, offline):
    freq = _official_dir(tmp_path / "freq", "freq_gn_gr1")
    with pytest.raises(CodecUnavailableError, match="frequency-domain FreqCodec model, but .* time-domain"):
        create_codec("funcodec@en-libritts-ds320-nq4", weights=str(freq)).load()
    time = _official_dir(tmp_path / "time", "gn")
    with pytest.raises(CodecUnavailableError, match="time-domain EnCodec-style model, but .* FreqCodec"):
        create_codec(_freq_spec(4), weights=str(time)).load()


@pytest.mark.parametrize("edit,message", [
    (lambda a: a["model_conf"].update(codec_domain=["mag_angle", "mag_angle"]), "codec_domain.*not implemented"),
    (lambda a: a["encoder_conf"].update(seq_model="transformer"), "seq_model 'transformer' is not implemented"),
    (lambda a: a["model_conf"].update(domain_conf={"n_fft": 1024}), "leaves 2 of 513 frequency bins"),
    (lambda a: a["encoder_conf"].update(tr_conv_group_ratio=2), "encoder_conf: option 'tr_conv_group_ratio'"),
])
def test_freqcodec_configs_it_cannot_run_are_refused(edit, message, tmp_path, offline):
    import yaml

    d = _official_dir(tmp_path, "freq_gn_gr1")
    args = yaml.safe_load((d / "config.yaml").read_text())
    edit(args)
    (d / "config.yaml").write_text(yaml.safe_dump(args))
    with pytest.raises(CodecUnavailableError, match="not a usable FunCodec config.*" + message):
        create_codec(_freq_spec(4), weights=str(d)).load()


def test_freqcodec_batched_equals_one_at_a_time(freq_ref, tmp_path, offline):
    x = np.concatenate([freq_ref["freq_speech"][0], freq_ref["freq_speech"][1] * 5])
    waves = [x[100:100 + 4001], x[2000:2000 + 1603], x[:4001] * 0.5, x[5000:5000 + 2807], x[10:10 + 200]]
    codec = create_codec(_freq_spec(4), weights=str(_official_dir(tmp_path, "freq_gn_gr1")))
    codec.load()
    passes, forward = [], codec.model.forward
    codec.model.forward = lambda w, n: passes.append(w.shape[0]) or forward(w, n)
    batched = codec.resynthesize(waves, 16000)
    # Padding would change a clip (GroupNorm over the whole spectrogram, whole-clip RMS).
    assert sorted(passes) == [1, 1, 1, 2]
    single = [codec.resynthesize([w], 16000)[0] for w in waves]
    for w, b, s in zip(waves, batched, single):
        assert b.shape == s.shape == w.shape and np.isfinite(b).all()
        np.testing.assert_allclose(b, s, atol=1e-4, rtol=0)


def test_freqcodec_configs_and_bitrates():
    cfgs = FunCodecCodec.configs
    freq = {k: c.bitrate_kbps for k, c in cfgs.items() if k.startswith("freqcodec-en-libritts-gr1")}
    assert freq == {f"freqcodec-en-libritts-gr1-ds320-nq{n}": n / 2 for n in (1, 2, 4, 8, 16, 32)}
    assert cfgs["freqcodec-en-libritts-gr8-ds320-nq32"].params["repo"] == (
        "alibaba-damo/audio_codec-freqcodec_magphase-en-libritts-16k-gr8nq32ds320-pytorch")
    assert create_codec(_freq_spec(8, group=8)).native_frame_size == 320


@pytest.mark.parametrize("group,n_params", [(1, 12_317_737), (8, 12_709_289)])
def test_freqcodec_init_random_builds_the_recipe_architecture(group, n_params):
    # Counts of the official SEANetEncoder2d + SEANetDecoder2d (FunCodec 3435d87) built from
    # egs/LibriTTS/codec/conf/freqcodec_mag_phase_16k_n32_600k_step.yaml with conv_group_ratio
    # 1 / 8.  NOT the released size: the README lists 0.52 M / 4.50 M, whose config.yaml
    # could not be read offline (see funcodec._FREQ_RECIPE).
    codec = create_codec(_freq_spec(8, group=group))
    desc = codec.init_random(seed=0)
    assert codec.parameter_count() == n_params
    assert f"({n_params / 1e6:.2f} M parameters" in desc
    if group == 1:
        wave = (0.1 * np.sin(np.linspace(0, 80, 4000))).astype(np.float32)
        (y,) = codec.resynthesize([wave], 16000)
        assert y.shape == wave.shape and np.isfinite(y).all()
        assert codec.codes(wave).shape == (8, 13)

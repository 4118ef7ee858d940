"""benchmark.training: strict configs, the loop, checkpoints, resume and early stopping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from benchmark.data import BuiltDataset, make_loader
from benchmark.models import MODELS, load_weights
from benchmark.models.base import Detector
from benchmark.training.config import load_yaml_text
from benchmark.training import LOG_COLUMNS, ConfigError, TrainConfig, TrainingError, score_loader, train

TINY = "tiny-training-test"


@MODELS.register(TINY)
class TinyDetector(Detector):
    """Learned filter bank energies -> linear: trains in milliseconds on CPU."""

    def __init__(self, num_samples: int | None = 2000, channels: int = 8, dropout: float = 0.1):
        super().__init__()
        self.num_samples = num_samples
        self.conv = nn.Conv1d(1, channels, kernel_size=32, stride=16)
        self.drop = nn.Dropout(dropout)  # exercises the torch RNG that resume must restore
        self.head = nn.Linear(channels, 2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        energy = self.conv(wave.unsqueeze(1)).abs().mean(dim=-1)
        return self.head(self.drop(torch.log1p(energy)))




def make_config(built: Path, cache: Path, out_dir: Path, **optim) -> TrainConfig:
    raw = {
        "data": {"dataset": str(built), "cache_dir": str(cache)},
        "model": {"name": TINY, "kwargs": {"channels": 8}},
        "optim": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "num_workers": 0, "class_weights": "balanced", **optim},
        "seed": 7,
        "device": "cpu",
        "out_dir": str(out_dir),
    }
    return TrainConfig.from_dict(raw)


# --- config ----------------------------------------------------------------------------------------

EXAMPLE = """\
data:
  dataset: /data/codecfake_built
  train_split: train
  dev_split: validation
  codecs: [none, encodec, "dac@16khz_6kbps"]
  languages: [en, zh]
model:
  name: aasist
  kwargs: {first_conv: 128}
optim:
  epochs: 100
  batch_size: 24
  lr: 1e-4
  weight_decay: 1.0e-4
  betas: [0.9, 0.999]
  class_weights: [0.9, 0.1]
  scheduler: cosine
  num_workers: 4
early_stopping: {patience: 10, on: dev_eer}
seed: 1234
device: auto
amp: false
out_dir: runs/aasist_codecfake
"""


def test_config_from_yaml(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(EXAMPLE)
    cfg = TrainConfig.from_yaml(path)
    assert cfg.data.codecs == ["none", "encodec", "dac@16khz_6kbps"] and cfg.data.corpora is None
    assert cfg.model.kwargs == {"first_conv": 128}
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float)  # "1e-4" is a string to PyYAML
    assert cfg.optim.class_weights == [0.9, 0.1] and cfg.early_stopping.patience == 10
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda c: c["optim"].update(lrr=0.1), ["unknown key 'optim.lrr'", "Did you mean 'lr'", "Valid keys in optim:", "weight_decay"]),
        (lambda c: c.update(sede=1), ["unknown key 'sede'", "Valid keys in the top level:", "out_dir"]),
        (lambda c: c["optim"].update(epochs="ten"), ["key 'optim.epochs': expected int, got str", "Valid keys in optim:"]),
        (lambda c: c["optim"].update(epochs=2.5), ["key 'optim.epochs': expected int"]),
        (lambda c: c["data"].update(codecs="none"), ["key 'data.codecs': expected list of str or null"]),
        (lambda c: c.update(amp=1), ["key 'amp': expected bool"]),
        (lambda c: c.update(device="gpu"), ["key 'device': expected 'auto' or 'cpu' or 'cuda'"]),
        (lambda c: c["optim"].update(class_weights="even"), ["key 'optim.class_weights'", "balanced"]),
        (lambda c: c["optim"].update(class_weights=[1, 2, 3]), ["key 'optim.class_weights'"]),
        (lambda c: c["optim"].update(batch_size=0), ["key 'optim.batch_size': must be >= 1"]),
        (lambda c: c["early_stopping"].update(on="loss"), ["key 'early_stopping.on'", "'dev_eer'"]),
        (lambda c: c["model"].pop("name"), ["required key 'model.name' is missing", "Valid keys in model: name, kwargs"]),
        (lambda c: c.update(optim=[1, 2]), ["optim must be a mapping"]),
    ],
)
def test_config_errors_are_one_line_and_name_file_and_key(tmp_path, edit, fragments):
    raw = load_yaml_text(EXAMPLE)  # YAML 1.2: the key 'on' stays a string
    edit(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_yaml(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path))
    for fragment in fragments:
        assert fragment in msg


def test_config_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+: invalid YAML"):
        TrainConfig.from_yaml(bad)


# --- training --------------------------------------------------------------------------------------


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_train_writes_checkpoints_log_and_summary(built, cache, tmp_path):
    out = tmp_path / "run"
    summary = train(make_config(built, cache, out), progress=False)
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.pt", "epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "last.pt"]
    last = torch.load(ckpts / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 3 and set(last["rng"]) == {"python", "numpy", "torch", "cuda", "sampler"}
    assert {"model", "optimizer", "scheduler", "state", "config"} <= set(last)
    assert all(torch.equal(a, b) for a, b in zip(_weights(ckpts / "epoch_003.pt").values(), last["model"].values()))
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert tuple(rows[0]) == LOG_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    eers = [float(r["dev_eer"]) for r in rows]
    assert summary["best_dev_eer"] == min(eers) and summary["best_epoch"] == 1 + int(np.argmin(eers))
    assert summary["best_dev_eer"] < 0.3  # tone vs noise is learnable: the loop really trains
    best = torch.load(ckpts / "best.pt", map_location="cpu", weights_only=True)
    assert best["epoch"] == summary["best_epoch"]
    on_disk = json.loads((out / "train_summary.json").read_text())
    assert on_disk["epochs_completed"] == 3 and not on_disk["stopped_early"]
    assert on_disk["class_counts"] == {"bonafide": 16, "spoof": 16}
    assert on_disk["class_weights"] == {"bonafide": 1.0, "spoof": 1.0}  # "balanced" on balanced data
    assert TrainConfig.from_yaml(out / "config.yaml") == make_config(built, cache, out)
    # Training checkpoints load through the models' loader.
    load_weights(TinyDetector(), ckpts / "best.pt")
    # Same run directory without resume would mix two runs.
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(make_config(built, cache, out), resume=False, progress=False)


class Crash(Exception):
    pass


def test_resume_after_crash_is_bitwise_identical(built, cache, tmp_path):
    straight = tmp_path / "straight"
    train(make_config(built, cache, straight, scheduler="cosine"), progress=False)

    crashed = tmp_path / "crashed"

    def crash_after_first(row):
        if row["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        train(make_config(built, cache, crashed, scheduler="cosine"), progress=False, on_epoch_end=crash_after_first)
    assert not (crashed / "checkpoints" / "epoch_002.pt").exists()
    # Scramble global RNGs as a fresh process would; resume must not depend on them.
    torch.manual_seed(999)
    np.random.seed(999)
    summary = train(make_config(built, cache, crashed, scheduler="cosine"), progress=False)
    assert summary["epochs_completed"] == 3

    a, b = _weights(straight / "checkpoints" / "last.pt"), _weights(crashed / "checkpoints" / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log_a = [{k: r[k] for k in ("epoch", "train_loss", "dev_eer", "lr")} for r in csv.DictReader((straight / "train_log.csv").open())]
    log_b = [{k: r[k] for k in ("epoch", "train_loss", "dev_eer", "lr")} for r in csv.DictReader((crashed / "train_log.csv").open())]
    assert log_a == log_b
    # A finished run resumed again trains nothing more.
    again = train(make_config(built, cache, crashed, scheduler="cosine"), progress=False)
    assert again["epochs_completed"] == 3
    assert all(torch.equal(b[k], v) for k, v in _weights(crashed / "checkpoints" / "last.pt").items())


def test_early_stopping_stops_and_stays_stopped(built, cache, tmp_path):
    out = tmp_path / "stop"
    # lr 0 freezes the model, so the dev EER never improves after epoch 1.
    cfg = make_config(built, cache, out, epochs=10, lr=0.0)
    cfg.early_stopping.patience = 2
    summary = train(cfg, progress=False)
    assert summary["stopped_early"] and summary["epochs_completed"] == 3 and summary["best_epoch"] == 1
    assert not (out / "checkpoints" / "epoch_004.pt").exists()
    assert train(cfg, progress=False)["epochs_completed"] == 3  # resuming a stopped run does not restart it


def test_keep_epoch_checkpoints_and_variable_length_model(built, cache, tmp_path):
    out = tmp_path / "var"
    cfg = make_config(built, cache, out, epochs=2)
    cfg.model.kwargs["num_samples"] = None  # whole clips, length-bucketed batches
    cfg.data.max_samples = 3000
    cfg.keep_epoch_checkpoints = 1
    summary = train(cfg, progress=False)
    assert summary["epochs_completed"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "epoch_002.pt", "last.pt"]


def test_resume_refuses_a_different_model(built, cache, tmp_path):
    out = tmp_path / "run"
    train(make_config(built, cache, out, epochs=1), progress=False)
    cfg = make_config(built, cache, out, epochs=2)
    cfg.model.kwargs["channels"] = 4
    with pytest.raises(TrainingError, match="was trained with model"):
        train(cfg, progress=False)


def test_dev_split_without_a_class_is_an_error(built, cache, tmp_path):
    cfg = make_config(built, cache, tmp_path / "x")
    cfg.data.codecs = ["codecA"]
    with pytest.raises(TrainingError, match="no bonafide rows.*codec 'none'"):
        train(cfg, progress=False)


def test_score_loader_returns_names_and_bona_minus_spoof(built, cache):
    src = BuiltDataset(built, "validation", cache_dir=cache)
    model = TinyDetector()
    loader = make_loader(src, batch_size=5, train=False, num_samples=model.num_samples)
    names, scores = score_loader(model, loader, "cpu")
    assert names == src.filenames and scores.shape == (len(src),) and scores.dtype == np.float64
    batch = next(iter(loader))
    with torch.no_grad():
        logits = model(batch.wave)
    np.testing.assert_allclose(scores[:5], (logits[:, 1] - logits[:, 0]).numpy(), rtol=1e-6)
    _, _, targets = score_loader(model, loader, "cpu", return_targets=True)
    assert targets.tolist() == [1 - int(x) for x in src.labels]  # model target 1 = bona fide = dataset 0
    assert not model.training


def test_cli_runs_a_yaml_and_reports_config_errors_in_one_line(built, cache, tmp_path, capsys):
    from benchmark.training.__main__ import main

    cfg = make_config(built, cache, tmp_path / "cli", epochs=1).to_dict()
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main([str(path), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_completed"] == 1
    cfg["optim"]["epochz"] = 3
    path.write_text(yaml.safe_dump(cfg))
    assert main([str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown key 'optim.epochz'" in err and str(path) in err


def test_missing_training_data_leaves_no_run_folder(cache, tmp_path):
    from benchmark.data import DataError

    out = tmp_path / "run"
    with pytest.raises(DataError):
        train(make_config(tmp_path / "no-such-dataset", cache, out, epochs=1), progress=False)
    assert not out.exists()


# --- accumulation, schedulers, AUC stopping, oversampling, TensorBoard, DDP -----------------------


def _cfg(built, cache, out, model_kwargs=None, **optim):
    cfg = make_config(built, cache, out, **optim)
    if model_kwargs is not None:
        cfg.model.kwargs = model_kwargs
    return cfg


def test_grad_accumulation_equals_the_large_batch(built, cache, tmp_path):
    # No dropout and no class weights: two micro-batches of 8 give the mean gradient of their 16 items,
    # which is what one batch of 16 (the same items: the sampler cuts one permutation) gives.
    kw = {"channels": 8, "dropout": 0.0}
    big = train(_cfg(built, cache, tmp_path / "big", kw, batch_size=16, class_weights=None, epochs=2), progress=False)
    acc = train(_cfg(built, cache, tmp_path / "acc", kw, batch_size=8, grad_accum=2, class_weights=None, epochs=2),
                progress=False)
    assert acc["effective_batch_size"] == big["effective_batch_size"] == 16
    a, b = _weights(tmp_path / "big/checkpoints/last.pt"), _weights(tmp_path / "acc/checkpoints/last.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    plain = train(_cfg(built, cache, tmp_path / "plain", kw, batch_size=8, class_weights=None, epochs=2), progress=False)
    c = _weights(tmp_path / "plain/checkpoints/last.pt")
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)  # the comparison can fail
    assert plain["effective_batch_size"] == 8


def test_step_scheduler_halves_lr_every_two_epochs_and_resumes(built, cache, tmp_path):
    cfg = _cfg(built, cache, tmp_path / "step", epochs=5, scheduler="step", step_epochs=2, step_gamma=0.5, lr=1e-3)
    train(cfg, progress=False)
    lrs = [float(r["lr"]) for r in csv.DictReader((tmp_path / "step/train_log.csv").open())]
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])


def test_early_stopping_on_dev_auc_and_oversampling(built, cache, tmp_path):
    cfg = _cfg(built, cache, tmp_path / "auc", epochs=10, lr=0.0, sampling="oversample")
    cfg.early_stopping.on = "dev_auc"
    cfg.early_stopping.patience = 2
    summary = train(cfg, progress=False)
    assert summary["early_stopping_on"] == "dev_auc" and summary["sampling"] == "oversample"
    assert summary["stopped_early"] and summary["best_epoch"] == 1 and 0.0 <= summary["best_dev_auc"] <= 1.0
    rows = list(csv.DictReader((tmp_path / "auc/train_log.csv").open()))
    assert all(0.0 <= float(r["dev_auc"]) <= 1.0 for r in rows)


def test_tensorboard_events_are_written_when_available(built, cache, tmp_path):
    pytest.importorskip("tensorboard")
    train(_cfg(built, cache, tmp_path / "tb", epochs=1), progress=False)
    assert list((tmp_path / "tb/tensorboard").glob("events.out.tfevents.*"))


def test_amp_options_parse_and_are_ignored_on_cpu(built, cache, tmp_path, caplog):
    cfg = _cfg(built, cache, tmp_path / "amp", epochs=1)
    cfg.amp = "bf16"
    assert cfg.amp_dtype == "bf16"
    with caplog.at_level("WARNING"):
        summary = train(cfg, progress=False)
    assert summary["amp"] is False and "only used on CUDA" in caplog.text
    with pytest.raises(ConfigError, match="optim.grad_accum"):
        TrainConfig.from_dict({**cfg.to_dict(), "optim": {**cfg.to_dict()["optim"], "grad_accum": 0}})


def test_ddp_two_cpu_processes_with_gloo(built, cache, tmp_path):
    """torchrun with 2 processes on the gloo backend: both ranks train disjoint shards, DDP keeps the
    replicas identical, and rank 0 alone writes the run directory."""
    import socket
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cfg = make_config(built, cache, out, epochs=2, batch_size=4)
    cfg.model.name = "lcnn-ddp-test"
    cfg.model.kwargs = {}
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.to_dict()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(port), "-m", "tests.benchmark.ddp_entry", str(cfg_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_in_sync"] is True
    assert summary["effective_batch_size"] == 8 and summary["epochs_completed"] == 2
    assert (out / "checkpoints" / "best.pt").exists()
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]


# --- models with their own objective: item transforms, extras, loss parts, systems ------------------

OWN = "own-loss-training-test"


class _HalfGain:
    """Picklable ItemTransform: a random 2000-sample window, halved in level half the time."""

    def __call__(self, wave, rng, *, target, system):
        start = int(rng.integers(0, max(len(wave) - 2000, 0) + 1))
        halved = int(rng.integers(0, 2))
        cut = np.resize(wave[start:start + 2000], 2000) * (0.5 if halved else 1.0)
        return cut, {"halved": halved, "is_real": int(system == "none")}


@MODELS.register(OWN)
class OwnLossDetector(TinyDetector):
    own_loss = True
    uses_systems = True

    def __init__(self, systems: list[str], channels: int = 8):
        super().__init__(num_samples=2000, channels=channels, dropout=0.0)
        self.systems = list(systems)
        self.gain_head = nn.Linear(channels, 2)

    def train_transform(self):
        return _HalfGain()

    def forward(self, wave, target=None, extras=None):
        energy = torch.log1p(self.conv(wave.unsqueeze(1)).abs().mean(dim=-1))
        logits = self.head(energy)
        if target is None:
            return logits
        assert set(extras) == {"halved", "is_real"} and extras["halved"].shape == target.shape
        assert torch.equal(extras["is_real"], target)  # the transform saw each item's own system name
        cls = nn.functional.cross_entropy(logits, target)
        aux = nn.functional.cross_entropy(self.gain_head(energy), extras["halved"])
        return cls + aux, {"cls": cls.detach(), "aux": aux.detach()}


def test_own_loss_model_gets_transform_extras_systems_and_logs_parts(built, cache, tmp_path):
    summary = train(_own_cfg(built, cache, tmp_path / "own"), progress=False)
    spoof_codecs = sorted(set(BuiltDataset(str(built), "train", cache_dir=str(cache)).column("codec")) - {"none"})
    assert summary["model_kwargs"] == {"channels": 4, "systems": spoof_codecs} and spoof_codecs
    saved = yaml.safe_load((tmp_path / "own/config.yaml").read_text())
    assert saved["model"]["kwargs"]["systems"] == spoof_codecs
    rows = list(csv.DictReader((tmp_path / "own/train_log.csv").open()))
    assert len(rows) == 2 and {"train_cls", "train_aux"} <= set(rows[0])
    for r in rows:  # the parts are the per-item means that add up to the logged loss
        assert float(r["train_cls"]) + float(r["train_aux"]) == pytest.approx(float(r["train_loss"]), rel=1e-5)
    again = train(_own_cfg(built, cache, tmp_path / "own2"), progress=False)  # same seed: same transforms
    a, b = _weights(tmp_path / "own/checkpoints/last.pt"), _weights(tmp_path / "own2/checkpoints/last.pt")
    assert again["model_kwargs"] == summary["model_kwargs"] and all(torch.equal(a[k], b[k]) for k in a)


def _own_cfg(built, cache, out):
    cfg = _cfg(built, cache, out, {"channels": 4}, class_weights=None, epochs=2)
    cfg.model.name = OWN
    return cfg


# --- fixed training crops and the frozen-SSL feature cache -------------------------------------------

CACHED_SSL = "cached-ssl-training-test"


@MODELS.register(CACHED_SSL)
class CachedSSLDetector(Detector):
    """A frozen tiny wav2vec2 with a feature cache and a linear head (the W2V2-* set-up, in miniature)."""

    num_samples = 2000

    def __init__(self, ssl_model: str, feature_cache: str):
        super().__init__()
        from benchmark.frontends.ssl import SSLFrontend

        self.frontend = SSLFrontend(ssl_model, layer=1, cache_dir=feature_cache)
        self.head = nn.Linear(self.frontend.num_features, 2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.frontend(wave).mean(dim=-1))


def _ssl_forwards_per_epoch(built, cache, tmp_path, monkeypatch, train_crop: str) -> list[int]:
    """Clips the SSL model computed in each epoch (training and dev), with a fresh feature cache."""
    from benchmark.frontends.ssl import SSLFrontend
    from tests.benchmark.test_ssl_frontend import make_tiny

    computed: list[int] = []
    real = SSLFrontend.compute
    monkeypatch.setattr(SSLFrontend, "compute", lambda self, wave: computed.append(len(wave)) or real(self, wave))
    tiny = tmp_path / "tiny-w2v2"
    if not tiny.exists():
        make_tiny("wav2vec2", tiny)
    out = tmp_path / train_crop
    cfg = _cfg(built, cache, out, {"ssl_model": str(tiny), "feature_cache": str(out / "features")},
               epochs=2, train_crop=train_crop)
    cfg.model.name = CACHED_SSL
    per_epoch: list[int] = []
    train(cfg, progress=False, on_epoch_end=lambda row: per_epoch.append(sum(computed) - sum(per_epoch)))
    return per_epoch


def test_fixed_training_crop_lets_the_feature_cache_hit_from_epoch_two(built, cache, tmp_path, monkeypatch):
    # 32 training + 16 dev clips of 800-6000 samples cut to 2,000: epoch 1 computes all 48.
    assert _ssl_forwards_per_epoch(built, cache, tmp_path, monkeypatch, "first") == [48, 0]
    # Random windows: every long training clip is new to the cache in epoch 2 (dev, cut the same way, still hits).
    random = _ssl_forwards_per_epoch(built, cache, tmp_path, monkeypatch, "random")
    assert random[0] == 48 and random[1] > 10


def test_training_crops_cut_the_same_window_every_epoch(built, cache):
    src = BuiltDataset(str(built), "train", cache_dir=str(cache))
    long = next(i for i in range(len(src)) if len(src[i].wave) > 2200)
    for crop, start in (("first", 0), ("middle", (len(src[long].wave) - 2000) // 2)):
        loader = make_loader(src, batch_size=4, train=True, num_samples=2000, train_crop=crop)
        cuts = []
        for epoch in (1, 2):
            loader.dataset.set_epoch(epoch)
            cuts.append(loader.dataset[long]["wave"])
        np.testing.assert_array_equal(cuts[0], cuts[1])
        np.testing.assert_array_equal(cuts[0], src[long].wave[start:start + 2000])
    with pytest.raises(ValueError, match="unknown training crop 'last'"):
        make_loader(src, batch_size=4, train=True, num_samples=2000, train_crop="last")


def test_float16_feature_cache_halves_entries_and_round_trips(tmp_path, monkeypatch):
    from benchmark.frontends.feature_cache import FeatureCache

    feats = torch.randn(1024, 201) * 3
    wave = torch.randn(64600)
    full, half = FeatureCache(tmp_path, "p"), FeatureCache(tmp_path, "p", dtype="float16")
    assert full.key(wave) != half.key(wave)  # the two precisions never read each other's entries
    full.put(full.key(wave), feats)
    stored = half.put(half.key(wave), feats)
    back = half.get(half.key(wave))
    assert back.dtype == torch.float32 and torch.equal(back, stored)  # the writing epoch sees what later reads see
    assert float(((back - feats).abs() / feats.abs().clamp_min(1e-3)).max()) <= 2 ** -11
    assert half.path(half.key(wave)).stat().st_size < 0.51 * full.path(full.key(wave)).stat().st_size
    assert torch.equal(full.get(full.key(wave)), feats)
    big = torch.full((4,), 1e6)  # beyond float16's range: kept in float32 rather than stored as inf
    assert torch.equal(half.put(half.key(big), big), big) and torch.equal(half.get(half.key(big)), big)
    monkeypatch.setenv("CODECFAKE_CACHE_DTYPE", "float16")
    assert FeatureCache(tmp_path, "p").dtype == "float16"
    monkeypatch.setenv("CODECFAKE_CACHE_DTYPE", "fp8")
    with pytest.raises(ValueError, match=r"\$CODECFAKE_CACHE_DTYPE 'fp8' is not a storage precision"):
        FeatureCache(tmp_path, "p")


def test_dev_loss_from_scores_equals_the_weighted_cross_entropy_of_the_logits():
    from benchmark.training.loop import dev_cross_entropy

    torch.manual_seed(0)
    logits, targets = torch.randn(50, 2) * 3, torch.randint(0, 2, (50,))
    weight = torch.tensor([1.0, 10.0])  # spoof, bona fide (target index)
    scores = (logits[:, 1] - logits[:, 0]).numpy()
    for w in (None, weight):
        expected = float(nn.CrossEntropyLoss(weight=w)(logits, targets))
        assert dev_cross_entropy(scores, targets.numpy(), w) == pytest.approx(expected, rel=1e-6)
    assert dev_cross_entropy(scores, targets.numpy(), weight) != pytest.approx(
        dev_cross_entropy(scores, targets.numpy(), None), rel=1e-3)  # the weights matter


def test_best_epoch_by_dev_loss(built, cache, tmp_path):
    cfg = _cfg(built, cache, tmp_path / "loss", epochs=4, lr=3e-2)
    cfg.early_stopping.on = "dev_loss"
    summary = train(cfg, progress=False)
    rows = list(csv.DictReader((tmp_path / "loss/train_log.csv").open()))
    losses = [float(r["dev_loss"]) for r in rows]
    assert summary["early_stopping_on"] == "dev_loss" and len(set(losses)) == 4
    assert summary["best_epoch"] == 1 + int(np.argmin(losses))
    assert summary["best_dev_loss"] == pytest.approx(min(losses))

"""FD-ADD (``fd-add``): size, shapes, each loss term on known inputs, the adversarial term's
gradient routing, SpecAugment, the ablation recipes through the trainer."""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.matrix import RECIPE_DIR, Recipe
from benchmark.models import create_model
from benchmark.models._fd_add_losses import (
    blend_features,
    contrastive_loss,
    focal_loss,
    partners_within_groups,
    shuffle_pair_labels,
    spec_augment,
    uniform_cross_entropy,
)
from benchmark.models.fd_add import LOSS_PARTS, FDADD
from benchmark.training import TrainConfig, train
from tests.benchmark.test_data import write_built_dataset

TINY = {"widths": (4, 8, 8, 16)}  # same topology, ~1/1000 of the compute
SYSTEMS = ["hifigan", "melgan", "waveglow"]


def _extras(target: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b = target.numel()
    synth = torch.where(target == 1, 0, torch.randint(1, len(SYSTEMS) + 1, (b,), generator=g))
    return {"speed": torch.randint(0, 16, (b,), generator=g), "compression": torch.randint(0, 10, (b,), generator=g),
            "synthesizer": synth}


def _batch(b: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 48000, generator=g) * 0.1, torch.tensor([1, 0] * (b // 2))


# --- size and shapes -------------------------------------------------------------------------------

def test_parameter_count_at_the_papers_setting():
    with torch.device("meta"):
        model = create_model("fd-add", systems=[f"s{i}" for i in range(8)])
    n = sum(p.numel() for p in model.parameters())
    layer4 = sum(p.numel() for p in model.backbone.layer4.parameters())
    heads = {name: sum(p.numel() for p in getattr(model, name).parameters())
             for name in ("speed_head", "compression_head", "synth_head", "final_head")}
    # weight norm adds one gain per output row: 512*16+16, 512*10+10, 512*9+9, 1024+1.
    assert heads == {"speed_head": 8208, "compression_head": 5130, "synth_head": 4617, "final_head": 1025}
    assert layer4 == 8_393_728 and n == 11_170_240 + layer4 + sum(heads.values()) == 19_582_948
    # The official AudioModel also builds two 512-d nn.MultiheadAttention blocks ("CrossAttention")
    # that its 2-D feature path never calls: with them the count is the demo's 21.7 M.
    unused_cross_attention = 2 * (4 * 512 * 512 + 4 * 512)
    assert round((n + unused_cross_attention) / 1e6, 1) == 21.7


def test_scoring_path_shapes_and_hidden_state():
    model = create_model("fd-add", systems=SYSTEMS).eval()
    wave, _ = _batch(2)
    with torch.no_grad():
        hidden = model.hidden_state(model.backbone.frontend(wave))
        logits = model(wave)
    assert hidden.shape == (2, 256, 17, 17)
    assert logits.shape == (2, 2) and torch.all(logits[:, 0] == 0)
    assert torch.equal(model.score(wave), logits[:, 1])  # score = the final head's logit
    assert FDADD.num_samples == 48000 and FDADD.crop == "middle" and FDADD.own_loss and FDADD.uses_systems


def test_stream_features_are_l2_normalised_to_ten():
    model = create_model("fd-add", systems=SYSTEMS, **TINY).eval()
    wave, _ = _batch(2)
    with torch.no_grad():
        content, synth = model.stream_features(model.hidden_state(model.backbone.frontend(wave)))
    assert torch.allclose(content.norm(dim=1), torch.full((2,), 10.0)) and synth.shape == (2, 16)
    # The synthesizer stream starts as an exact copy of layer4 but is a separate module.
    assert torch.equal(content, synth)
    assert model.synth_layer4[0].conv1.weight is not model.backbone.layer4[0].conv1.weight


def test_embed_is_the_final_heads_input():
    model = create_model("fd-add", systems=SYSTEMS, **TINY).eval()
    wave, _ = _batch(2)
    with torch.no_grad():
        emb = model.embed(wave)
        z = model.final_head(emb).squeeze(-1)
        assert emb.shape == (2, 32) and torch.allclose(z, model(wave)[:, 1])
        single = create_model("fd-add", streams="synthesizer", shuffle=False, adversarial=False, **TINY).eval()
        assert single.embed(wave).shape == (2, 16)


def test_bad_options_fail_in_one_line():
    with pytest.raises(ValueError, match="streams='two' is not one of dual, single, content, synthesizer"):
        create_model("fd-add", streams="two")
    with pytest.raises(ValueError, match="shuffle/adversarial need two. Fix: set shuffle: false"):
        create_model("fd-add", streams="content", **TINY)
    with pytest.raises(TypeError, match="Valid options: streams"):
        create_model("fd-add", stream="dual")
    model = create_model("fd-add", systems=SYSTEMS, **TINY)
    wave, target = _batch(2)
    with pytest.raises(KeyError, match="no 'speed' pseudo-label .* Fix: train through benchmark.training"):
        model(wave, target=target, extras={"synthesizer": torch.tensor([0, 1])})


# --- loss terms on known inputs --------------------------------------------------------------------

def test_contrastive_loss_eq4_by_hand_on_three_vectors():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1])
    c01, c02, c12 = 1 / math.sqrt(2), 0.0, 1 / math.sqrt(2)
    margin = 0.4
    same = 2 * (1 - c01)  # pairs (0,1) and (1,0); the diagonal pays 1 - 1 = 0
    different = 2 * max(c02 - margin, 0) + 2 * max(c12 - margin, 0)
    assert contrastive_loss(x, labels, margin).item() == pytest.approx((same + different) / 9, abs=1e-6)
    assert contrastive_loss(x * 7, labels, margin).item() == pytest.approx((same + different) / 9, abs=1e-6)


def test_focal_loss_matches_its_formula():
    logit = torch.tensor([2.0, -1.0, 0.5, -3.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    expected = []
    for z, t in zip(logit.tolist(), y.tolist()):
        p = 1 / (1 + math.exp(-z))
        p_t = p if t == 1 else 1 - p
        a_t = 0.25 if t == 1 else 0.75
        expected.append(-a_t * (1 - p_t) ** 2 * math.log(p_t))
    assert focal_loss(logit, y, 0.25, 2.0).item() == pytest.approx(sum(expected) / 4, rel=1e-5)
    # gamma 0, alpha 0.5: half the plain BCE.
    bce = F.binary_cross_entropy_with_logits(logit, y).item()
    assert focal_loss(logit, y, 0.5, 0.0).item() == pytest.approx(bce / 2, rel=1e-6)


def test_uniform_cross_entropy_is_minimal_for_equal_logits():
    assert uniform_cross_entropy(torch.zeros(3, 9)).item() == pytest.approx(math.log(9), rel=1e-6)
    assert uniform_cross_entropy(torch.tensor([[5.0, 0.0, 0.0]])).item() > math.log(3)


def test_shuffle_pairs_are_real_only_if_both_items_are_real():
    target = torch.tensor([1, 1, 0, 0])
    perm = torch.tensor([1, 2, 0, 3])
    assert shuffle_pair_labels(target, perm).tolist() == [1, 0, 0, 0]


def test_blending_partners_stay_in_their_label_group():
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    for _ in range(5):
        partner = partners_within_groups(labels)
        assert torch.equal(labels[partner], labels) and sorted(partner.tolist()) == list(range(8))


def test_paper_blend_mixes_each_features_mean_and_std_with_a_same_group_partner():
    torch.manual_seed(1)
    x = torch.randn(6, 32) * torch.linspace(0.5, 3, 6)[:, None] + torch.arange(6.0)[:, None]
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    torch.manual_seed(5)
    z = blend_features(x, labels, eta=0.0, mode="paper")
    torch.manual_seed(5)  # replay the draws: the partners, then r ~ U(0.5, 1)
    partner = partners_within_groups(labels)
    r = 0.5 + 0.5 * torch.rand(6, 1)
    mu, std = x.mean(1, keepdim=True), x.std(1, keepdim=True)
    assert torch.allclose(z.mean(1, keepdim=True), r * mu + (1 - r) * mu[partner], atol=1e-5)
    assert torch.allclose(z.std(1, keepdim=True), r * std + (1 - r) * std[partner], atol=1e-5)
    assert ((r >= 0.5) & (r <= 1)).all()
    # Each item keeps its own shape (z is an affine map of x per row).
    assert torch.allclose(F.normalize(z - z.mean(1, keepdim=True), dim=1),
                          F.normalize(x - mu, dim=1), atol=1e-5)


def test_official_blend_keeps_only_the_noise_as_documented():
    torch.manual_seed(2)
    x = torch.randn(4, 16) + torch.arange(4.0)[:, None]
    labels = torch.tensor([0, 0, 1, 1])
    assert torch.equal(blend_features(x, labels, eta=0.0, mode="official"), x)  # no noise: the input itself
    assert not torch.allclose(blend_features(x, labels, eta=0.0, mode="paper"), x)
    torch.manual_seed(3)
    noisy = blend_features(x, labels, eta=10.0, mode="official")
    # r1, r2 < 0.1 and Beta(2,5) < 1: the multiplicative factor stays in (0.9, 1.1).
    assert not torch.equal(noisy, x) and (noisy - x).abs().max() < 0.1 * x.abs().max() + 0.5
    with pytest.raises(ValueError, match="blend mode 'both'"):
        blend_features(x, labels, mode="both")


def test_spec_augment_masks_bands_with_the_item_mean():
    torch.manual_seed(0)
    spec = torch.randn(8, 1, 257, 257) + torch.arange(8.0)[:, None, None, None]
    out = spec_augment(spec.clone())
    mean = spec.mean(dim=(1, 2, 3), keepdim=True)
    changed = out != spec
    assert torch.all(out[changed] == mean.expand_as(spec)[changed])
    # Masked frequency rows are whole rows; at most 2 bands of < 27 rows, 2 spans of < 51 frames.
    for i in range(8):
        full_rows = (out[i, 0] == mean[i].item()).all(dim=1).sum().item()
        full_cols = (out[i, 0] == mean[i].item()).all(dim=0).sum().item()
        assert full_rows <= 2 * 26 and full_cols <= 2 * 50
    assert changed.any()


def test_specaugment_runs_in_training_only():
    model = create_model("fd-add", systems=SYSTEMS, **TINY)
    wave, target = _batch(2)
    seen = []
    model.backbone.conv1.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    model.eval()
    with torch.no_grad():
        model(wave)
    model.train()
    model(wave, target=target, extras=_extras(target))
    reference = model.backbone.frontend(wave)
    assert torch.equal(seen[0], reference) and not torch.equal(seen[1], reference)


# --- the full objective ----------------------------------------------------------------------------

def test_objective_returns_all_parts_and_eq14():
    torch.manual_seed(0)
    model = create_model("fd-add", systems=SYSTEMS, **TINY).train()
    wave, target = _batch(4)
    loss, parts = model(wave, target=target, extras=_extras(target))
    assert set(parts) == set(LOSS_PARTS) and all(not p.requires_grad for p in parts.values())
    assert all(parts[k] > 0 for k in LOSS_PARTS)
    b0, b1, b2, b3 = 1.0, 0.5, 0.5, 0.5
    expected = (parts["cls"] + b0 * parts["aug"] + b1 * (parts["cls_s"] + 0.5 * parts["con_s"])
                + b2 * (parts["cls_c"] + parts["adv"]) + b3 * parts["con_cls"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["adv"].item() >= math.log(len(SYSTEMS) + 1) - 1e-6


def _grads(model: FDADD, seed: int, **extras_override) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    wave, target = _batch(4)
    model.zero_grad(set_to_none=True)
    loss, _ = model(wave, target=target, extras=_extras(target))
    loss.backward()
    return {k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for k, p in model.named_parameters()}


def _is_stem(name: str) -> bool:
    return name.startswith("backbone.") and not name.startswith("backbone.layer4.")


def test_adversarial_term_alone_moves_only_the_content_stream():
    torch.manual_seed(0)
    model = create_model("fd-add", systems=SYSTEMS, **TINY).train()
    wave, _ = _batch(4)
    hidden = model.hidden_state(model.backbone.frontend(wave))
    model.adversarial_loss(hidden).backward()
    grads = {k: p.grad for k, p in model.named_parameters()}
    for name, g in grads.items():
        if name.startswith("backbone.layer4."):
            continue
        assert g is None or torch.count_nonzero(g) == 0, name  # stem, synthesizer stream and heads
    layer4 = [g for k, g in grads.items() if k.startswith("backbone.layer4.")]
    assert all(g is not None for g in layer4) and sum(g.abs().sum() for g in layer4) > 0

    # Parameter snapshots: an optimizer step on this term alone leaves the stem and the
    # synthesizer head exactly as they were, and changes the content stream.
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    torch.optim.Adam(model.parameters(), lr=1e-2).step()
    after = dict(model.named_parameters())
    for name, value in before.items():
        moved = not torch.equal(value, after[name])
        assert moved == name.startswith("backbone.layer4."), name


def test_adversarial_term_inside_the_full_loss_changes_no_stem_or_synth_head_gradient():
    model = create_model("fd-add", systems=SYSTEMS, **TINY).train()
    with_adv = _grads(model, seed=3)
    model.config = dataclasses.replace(model.config, adversarial=False)
    without = _grads(model, seed=3)
    for name in with_adv:
        if _is_stem(name) or name.startswith(("synth_head.", "synth_layer4.")):
            assert torch.allclose(with_adv[name], without[name], atol=1e-7, rtol=1e-5), name
    assert any(not torch.allclose(with_adv[k], without[k]) for k in with_adv if k.startswith("backbone.layer4."))


def test_adversarial_rerun_does_not_update_batchnorm_statistics_twice():
    def running_after(adversarial: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = create_model("fd-add", systems=SYSTEMS, adversarial=adversarial, **TINY).train()
        wave, target = _batch(4)
        model(wave, target=target, extras=_extras(target))[0].backward()
        bn = model.backbone.layer4[0].bn1
        return torch.cat([bn.running_mean, bn.running_var, bn.num_batches_tracked[None].float()])

    assert torch.equal(running_after(True), running_after(False))


@pytest.mark.parametrize("streams", ["single", "content", "synthesizer"])
def test_single_stream_modes_compute_their_losses(streams):
    torch.manual_seed(0)
    model = create_model("fd-add", systems=SYSTEMS, streams=streams, shuffle=False, adversarial=False, **TINY).train()
    wave, target = _batch(4)
    loss, parts = model(wave, target=target, extras=_extras(target))
    loss.backward()
    assert parts["aug"] == 0 and parts["adv"] == 0
    assert (parts["cls_c"] > 0) == (streams != "synthesizer") and (parts["cls_s"] > 0) == (streams != "content")
    assert model.final_head.parametrizations.weight.original1.shape[1] == 16
    assert model(wave).shape == (4, 2)
    assert all(p.grad is not None for p in model.parameters())  # nothing unused: DDP needs no search


def test_f0_ablation_regresses_the_pitch_track():
    torch.manual_seed(0)
    model = create_model("fd-add", systems=SYSTEMS, pseudo_labels="f0", **TINY).train()
    assert not hasattr(model, "speed_head") and model.f0_head.parametrizations.weight.original1.shape[0] == 192
    wave, target = _batch(2)
    extras = {"synthesizer": torch.tensor([0, 2]), "f0": torch.rand(2, 192) * 0.05}
    loss, parts = model(wave, target=target, extras=extras)
    assert torch.isfinite(loss) and parts["cls_c"] > 0


# --- through the trainer, with the real pseudo-label transform --------------------------------------

ABLATIONS = sorted(p.stem for p in RECIPE_DIR.glob("fd-add*.yaml"))


def test_every_ablation_has_a_recipe():
    assert ABLATIONS == ["fd-add", "fd-add-f0", "fd-add-no-adversarial", "fd-add-no-blend", "fd-add-no-content-stream",
                         "fd-add-no-shuffle", "fd-add-no-synth-stream", "fd-add-single-stream"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_built_dataset(tmp_path_factory.mktemp("built"), {"train": 8, "validation": 4})


# The full transform costs ~0.6 s per item on one CPU core (ffmpeg + Kaiser-sinc speed change):
# the per-recipe steps use its crop-only setting, the end-to-end run the real one.
CROP_ONLY = {"speed": False, "compression": False}


def _recipe_config(name: str, built: Path, cache: Path, out: Path, epochs: int = 1,
                   transform: dict | None = CROP_ONLY) -> TrainConfig:
    recipe = Recipe.from_yaml(RECIPE_DIR / f"{name}.yaml")
    kwargs = {**recipe.train["model"].get("kwargs", {}), **TINY, "wav2clip_init": False,  # offline, tiny
              **({"transform_options": transform} if transform else {})}
    return TrainConfig.from_dict({
        "data": {"dataset": str(built), "cache_dir": str(cache)},
        "model": {"name": "fd-add", "kwargs": kwargs},
        "optim": {**recipe.train["optim"], "epochs": epochs, "batch_size": 4, "num_workers": 0},
        "early_stopping": recipe.train.get("early_stopping", {}),
        "seed": 3, "device": "cpu", "out_dir": str(out), "tensorboard": False,
    })


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.mark.parametrize("name", ABLATIONS)
def test_each_recipe_trains_one_step_with_the_trainer(name, built, tmp_path):
    summary = train(_recipe_config(name, built, tmp_path / "hf", tmp_path / "run"), progress=False)
    assert summary["epochs_completed"] == 1 and summary["model_kwargs"]["systems"] == ["codecA", "codecB"]
    row = next(csv.DictReader((tmp_path / "run/train_log.csv").open()))
    assert {f"train_{k}" for k in LOSS_PARTS} <= set(row) and math.isfinite(float(row["train_loss"]))


@needs_ffmpeg
def test_fd_add_trains_two_epochs_end_to_end_with_the_real_transform(tmp_path):
    built = write_built_dataset(tmp_path / "built", {"train": 4, "validation": 4}, min_len=20000, max_len=60000)
    cfg = _recipe_config("fd-add", built, tmp_path / "hf", tmp_path / "a", epochs=2, transform=None)
    assert "transform_options" not in cfg.model.kwargs
    summary = train(cfg, progress=False)
    rows = list(csv.DictReader((tmp_path / "a/train_log.csv").open()))
    assert summary["epochs_completed"] == 2 and len(rows) == 2
    assert all(float(rows[-1][f"train_{k}"]) > 0 for k in LOSS_PARTS)


def test_fd_add_resumes_to_the_same_weights(built, tmp_path):
    train(_recipe_config("fd-add", built, tmp_path / "hf", tmp_path / "a", epochs=2), progress=False)
    # One epoch, then resume for the second: same weights as the uninterrupted run.
    half = _recipe_config("fd-add", built, tmp_path / "hf", tmp_path / "b", epochs=1)
    train(half, progress=False)
    train(_recipe_config("fd-add", built, tmp_path / "hf", tmp_path / "b", epochs=2), progress=False)
    a = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_transform_is_the_pseudo_label_transform_for_the_models_systems():
    import pickle

    from benchmark.augment.pseudo_labels import PseudoLabelTransform

    t = create_model("fd-add", systems=SYSTEMS, pseudo_labels="f0", transform_options={"p_compression": 0.5},
                     **TINY).train_transform()
    assert isinstance(t, PseudoLabelTransform) and t.systems == SYSTEMS
    assert t.config.num_samples == 48000 and t.config.f0 and t.config.speed and t.config.p_compression == 0.5
    assert pickle.loads(pickle.dumps(t)).systems == SYSTEMS  # loader workers
    with pytest.raises(TypeError, match="transform_options \\['speeed'\\].*Fix: use fields of"):
        create_model("fd-add", transform_options={"speeed": False}, **TINY).train_transform()


def test_wav2clip_initialises_both_streams_from_the_audio_encoder(tmp_path):
    from benchmark.models.resnet import ResNet18Spec
    from benchmark.models.wav2clip import Wav2CLIPWeightsError

    torch.manual_seed(11)
    encoder = ResNet18Spec(widths=TINY["widths"])
    ckpt = tmp_path / "Wav2CLIP.pt"
    torch.save({**{f"audio_encoder.{k}": v for k, v in encoder.state_dict().items() if not k.startswith("fc.")},
                "audio_transform.sequential.0.weight": torch.zeros(2, 2)}, ckpt)
    model = create_model("fd-add", systems=SYSTEMS, wav2clip_init=True, wav2clip_checkpoint=str(ckpt), **TINY)
    assert torch.equal(model.backbone.conv1.weight, encoder.conv1.weight)
    assert torch.equal(model.backbone.layer3[1].bn2.running_var, encoder.layer3[1].bn2.running_var)
    # The synthesizer stream is copied after loading: it starts from Wav2CLIP's layer4 too.
    assert torch.equal(model.synth_layer4[1].conv2.weight, encoder.layer4[1].conv2.weight)
    with pytest.raises(Wav2CLIPWeightsError, match="Wav2CLIP checkpoint not found. Fix:"):
        create_model("fd-add", wav2clip_init=True, wav2clip_checkpoint=str(tmp_path / "none.pt"), **TINY)
    with pytest.raises(Wav2CLIPWeightsError, match="does not fit fd-add's ResNet18"):
        create_model("fd-add", wav2clip_init=True, wav2clip_checkpoint=str(ckpt))


def test_fd_add_trains_under_sam(built, tmp_path):
    # SAM calls the objective twice per step (BN statistics frozen on the second pass).
    cfg = _recipe_config("fd-add", built, tmp_path / "hf", tmp_path / "sam")
    cfg.optim.sam = "sam"
    summary = train(cfg, progress=False)
    row = next(csv.DictReader((tmp_path / "sam/train_log.csv").open()))
    assert summary["epochs_completed"] == 1 and math.isfinite(float(row["train_adv"]))

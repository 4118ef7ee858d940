"""SSL front-end on tiny random wav2vec2 / WavLM configs saved with save_pretrained."""

from pathlib import Path

import pytest
import torch

from benchmark.frontends.feature_cache import FeatureCache
from benchmark.frontends.ssl import SSLFrontend, SSLWeightsError

N = 64600


def make_tiny(kind: str, path: Path, seed: int = 0) -> Path:
    """hidden 32, 2 layers, 8-channel conv stack with the real kernels/strides (201 frames for 64,600)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

    cfg_cls, model_cls = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "wavlm": (WavLMConfig, WavLMModel)}[kind]
    cfg = cfg_cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                  do_stable_layer_norm=True, feat_extract_norm="layer", vocab_size=8)
    torch.manual_seed(seed)
    model_cls(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {k: make_tiny(k, root / k) for k in ("wav2vec2", "wavlm")}


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm"])
def test_shapes_and_layer_choice(tiny, kind):
    from transformers import AutoModel

    wave = torch.randn(2, N)
    ref = AutoModel.from_pretrained(str(tiny[kind])).eval()
    with torch.no_grad():
        x = (wave - wave.mean(1, keepdim=True)) / torch.sqrt(wave.var(1, keepdim=True, unbiased=False) + 1e-7)
        hidden = ref(x, output_hidden_states=True).hidden_states
    for layer in (0, 1, 2):
        fe = SSLFrontend(tiny[kind], layer=layer)
        assert fe.num_features == 32 and fe.num_frames(N) == 201
        out = fe(wave)
        assert out.shape == (2, 32, 201)
        # Dropping the layers above `layer` must not change hidden_states[layer].
        torch.testing.assert_close(out, hidden[layer].transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_cache_hit_is_identical_and_reused_across_instances(tiny, tmp_path):
    wave = torch.randn(3, N)
    fe = SSLFrontend(tiny["wav2vec2"], layer=1, cache_dir=tmp_path)
    first = fe(wave)
    assert fe.cache.misses == 3 and len(fe.cache) == 3
    again = SSLFrontend(tiny["wav2vec2"], layer=1, cache_dir=tmp_path)  # another model/run, same weights
    second = again(wave[[2, 0]])
    assert again.cache.hits == 2 and again.cache.misses == 0
    assert torch.equal(second, first[[2, 0]])
    # Mixed batch: one new row computed, cached rows untouched.
    fresh = torch.randn(1, N)
    mixed = again(torch.cat([wave[:1], fresh]))
    assert torch.equal(mixed[0], first[0]) and again.cache.misses == 1 and len(again.cache) == 4


def test_float16_cache_gives_the_stored_values_on_the_first_epoch_too(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("CODECFAKE_CACHE_DTYPE", "float16")
    wave = torch.randn(2, N)
    fe = SSLFrontend(tiny["wav2vec2"], layer=1, cache_dir=tmp_path)
    first = fe(wave)  # computed, rounded through float16 as stored
    second = SSLFrontend(tiny["wav2vec2"], layer=1, cache_dir=tmp_path)(wave)  # read back
    assert torch.equal(first, second) and first.dtype == torch.float32
    exact = SSLFrontend(tiny["wav2vec2"], layer=1).compute(wave).float()
    assert not torch.equal(first, exact) and torch.allclose(first, exact, rtol=2e-3, atol=1e-3)


def test_cache_key_depends_on_input_layer_and_weights(tiny, tmp_path):
    wave = torch.randn(N)
    key = SSLFrontend(tiny["wav2vec2"], layer=1, cache_dir=tmp_path).cache.key
    assert key(wave) == key(wave.clone())
    nudged = wave.clone()
    nudged[123] += 1e-6
    assert key(nudged) != key(wave)
    assert SSLFrontend(tiny["wav2vec2"], layer=2, cache_dir=tmp_path).cache.key(wave) != key(wave)
    other = make_tiny("wav2vec2", tmp_path / "other", seed=1)  # same config, other weights
    assert SSLFrontend(other, layer=1, cache_dir=tmp_path).cache.key(wave) != key(wave)


def test_cache_entries_are_atomic_npy(tmp_path):
    cache = FeatureCache(tmp_path, "p")
    k = cache.key(torch.ones(10))
    cache.put(k, torch.arange(6.0).view(2, 3))
    assert torch.equal(cache.get(k), torch.arange(6.0).view(2, 3))
    assert not list(tmp_path.rglob("*.tmp"))
    cache.path(k).write_bytes(b"torn")  # an unreadable entry is a miss, not a crash
    assert cache.get(k) is None


def test_frozen_has_no_grad_and_no_state(tiny):
    fe = SSLFrontend(tiny["wav2vec2"], layer=1)
    assert list(fe.parameters()) == [] and list(fe.state_dict()) == []
    fe.train()
    assert not fe.ssl_model.training
    out = fe(torch.randn(2, N))
    assert not out.requires_grad


def test_finetuned_has_grad(tiny):
    fe = SSLFrontend(tiny["wavlm"], layer=1, finetune=True)
    names = [n for n, p in fe.named_parameters() if p.requires_grad]
    assert names and not any("feature_extractor" in n for n in names)  # CNN encoder frozen by default
    fe(torch.randn(2, N)).square().mean().backward()
    assert fe.ssl.encoder.layers[0].attention.k_proj.weight.grad is not None
    assert len(fe.ssl.encoder.layers) == 2  # layer 1 + the one kept above it


def test_missing_weights_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SSLWeightsError) as err:
        SSLFrontend(str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    with pytest.raises(SSLWeightsError, match="not found in the Hugging Face cache.*Fix:"):
        SSLFrontend("someone/not-a-cached-model-xyz")
    fe = SSLFrontend("facebook/wav2vec2-xls-r-300m")  # known shape: builds offline, weights load on first use
    assert fe.num_features == 1024 and fe.num_frames(N) == 201


def _refuse_network(monkeypatch) -> list[str]:
    """Every socket connection attempt fails and is recorded (as in test_ssl_params)."""
    import socket

    calls: list[str] = []

    def refuse(*args, **kwargs):
        calls.append(repr(args[:2]))
        raise OSError("network disabled by the test")

    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


def test_random_init_is_the_official_architecture_with_no_download(monkeypatch):
    import benchmark.frontends.ssl as ssl_mod
    from benchmark.frontends.ssl import W2V2_BASE, WAVLM_BASE, count_ssl_params, ssl_config

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # online as far as the code knows ...
    calls = _refuse_network(monkeypatch)  # ... but any connection attempt fails and is recorded
    monkeypatch.setattr(ssl_mod, "_cache_first", lambda *a, **k: pytest.fail("a checkpoint was looked up"))
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    tuned = SSLFrontend(W2V2_BASE, layer=12, finetune=True, random_init=True)
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's random state is untouched
    # wav2vec 2.0 base as released (KNOWN_ARCHITECTURES): 94,371,712 parameters, all 12 layers kept.
    assert tuned.random_init and tuned.num_params() == count_ssl_params(ssl_config(W2V2_BASE)) == 94_371_712
    frozen = SSLFrontend(WAVLM_BASE, layer=1, random_init=True)
    held = sum(p.numel() for p in frozen.ssl_model.parameters())  # loaded lazily, randomly, here
    assert held == frozen.num_params() == count_ssl_params(ssl_config(WAVLM_BASE), keep_layers=2)
    assert calls == []


def test_random_weights_block_applies_to_front_ends_built_inside(tmp_path):
    from benchmark.frontends.ssl import random_weights

    # Saved from seed 1: random_init draws under seed 0, so the two weight sets differ.
    checkpoint = make_tiny("wav2vec2", tmp_path / "seed1", seed=1)
    with random_weights():
        inside = SSLFrontend(checkpoint, layer=1)
    outside = SSLFrontend(checkpoint, layer=1)
    assert inside.random_init and not outside.random_init
    # The front-end keeps the choice: its frozen model, loaded after the block, is random, not the checkpoint.
    key = "encoder.layers.0.attention.k_proj.weight"
    assert not torch.equal(inside.ssl_model.state_dict()[key], outside.ssl_model.state_dict()[key])
    # Seeded: the same random weights in every build.
    again = SSLFrontend(checkpoint, layer=1, random_init=True).ssl_model
    assert torch.equal(again.state_dict()[key], inside.ssl_model.state_dict()[key])

"""w2v2-aasist, wavlm-aasist, w2v2-lcnn on tiny SSL configs; back-end sizes of the released models."""

import pytest
import torch

from benchmark.models import create_model
from benchmark.models.w2v2_aasist import RELEASED_BACKEND_PARAMS, W2V2AASISTBackend
from tests.benchmark.test_ssl_frontend import make_tiny

N = 64600


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {k: str(make_tiny(k, root / k)) for k in ("wav2vec2", "wavlm")}


def test_backend_matches_released_checkpoint_size():
    backend = W2V2AASISTBackend()
    assert sum(p.numel() for p in backend.parameters()) == RELEASED_BACKEND_PARAMS == 447_242
    assert backend.pos_S.shape == (1, 42, 64) and backend.out_layer.in_features == 160
    assert backend.LL.in_features == 1024 and backend.LL.out_features == 128
    out = backend.eval()(torch.randn(2, 1024, 201))
    assert out.shape == (2, 2)


def test_full_size_models_build_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # weights are loaded on first forward only
    aasist = create_model("w2v2-aasist")
    assert aasist.backend_params() == RELEASED_BACKEND_PARAMS
    lcnn = create_model("w2v2-lcnn")
    assert lcnn.out[1].in_features == 24576  # Codecfake's Linear(24576, 160)
    assert lcnn.backend_params() == 4_111_074
    assert create_model("wavlm-aasist").frontend.model_id == "microsoft/wavlm-large"


@pytest.mark.parametrize("name,kind", [("w2v2-aasist", "wav2vec2"), ("wavlm-aasist", "wavlm"),
                                       ("w2v2-lcnn", "wav2vec2")])
def test_tiny_models_forward_and_train(tiny, name, kind, tmp_path):
    model = create_model(name, ssl_model=tiny[kind], ssl_layer=1, feature_cache=str(tmp_path))
    assert all(not k.startswith("frontend.") for k in model.state_dict())
    assert model.backend_params() == sum(p.numel() for p in model.parameters())
    model.train()
    logits = model(torch.randn(4, N))
    assert logits.shape == (4, 2)
    logits.sum().backward()
    # Residual blocks keep Codecfake's never-applied bn1 (checkpoint compatibility).
    assert all(p.grad is not None for n, p in model.named_parameters() if ".bn1." not in n)
    assert model.frontend.cache.misses == 4 and len(model.frontend.cache) == 4
    model.eval()
    assert model.score(torch.randn(2, N)).shape == (2,)


def test_finetuned_model_trains_ssl_but_backend_params_exclude_it(tiny):
    model = create_model("w2v2-aasist", ssl_model=tiny["wav2vec2"], ssl_layer=1, ssl_finetune=True)
    total = sum(p.numel() for p in model.parameters())
    assert model.backend_params() < total
    assert any(k.startswith("frontend.ssl.") for k in model.state_dict())
    model.train()
    # HF layerdrop (kept in fine-tuning, as fairseq does) skips layers at random; off here so the
    # gradient check does not depend on the global RNG.
    model.frontend.ssl.config.layerdrop = 0.0
    model(torch.randn(2, N)).sum().backward()
    assert model.frontend.ssl.encoder.layers[0].feed_forward.output_dense.weight.grad is not None

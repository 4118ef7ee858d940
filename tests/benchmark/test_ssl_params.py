"""SSL front-end sizes without weights or network: the built-in architectures of the default
checkpoints, counted on the meta device, and ``python -m benchmark models`` with HF_HUB_OFFLINE unset."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.frontends.ssl import (KNOWN_ARCHITECTURES, W2V2_BASE, WAVLM_BASE, WAVLM_LARGE, XLSR_300M,
                                     SSLFrontend, SSLWeightsError, architecture_only, count_ssl_params, ssl_config)
from tests.benchmark.test_ssl_frontend import make_tiny

REPO = Path(__file__).resolve().parents[2]

#: transformers' AutoModel (Wav2Vec2Model / WavLMModel) of each released checkpoint.
FULL = {XLSR_300M: 315_438_720, WAVLM_LARGE: 315_453_120, W2V2_BASE: 94_371_712, WAVLM_BASE: 94_381_936}
#: One transformer layer: attention, feed-forward, two LayerNorms; WavLM adds its gated relative
#: position terms (a constant per head and Linear(head_dim, 8)).
LARGE_LAYER, BASE_LAYER = 12_596_224, 7_087_872
LAYER = {XLSR_300M: LARGE_LAYER, WAVLM_LARGE: LARGE_LAYER + 16 + 64 * 8 + 8,
         W2V2_BASE: BASE_LAYER, WAVLM_BASE: BASE_LAYER + 12 + 64 * 8 + 8}


def _transformers_count(fields: dict, layers: int | None = None) -> int:
    """The reference: transformers' own config class and AutoModel, on the meta device."""
    from transformers import CONFIG_MAPPING, AutoModel

    fields = dict(fields)
    config = CONFIG_MAPPING[fields.pop("model_type")](**fields)
    if layers is not None:
        config.num_hidden_layers = layers
    with torch.device("meta"):
        return sum(p.numel() for p in AutoModel.from_config(config).parameters())


@pytest.mark.parametrize("model_id", sorted(FULL))
def test_known_architectures_count_exactly(model_id):
    config = ssl_config(model_id)
    assert count_ssl_params(config) == FULL[model_id] == _transformers_count(KNOWN_ARCHITECTURES[model_id])
    kept = count_ssl_params(config, keep_layers=6)
    assert kept == FULL[model_id] - (config.num_hidden_layers - 6) * LAYER[model_id]
    assert kept == _transformers_count(KNOWN_ARCHITECTURES[model_id], layers=6)


def test_frontend_counts_what_it_keeps_before_and_after_loading(tmp_path):
    tiny = make_tiny("wavlm", tmp_path / "wavlm")  # 2 layers; hidden_states[0] keeps 1
    frozen = SSLFrontend(tiny, layer=0)
    before = frozen.num_params()
    frozen.ssl_model  # loads the real weights, cut the same way
    assert before == frozen.num_params() == sum(p.numel() for p in frozen.ssl_model.parameters())
    tuned = SSLFrontend(tiny, layer=2, finetune=True)
    assert frozen.full_params() == tuned.num_params() == tuned.full_params() > before
    with torch.device("meta"), architecture_only():  # from the config only: same shapes, no weights read
        shapes = SSLFrontend(tiny, layer=0, finetune=True)
    assert shapes.num_params() == before and shapes.ssl.feature_projection.projection.weight.is_meta


def test_known_frontend_builds_offline_fine_tuned_needs_weights(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # nothing cached
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:2])
        raise OSError("network disabled by the test")

    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    fe = SSLFrontend(WAVLM_LARGE, layer=5)
    assert fe.num_features == 1024 and fe.num_params() == FULL[WAVLM_LARGE] - 18 * LAYER[WAVLM_LARGE]
    with pytest.raises(SSLWeightsError) as err:
        SSLFrontend(W2V2_BASE, layer=12, finetune=True)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value) and W2V2_BASE in str(err.value)
    with pytest.raises(SSLWeightsError, match="someone/unknown-ssl: SSL config not found in the Hugging Face cache"):
        SSLFrontend("someone/unknown-ssl")
    assert calls == []


# Runs in a fresh interpreter so huggingface_hub reads an environment WITHOUT HF_HUB_OFFLINE at import.
_GUARDED_LISTING = """
import json, socket, sys
calls = []
def refuse(*args, **kwargs):
    calls.append(repr(args[:2]))
    raise OSError("network disabled by the test")
socket.getaddrinfo = socket.create_connection = socket.socket.connect = socket.socket.connect_ex = refuse
import benchmark.models
from benchmark.cli import main
from codecfake_build.registry import Registry
only = Registry("model")
for name in sys.argv[1].split(","):
    only.register(name)(benchmark.models.MODELS.get(name))
benchmark.models.MODELS = only
main(["models", "--json"])
print("NETWORK CALLS", json.dumps(calls), file=sys.stderr)
"""

EXPECTED = {
    # name: (params, backend_params, frontend_full_params or None when nothing is cut)
    "w2v2-aasist": (447_242 + FULL[XLSR_300M] - 18 * LARGE_LAYER, 447_242, FULL[XLSR_300M]),
    "wavlm-aasist": (447_242 + FULL[WAVLM_LARGE] - 18 * LAYER[WAVLM_LARGE], 447_242, FULL[WAVLM_LARGE]),
    "w2v2-lcnn": (4_111_074 + FULL[XLSR_300M] - 18 * LARGE_LAYER, 4_111_074, FULL[XLSR_300M]),
    "wavespec": (15_572_038 + FULL[XLSR_300M], 15_572_038, None),  # hidden_states[24]: all layers kept
    "w2v2-base-ft": (1_538 + FULL[W2V2_BASE], 1_538, None),
    "wavlm-base-ft": (1_538 + FULL[WAVLM_BASE], 1_538, None),
}


def test_models_lists_ssl_sizes_online_without_any_http(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "empty-hf-home")  # no cache: only the built-in architectures can answer
    res = subprocess.run([sys.executable, "-c", _GUARDED_LISTING, ",".join(EXPECTED)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'NETWORK CALLS []' in res.stderr and "cannot be built" not in res.stderr, res.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    for name, (params, backend, full) in EXPECTED.items():
        want = {"name": name, "params": params, "backend_params": backend}
        if full is not None:
            want["frontend_full_params"] = full
        assert rows[name] == want, name


def test_models_help_states_the_counting_rule(capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit):
        main(["models", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cut above the highest hidden state it reads" in text and "frontend_full_params" in text


def test_listing_shows_the_full_size_only_when_layers_are_cut(monkeypatch, capsys):
    import benchmark.models
    from benchmark.cli import main
    from benchmark.models.base import Detector
    from codecfake_build.registry import Registry

    class _Cut(Detector):  # a frozen 110-parameter pretrained front-end of which 50 are kept, a 22-parameter head
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(10, 2)

        def backend_params(self):
            return sum(p.numel() for p in self.parameters())

        def frontend_params(self):
            return 50

        def frontend_full_params(self):
            return 110

    fake = Registry("model")
    fake.register("cut-ssl")(_Cut)
    monkeypatch.setattr(benchmark.models, "MODELS", fake)
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "cut-ssl", "params": 72, "backend_params": 22, "frontend_full_params": 110}]
    assert main(["models"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("cut-ssl") and "72 parameters (22 without a pretrained front-end" in line
    assert "counted as kept, cut above the layer read, 110 in full" in line

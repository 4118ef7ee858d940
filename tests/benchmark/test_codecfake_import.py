"""Released Codecfake checkpoints are pickled whole modules of their model.py classes; we
read them with a restricted unpickler.  Here we make such a pickle: our modules re-classed
under a fake ``model`` module (their class names), saved with torch.save, then the fake
module is removed so only the restricted reader can load it."""

import os
import sys
import types

import pytest
import torch
from torch import nn

from benchmark.models import create_model
from benchmark.models.codecfake_import import import_codecfake, load_codecfake
from benchmark.models.w2v2_aasist import W2V2AASISTBackend
from tests.benchmark.test_ssl_frontend import make_tiny

THEIR_NAMES = {"W2V2AASISTBackend": "W2VAASIST", "_UnpooledBlock": "Residual_block", "LCNN": "LCNN"}


def _save_official_style(root: nn.Module, path, top_name: str) -> None:
    fake = types.ModuleType("model")
    sys.modules["model"] = fake
    try:
        for i, m in enumerate(root.modules()):
            if type(m).__module__.startswith("torch.nn"):
                continue
            name = top_name if i == 0 else THEIR_NAMES.get(type(m).__name__, type(m).__name__)
            if not hasattr(fake, name):
                setattr(fake, name, type(name, (type(m),), {"__module__": "model", "__qualname__": name}))
            m.__class__ = getattr(fake, name)
        torch.save(root, path)
    finally:
        del sys.modules["model"]


def test_w2v2_aasist_pickle_imports_with_classes_swapped(tmp_path):
    torch.manual_seed(0)
    theirs = W2V2AASISTBackend().eval()
    feats = torch.randn(2, 1024, 201)
    with torch.no_grad():
        expected = theirs(feats)
    _save_official_style(theirs, tmp_path / "anti-spoofing_feat_model.pt", "W2VAASIST")
    assert "model" not in sys.modules

    ck = import_codecfake(tmp_path / "anti-spoofing_feat_model.pt")
    assert ck.model == "w2v2-aasist" and ck.source_class == "model.W2VAASIST"
    assert ck.num_parameters == 447_242
    ours = W2V2AASISTBackend().eval()
    ours.load_state_dict({k.removeprefix("backend."): v for k, v in ck.state_dict.items()}, strict=True)
    with torch.no_grad():
        got = ours(feats)
    torch.testing.assert_close(got, expected.flip(1), atol=1e-5, rtol=0)  # their index 0 = bona fide


def test_mel_lcnn_pickle_loads_into_lcnn(tmp_path):
    torch.manual_seed(0)
    theirs = create_model("lcnn", log_mel=False).eval()
    wave = torch.randn(2, 64600)
    with torch.no_grad():
        expected = theirs(wave)
    _save_official_style(theirs, tmp_path / "m.pt", "LCNN")
    model = load_codecfake(tmp_path / "m.pt").eval()
    assert model.registry_name == "lcnn" and not model.frontend.log
    with torch.no_grad():
        torch.testing.assert_close(model(wave), expected.flip(1))


def test_w2v2_aasist_whole_model_from_pickle(tmp_path):
    tiny = str(make_tiny("wav2vec2", tmp_path / "tiny"))
    torch.manual_seed(0)
    _save_official_style(W2V2AASISTBackend(in_dim=32), tmp_path / "m.pt", "W2VAASIST")
    model = load_codecfake(tmp_path / "m.pt", ssl_model=tiny, ssl_layer=1).eval()
    assert model(torch.randn(1, 64600)).shape == (1, 2)


class Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_foreign_globals_are_refused(tmp_path):
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refusing to load global posix.getcwd|refusing to load global os.getcwd"):
        import_codecfake(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="Fix:"):
        import_codecfake(tmp_path / "missing.pt")




@pytest.mark.skipif(not os.environ.get("CODECFAKE_RELEASED_DIR"), reason="set CODECFAKE_RELEASED_DIR to "
                    "a folder holding their pretrained_model/ to check the real files")
def test_real_released_checkpoints():
    root = os.environ["CODECFAKE_RELEASED_DIR"]
    ck = import_codecfake(os.path.join(root, "pretrained_model/codec_w2v2aasist/anti-spoofing_feat_model.pt"))
    assert ck.model == "w2v2-aasist" and ck.num_parameters == 447_242

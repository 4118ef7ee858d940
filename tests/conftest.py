from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

requires_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared (real test material) not present")


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared not present")
    return SHARED


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty, offline HF hub cache and an empty project cache.  huggingface_hub reads its
    environment at import, so its constants are patched along with the variables."""
    import huggingface_hub.constants as hc

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "codecfake"))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    return cache

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

requires_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared (real test material) not present")


def have_ffmpeg_encoder(encoder: str) -> bool:
    """Whether an ffmpeg with this encoder (e.g. "libmp3lame") is on PATH, for skipif marks."""
    from codecfake_build.codecs import CodecUnavailableError
    from codecfake_build.codecs.ffmpeg import require_ffmpeg

    try:
        require_ffmpeg(encoder)
    except CodecUnavailableError:
        return False
    return True


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A tiny built dataset (32 train, 16 validation rows) for training tests; modules that need
    another size define their own ``built``."""
    from tests.benchmark.test_data import write_built_dataset

    return write_built_dataset(tmp_path_factory.mktemp("built"), {"train": 32, "validation": 16})


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The HF datasets cache folder for ``built``."""
    return tmp_path_factory.mktemp("hfcache")


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

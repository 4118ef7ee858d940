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

from __future__ import annotations

import pytest

from tests.scenarios import SHARED


@pytest.fixture
def shared():
    """The team's shared fixtures; tests that replay them skip, with the reason, where they are absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED} (CI always has them; set KUBECTL_MULTUS_SHARED)")
    return SHARED

"""The findings catalogue against what the tests make diagnose emit."""

from __future__ import annotations

import pytest

from kubectl_multus.core.findings import CATALOGUE
from tests.conftest import EMITTED, WHOLE_SUITE


@pytest.mark.runs_last
def test_every_catalogued_code_is_emitted_by_some_test(shared):
    """A code no test makes diagnose emit is a check nobody has seen work. Codes emitted that the
    catalogue lacks fail where they are emitted (diagnose asserts it)."""
    if not WHOLE_SUITE[0]:
        pytest.skip("needs the whole suite (plain `pytest`): it checks what every other test emitted")
    missing = sorted(set(CATALOGUE) - EMITTED)
    assert not missing, f"catalogue codes no test makes diagnose emit: {', '.join(missing)}"

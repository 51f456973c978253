from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenarios import SHARED


@pytest.fixture
def shared():
    """The team's shared fixtures; tests that replay them skip, with the reason, where they are absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED} (CI always has them; set KUBECTL_MULTUS_SHARED)")
    return SHARED


# --- the catalogue must not list a code no test exercises ------------------------------------
# Every Report built while the tests run adds its findings' codes here; the catalogue test, moved
# to the end of the run, compares them with CATALOGUE when the whole suite ran.
EMITTED: set[str] = set()
WHOLE_SUITE: list[bool] = [False]


def _record_emitted_codes() -> None:
    from kubectl_multus.core import diagnose

    init = diagnose.Report.__init__

    def recording(self: diagnose.Report, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        EMITTED.update(f.code for f in self.findings)

    diagnose.Report.__init__ = recording  # type: ignore[method-assign]


_record_emitted_codes()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    WHOLE_SUITE[0] = (
        {(config.invocation_params.dir / a).resolve() for a in config.args} == {Path(__file__).parent}
        and not config.getoption("keyword")
        and not config.getoption("markexpr")
        and not config.getoption("lf", default=False)
        and not config.getoption("deselect", default=None)
    )
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)

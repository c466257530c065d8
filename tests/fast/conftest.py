"""The batch reader's record walks run compiled (ipsotrace/fast/_walk.c) or in Python: same results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipsotrace.fast import batch

COMPILED = batch.WALK if batch.WALK is not None else batch._walker()


@pytest.fixture(scope="module", params=["compiled", "python"])
def walker(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests with each walk; the compiled one is skipped where it is not built."""
    saved = batch.WALK
    if request.param == "compiled":
        if COMPILED is None:
            pytest.skip("the compiled walker is not built (no C compiler at install, or IPSOTRACE_NO_EXT=1)")
        batch.WALK = COMPILED
    else:
        batch.WALK = None
    yield request.param
    batch.WALK = saved

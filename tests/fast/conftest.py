"""The batch reader's record walks run compiled (ipsotrace/fast/_walk.c) or in Python, the header
walk compiled (ipsotrace/fast/_decode.c) or in numpy: same results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipsotrace.fast import batch, decode

COMPILED = batch.WALK if batch.WALK is not None else batch._walker()
COMPILED_DECODE = decode.DECODE if decode.DECODE is not None else decode._compiled_decoder()


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


@pytest.fixture(scope="module", params=["compiled", "numpy"])
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests with each header walk; the compiled one is skipped where it is not built."""
    saved = decode.DECODE
    if request.param == "compiled":
        if COMPILED_DECODE is None:
            pytest.skip("the compiled decoder is not built (no C compiler at install, or IPSOTRACE_NO_EXT=1)")
        decode.DECODE = COMPILED_DECODE
    else:
        decode.DECODE = None
    yield request.param
    decode.DECODE = saved

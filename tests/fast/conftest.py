"""The batch reader's record walks run compiled (ipsotrace/fast/_walk.c) or in Python, the header
walk compiled (ipsotrace/fast/_decode.c) or in numpy, the accumulator's passes compiled
(ipsotrace/fast/_aggregate.c) or in numpy: same results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipsotrace.fast import aggregate, batch, decode

COMPILED = batch.WALK if batch.WALK is not None else batch._walker()
COMPILED_DECODE = decode.DECODE if decode.DECODE is not None else decode._compiled_decoder()
COMPILED_AGG = aggregate.AGG if aggregate.AGG is not None else aggregate._compiled_accumulator()


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


@pytest.fixture(scope="module", params=["compiled", "numpy"])
def helpers(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests with every compiled helper of the engine (record walks, header walk,
    accumulator), then with none: the pure-Python and numpy versions."""
    saved = batch.WALK, decode.DECODE, aggregate.AGG
    if request.param == "compiled":
        if None in (COMPILED, COMPILED_DECODE, COMPILED_AGG):
            pytest.skip("the compiled helpers are not built (no C compiler at install, or IPSOTRACE_NO_EXT=1)")
        batch.WALK, decode.DECODE, aggregate.AGG = COMPILED, COMPILED_DECODE, COMPILED_AGG
    else:
        batch.WALK = decode.DECODE = aggregate.AGG = None
    yield request.param
    batch.WALK, decode.DECODE, aggregate.AGG = saved

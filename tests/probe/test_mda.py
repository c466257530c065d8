"""The MDA stopping rule: the published 95 % table and the bound beyond it."""

from __future__ import annotations

import math

import pytest

from ipsotrace.probe.mda import probes_to_rule_out


@pytest.mark.parametrize(("n", "probes"), [(2, 6), (3, 11), (4, 16), (5, 21), (6, 27), (8, 38), (16, 90)])
def test_design_table(n: int, probes: int) -> None:
    assert probes_to_rule_out(n) == probes


def test_beyond_the_table_is_the_papers_bound() -> None:
    for n in (17, 20, 32):
        expected = math.ceil(math.log(0.05 / n) / math.log((n - 1) / n))
        assert probes_to_rule_out(n) == expected
        # the chance of missing one of n equally likely next hops after that many flows is below 5 %
        assert n * ((n - 1) / n) ** expected <= 0.05


def test_monotonic() -> None:
    values = [probes_to_rule_out(n) for n in range(2, 40)]
    assert values == sorted(values)

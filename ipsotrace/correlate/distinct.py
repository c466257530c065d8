"""Mergeable distinct counting: exact up to ``k`` values, a KMV estimate beyond.

A k-minimum-values sketch keeps the ``k`` smallest 64-bit hashes seen.  The
kept set depends only on the *set* of values added, never on their order, so
two sketches merge into exactly the sketch one pass would have built.  Below
``k`` distinct values the count is exact; above, ``(k - 1) * 2**64 / h_k``
estimates it with a relative error near ``1 / sqrt(k)``.

Hashes must be stable across processes (merging partial results made
elsewhere), so Python's salted ``hash()`` is never used: integers go through
splitmix64 and keys through BLAKE2b.
"""

from __future__ import annotations

import hashlib

MASK64 = (1 << 64) - 1
DEFAULT_K = 1024


def mix64(x: int) -> int:
    """splitmix64 finaliser: a stable, well-spread 64-bit hash of an integer (vectorisable in numpy)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def key_hash(key: object) -> int:
    """Stable 64-bit hash of a key made of str/int/None/tuples (its ``repr`` is stable)."""
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")


class Distinct:
    """Count distinct 64-bit hashes: exact while at most ``k``, estimated beyond."""

    __slots__ = ("_cut", "_values", "k")

    def __init__(self, k: int = DEFAULT_K) -> None:
        self.k = k
        self._values: set[int] = set()
        # hashes >= _cut can never be among the k smallest again: rejected without storing
        self._cut = MASK64 + 1

    def add(self, h: int) -> None:
        if h >= self._cut or h in self._values:
            return
        self._values.add(h)
        # trimming at 2k keeps the amortised cost O(log k) per new value
        if len(self._values) > 2 * self.k:
            self._trim()

    def _trim(self) -> None:
        ordered = sorted(self._values)
        # every hash seen below the smallest dropped one is kept: the set stays order-independent
        self._cut = ordered[self.k]
        self._values = set(ordered[: self.k])

    def canonical(self) -> tuple[int, ...]:
        """The k smallest hashes plus, when more were seen, a marker: equal iff the sketches are."""
        vals = sorted(self._values)
        saturated = len(vals) > self.k or self._cut <= MASK64
        return (*vals[: self.k], -1) if saturated else tuple(vals)

    @property
    def exact(self) -> bool:
        return len(self._values) <= self.k and self._cut > MASK64

    def count(self) -> int:
        if self.exact:
            return len(self._values)
        kth = sorted(self._values)[self.k - 1]
        return max(self.k, round((self.k - 1) * (MASK64 + 1) / (kth + 1)))

    def merge(self, other: Distinct) -> None:
        if other.k != self.k:
            raise ValueError(f"cannot merge sketches of k={self.k} and k={other.k}")
        self._cut = min(self._cut, other._cut)
        self._values = {h for h in self._values | other._values if h < self._cut}
        if len(self._values) > 2 * self.k:
            self._trim()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distinct) and self.k == other.k and self.canonical() == other.canonical()

    def __repr__(self) -> str:
        return f"Distinct(count={self.count()}, exact={self.exact})"

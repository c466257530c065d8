"""The MDA stopping rule (Veitch et al., "Failure control in multipath route tracing", 2009).

``probes_to_rule_out(n)``: having seen ``n - 1`` next hops of a load balancer,
how many flows must have crossed it, all landing on those, before a further
(``n``-th) next hop is ruled out at 95 % confidence.  The published table
(used by scamper and Dublin traceroute) is kept verbatim; beyond it the bound
``ceil(ln(alpha / n) / ln((n - 1) / n))`` from the same paper.
"""

from __future__ import annotations

import math

ALPHA = 0.05

#: n → probes, for a 95 % confidence that there is no n-th next hop (n=2: rule out a second one)
TABLE_95 = {
    1: 1,
    2: 6,
    3: 11,
    4: 16,
    5: 21,
    6: 27,
    7: 33,
    8: 38,
    9: 44,
    10: 51,
    11: 57,
    12: 63,
    13: 70,
    14: 76,
    15: 83,
    16: 90,
}


def probes_to_rule_out(n: int, alpha: float = ALPHA) -> int:
    if n < 1:
        raise ValueError("n >= 1")
    if alpha == ALPHA and n in TABLE_95:
        return TABLE_95[n]
    if n == 1:
        return 1
    return math.ceil(math.log(alpha / n) / math.log((n - 1) / n))

"""One module per finding: each has a ``SPEC`` and a ``check(ctx) -> list[Finding]``."""

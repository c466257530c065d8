"""Build the optional compiled helpers; all other metadata is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the fast path uses its
pure-Python and numpy loops (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("ipsotrace.fast._walk", ["ipsotrace/fast/_walk.c"], optional=True),
        Extension("ipsotrace.fast._decode", ["ipsotrace/fast/_decode.c"], optional=True),
        Extension("ipsotrace.fast._aggregate", ["ipsotrace/fast/_aggregate.c"], optional=True),
    ]
)

"""Builds the compiled simulation core; all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stratforge.amm._core",
            sources=[
                "src/stratforge/amm/_core.c",
                "src/stratforge/amm/_evm.c",
                "src/stratforge/amm/_frontier_twin.c",
            ],
            depends=[
                "src/stratforge/amm/_evm.h",
                "src/stratforge/amm/_evm_interp.h",
                "src/stratforge/amm/_twin.h",
            ],
            extra_compile_args=["-O3", "-std=gnu11", "-fno-fast-math", "-ffp-contract=off"],
        )
    ]
)

"""udfs.jit: compiled code is cached on disk where numba can, and still compiles where it cannot."""

from __future__ import annotations

import numba
import pytest

from udfs.jit import njit


def test_a_function_without_a_source_file_compiles_uncached() -> None:
    namespace: dict[str, object] = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)  # noqa: S102 - a function numba cannot cache
    with pytest.raises(RuntimeError, match="no locator"):
        numba.njit(cache=True)(namespace["add_one"])
    fast = njit(namespace["add_one"])
    assert fast(41) == 42


def test_a_module_function_is_cached() -> None:
    def double(x: int) -> int:
        return 2 * x

    fast = njit(double)
    assert fast(21) == 42
    assert fast._cache.__class__.__name__ != "NullCache"

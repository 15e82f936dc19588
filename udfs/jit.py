"""numba's ``njit`` with on-disk caching where the code's location allows it.

``cache=True`` stores compiled code next to the module (or in a user-wide cache, or beside a zip it
was imported from); where numba finds no place for it, it raises at decoration. Then the function
is compiled per process instead (well under a second for each of this project's loops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba  # ImportError here tells callers to fall back to numpy


def njit(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``numba.njit(nogil=True, cache=True, **options)``, without the cache when it cannot have one.
    Importing this module raises ImportError without numba (callers fall back to numpy)."""

    def decorate(f: Callable[..., Any]) -> Any:
        try:
            return numba.njit(nogil=True, cache=True, **options)(f)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(f)

    return decorate(func) if func is not None else decorate

"""Connected components of an edge list in one process: union-find over integer node ids.

The dedup stage uses this inside one Spark task when the verified graph is small (a few million
edges: duplicates are a few % of a corpus), and Spark's large-star / small-star rounds above that.
Both label every node with the smallest node of its component.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np


def _union_find(a: np.ndarray, b: np.ndarray, parent: np.ndarray) -> None:
    """Union by smaller index, path halving: afterwards every root is its component's minimum."""

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in range(a.shape[0]):
        ra, rb = find(a[k]), find(b[k])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
    for x in range(parent.shape[0]):
        parent[x] = find(x)


@functools.lru_cache(maxsize=1)
def _kernel() -> Callable[..., Any]:
    try:
        from udfs.jit import njit
    except ImportError:
        return _union_find
    return njit(_union_find)


def component_minimum(a: np.ndarray, b: np.ndarray, n_nodes: int) -> np.ndarray:
    """For nodes ``0 .. n_nodes - 1`` and undirected edges ``(a[k], b[k])``: each node's
    component minimum (an isolated node is its own)."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    if len(a) != len(b):
        msg = f"a and b differ in length: {len(a)} != {len(b)}"
        raise ValueError(msg)
    if len(a) and (min(int(a.min()), int(b.min())) < 0 or max(int(a.max()), int(b.max())) >= n_nodes):
        msg = f"edge endpoints must lie in [0, {n_nodes})"
        raise ValueError(msg)
    parent = np.arange(n_nodes, dtype=np.int64)
    if len(a):
        _kernel()(a, b, parent)
    return parent


def label_components(a: list[Any], b: list[Any]) -> tuple[list[Any], list[Any]]:
    """``(ids, roots)`` for every id on the edges ``(a[k], b[k])``: root = the smallest id of its
    component. Ids are ints, or strings ordered by code point (which is also the UTF-8 byte order
    Spark compares strings in)."""
    strings = bool(a) and isinstance(a[0], str)
    ids, inverse = np.unique(np.array(a + b, dtype=object if strings else np.int64), return_inverse=True)
    n = len(a)
    roots = component_minimum(inverse[:n], inverse[n:], len(ids))
    return ids.tolist(), ids[roots].tolist()

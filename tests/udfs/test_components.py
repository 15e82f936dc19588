"""udfs.components: union-find labels against a breadth-first search written here."""

from __future__ import annotations

import random
from collections import defaultdict, deque

import numpy as np
import pytest

from udfs.components import component_minimum, label_components


def bfs_minimum(edges: list[tuple[int, int]], n: int) -> list[int]:
    adjacent = defaultdict(list)
    for x, y in edges:
        adjacent[x].append(y)
        adjacent[y].append(x)
    label = [-1] * n
    for start in range(n):  # ascending: the first node reached of a component is its minimum
        if label[start] >= 0:
            continue
        label[start] = start
        queue = deque([start])
        while queue:
            for nxt in adjacent[queue.popleft()]:
                if label[nxt] < 0:
                    label[nxt] = start
                    queue.append(nxt)
    return label


@pytest.mark.parametrize("seed", range(5))
def test_component_minimum_equals_bfs_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    n = 2000
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.choice([300, 1500, 4000]))]
    a, b = np.array([e[0] for e in edges]), np.array([e[1] for e in edges])
    assert component_minimum(a, b, n).tolist() == bfs_minimum(edges, n)


def test_a_long_path_in_reverse_order_is_one_component() -> None:
    n = 100_000
    a = np.arange(n - 1, 0, -1)
    got = component_minimum(a, a - 1, n)
    assert (got == 0).all()


def test_no_edges_and_self_loops() -> None:
    assert component_minimum(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3).tolist() == [0, 1, 2]
    assert component_minimum(np.array([2]), np.array([2]), 3).tolist() == [0, 1, 2]


def test_bad_input_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        component_minimum(np.array([0, 1]), np.array([1]), 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        component_minimum(np.array([0]), np.array([2]), 2)


def test_label_components_roots_are_the_smallest_string_ids() -> None:
    ids, roots = label_components(["b", "d", "x", "é", "c"], ["a", "c", "y", "z", "b"])
    got = dict(zip(ids, roots, strict=True))
    assert got == {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x", "z": "z", "é": "z"}
    # code point order == UTF-8 byte order (Spark's string order), also past the BMP
    assert min("\uffff", "\U00010000") == "\uffff"
    assert "\uffff".encode() < "\U00010000".encode()


def test_label_components_on_integer_ids() -> None:
    ids, roots = label_components([5, 7, 1 << 40], [7, 9, 3])
    assert dict(zip(ids, roots, strict=True)) == {5: 5, 7: 5, 9: 5, 3: 3, 1 << 40: 3}

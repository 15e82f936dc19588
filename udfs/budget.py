"""Token budgets (pure Python): the target, per-source shares, and where each source's cut falls.

Target: ``model_params x tokens_per_param`` (20: Chinchilla's compute-optimal ratio, Hoffmann et al.
2022) or an explicit token count. Each source gets ``target x weight``; weights default to each
source's share of the available tokens. Selection takes records in a seeded hash order (so a re-run
selects the same records) until the source's target is reached. To find the cut without sorting a
whole source in one task, records are bucketed by hash (``BUCKETS`` buckets); the bucket where the
cumulative token count crosses the target is the only one sorted exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

BUCKETS = 4096


@dataclass(frozen=True)
class SourcePlan:
    """How one source meets its target.

    ``select_all`` false: records in hash order up to the target are kept, the rest dropped as
    ``over_budget``; the cut is buckets ``[0, full_buckets)`` whole plus ``boundary_tokens`` of bucket
    ``full_buckets``. ``select_all`` true (the source is smaller than its target): every record is
    kept, plus ``repeats`` whole extra copies and, in hash order, a partial copy up to the same cut.
    """

    source: str
    available: int  # tokens (or records) of the source's good records of the budgeted kinds
    target: float  # what this source should contribute
    select_all: bool
    full_buckets: int
    boundary_tokens: float
    epochs_needed: float  # target / available (> 1: the source is too small)
    repeats: int  # whole extra copies (only with repeat: true)


def total_target(model_params: float | None, tokens_per_param: float, tokens: float | None) -> float | None:
    if tokens is not None:
        return float(tokens)
    if model_params is not None:
        return float(model_params) * tokens_per_param
    return None


def shares(available: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, float]:
    """Fraction of the budget per source: given weights (normalized; percentages fine) or by tokens."""
    if weights:
        total = sum(weights.values())
        return {s: weights.get(s, 0.0) / total for s in available}
    total = sum(available.values())
    return {s: (n / total if total else 0.0) for s, n in available.items()}


def plan_source(source: str, bucket_tokens: Mapping[int, int], target: float, repeat: bool,
                max_epochs: float) -> SourcePlan:
    """Where the cut falls in one source, from its tokens per hash bucket."""
    available = sum(bucket_tokens.values())
    epochs = target / available if available else math.inf
    if epochs <= 1:
        full, rest = cut(bucket_tokens, target)
        return SourcePlan(source, available, target, False, full, rest, epochs, 0)
    if not (repeat and available):
        return SourcePlan(source, available, target, True, -1, 0.0, epochs, 0)  # -1: no partial copy
    # whole passes first, then a partial pass in hash order, capped at max_epochs
    capped = min(epochs, max_epochs)
    full, rest = cut(bucket_tokens, (capped - math.floor(capped)) * available)
    return SourcePlan(source, available, target, True, full, rest, epochs, int(math.floor(capped)) - 1)


def cut(bucket_tokens: Mapping[int, int], target: float) -> tuple[int, float]:
    """(buckets taken whole, tokens still to take from the next bucket) for a prefix of ``target``."""
    cumulative = 0
    for bucket in range(BUCKETS):
        tokens = bucket_tokens.get(bucket, 0)
        if cumulative + tokens > target:
            return bucket, target - cumulative
        cumulative += tokens
    return BUCKETS, 0.0


def fill_range(bucket_counts: Mapping[int, int], start: int, min_records: int = 20_000) -> int:
    """End (exclusive) of the bucket range from ``start`` holding at least ``min_records`` records
    (or every bucket left): the records the driver looks at to finish the cut."""
    if start < 0:
        return start
    seen = 0
    for bucket in range(start, BUCKETS):
        seen += bucket_counts.get(bucket, 0)
        if seen >= min_records:
            return bucket + 1
    return BUCKETS


def greedy_fill(records: list[tuple[int, str, int]], gap: float) -> list[str]:
    """Ids to take, in hash order, from ``(order_key, id, measure)`` records: every record that
    still fits the remaining ``gap``. The prefix of hash order that fits is taken first; a record too
    large for what is left is skipped and smaller later ones fill in, so a source lands within one
    small record of its target instead of one large one."""
    taken = []
    for _key, rid, n in sorted(records):
        if n <= gap:
            taken.append(rid)
            gap -= n
    return taken

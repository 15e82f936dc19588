"""LSH banding over MinHash signatures: band/row choice, stable band hashes, Jaccard helpers.

Pure Python + numpy (scipy for the integrals, as datasketch); no pyspark.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np

_MASK64 = (1 << 64) - 1
# splitmix64 / MurmurHash3 constants; any odd multipliers would do, these avalanche well.
_BAND_SEED = 0x9E3779B97F4A7C15
_ROW_MUL = 0xBF58476D1CE4E5B9
_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """Probability ``1 - (1 - j**rows)**bands`` that two sets of Jaccard ``j`` share a band.

    The S-curve of banding. At datasketch's "optimal" (b, r) for a threshold t, a pair at exactly
    ``j == t`` is a candidate only ~40-50% of the time (t=0.8, 128 perms: (9, 13) gives 0.40), so
    for high recall band for a lower threshold, i.e. pick (b, r) with ``candidate_probability(t)``
    near 1 (see :func:`bands_rows_for_recall`), then drop candidates whose Jaccard is below t.
    """
    return 1.0 - (1.0 - j ** float(rows)) ** float(bands)


def _false_positive_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    area, _err = quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)
    return float(area)


def _false_negative_area(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    area, _err = quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)
    return float(area)


@functools.lru_cache(maxsize=256)
def optimal_bands_rows(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive + false negative areas.

    Same search and same integrals as datasketch ``MinHashLSH``'s ``_optimal_param``, so the same
    answer (first minimum in b-major, r-minor order). O(num_perm log num_perm) integrals: cached.
    """
    if not 0.0 < threshold < 1.0:
        msg = f"threshold must be in (0, 1), got {threshold}"
        raise ValueError(msg)
    if num_perm < 1:
        msg = f"num_perm must be >= 1, got {num_perm}"
        raise ValueError(msg)
    min_error = float("inf")
    best = (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _false_positive_area(threshold, b, r)
            fn = _false_negative_area(threshold, b, r)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < min_error:
                min_error = error
                best = (b, r)
    return best


@functools.lru_cache(maxsize=256)
def bands_rows_for_recall(threshold: float, num_perm: int, min_recall: float = 0.95) -> tuple[int, int]:
    """(bands, rows) with ``candidate_probability(threshold) >= min_recall`` and the least false
    positive area below ``threshold``; candidates must then be verified against ``threshold``.
    """
    if not 0.0 < threshold < 1.0 or not 0.0 < min_recall < 1.0:
        msg = f"threshold and min_recall must be in (0, 1), got {threshold}, {min_recall}"
        raise ValueError(msg)
    best: tuple[float, int, int] | None = None
    for r in range(1, num_perm + 1):
        # More bands only raise the false positives, so per r take the fewest that reach the recall.
        p_band = threshold**r
        if p_band == 0.0:
            break
        b = max(1, math.ceil(math.log1p(-min_recall) / math.log1p(-p_band)))
        # The closed form can be off by one in floating point; the check below is the definition.
        while b * r <= num_perm and candidate_probability(threshold, b, r) < min_recall:
            b += 1
        if b * r > num_perm:
            continue
        fp = _false_positive_area(threshold, b, r)
        if best is None or fp < best[0]:
            best = (fp, b, r)
    if best is None:
        msg = f"no banding of {num_perm} permutations reaches recall {min_recall} at {threshold}"
        raise ValueError(msg)
    return best[1], best[2]


def _fmix64(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = (np.uint64(c) for c in _FMIX64)
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s3)


def band_hashes(sig_matrix: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One stable 64-bit key per band: ``(n_docs, bands)`` int64 (Spark LongType friendly).

    ``h = fmix64((band + 1) * SEED)``, then for each of the band's values ``v``:
    ``h = fmix64(h * MUL + v)`` in uint64 wrap-around arithmetic. Each step is a bijection in ``v``
    and depends on the band index, so equal values in different bands give different keys, and
    the keys are the same on every machine and process (no ``hash()``, no byte order). Only the
    first ``bands * rows`` columns are used, as datasketch's ``MinHashLSH`` does.
    """
    sig = np.asarray(sig_matrix)
    if sig.ndim != 2:
        msg = f"sig_matrix must be 2-D (n_docs, num_perm), got shape {sig.shape}"
        raise ValueError(msg)
    if bands < 1 or rows < 1 or bands * rows > sig.shape[1]:
        msg = f"bands * rows = {bands} * {rows} must be between 1 and num_perm = {sig.shape[1]}"
        raise ValueError(msg)
    values = sig[:, : bands * rows].astype(np.uint64).reshape(len(sig), bands, rows)
    band_ids = np.arange(1, bands + 1, dtype=np.uint64)
    h = np.broadcast_to(_fmix64(band_ids * np.uint64(_BAND_SEED)), (len(sig), bands))
    for j in range(rows):
        h = _fmix64(h * np.uint64(_ROW_MUL) + values[:, :, j])
    return np.ascontiguousarray(h).view(np.int64)


def jaccard(a_shingles: Iterable[bytes], b_shingles: Iterable[bytes]) -> float:
    """Exact Jaccard of the two shingle sets; 1.0 when both are empty (as their signatures say)."""
    a, b = set(a_shingles), set(b_shingles)
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal positions of two signatures (datasketch's ``MinHash.jaccard``)."""
    sig_a, sig_b = np.asarray(sig_a), np.asarray(sig_b)
    if sig_a.shape != sig_b.shape or sig_a.ndim != 1:
        msg = f"signatures must be 1-D of the same length, got shapes {sig_a.shape} and {sig_b.shape}"
        raise ValueError(msg)
    return float(np.count_nonzero(sig_a == sig_b)) / float(len(sig_a))


def estimated_jaccard_rows(sigs_a: np.ndarray, sigs_b: np.ndarray) -> np.ndarray:
    """Row-wise :func:`estimated_jaccard` of two ``(n_pairs, num_perm)`` arrays (candidate check)."""
    sigs_a, sigs_b = np.asarray(sigs_a), np.asarray(sigs_b)
    if sigs_a.shape != sigs_b.shape or sigs_a.ndim != 2:
        msg = f"signature arrays must be 2-D of the same shape, got {sigs_a.shape} and {sigs_b.shape}"
        raise ValueError(msg)
    return np.count_nonzero(sigs_a == sigs_b, axis=1) / float(sigs_a.shape[1])

"""udfs.lsh: banding parameters equal datasketch's, stable band keys, Jaccard helpers."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param
from scipy.integrate import quad

from tests.shared import shared_data_file
from udfs.lsh import (
    band_hashes,
    bands_rows_for_recall,
    candidate_probability,
    estimated_jaccard,
    estimated_jaccard_rows,
    jaccard,
    optimal_bands_rows,
)
from udfs.minhash import shingles, signature_matrix

DEDUP_DEMO = "data-juicer/demos/data/demo-dataset-deduplication.jsonl"




# --- banding parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("num_perm", [16, 64, 128, 250, 256])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95])
def test_optimal_bands_rows_equals_datasketch(threshold: float, num_perm: int) -> None:
    assert optimal_bands_rows(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


@pytest.mark.parametrize(("fp_weight", "fn_weight"), [(0.3, 0.7), (0.9, 0.1), (0.1, 0.9)])
@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_optimal_bands_rows_with_weights_equals_datasketch(
    threshold: float, fp_weight: float, fn_weight: float
) -> None:
    assert optimal_bands_rows(threshold, 128, fp_weight, fn_weight) == _optimal_param(
        threshold, 128, fp_weight, fn_weight
    )
    lsh = MinHashLSH(threshold=threshold, num_perm=128, weights=(fp_weight, fn_weight))
    assert optimal_bands_rows(threshold, 128, fp_weight, fn_weight) == (lsh.b, lsh.r)


def test_candidate_probability_by_hand() -> None:
    assert candidate_probability(0.5, bands=2, rows=1) == pytest.approx(0.75)
    assert candidate_probability(0.5, bands=1, rows=2) == pytest.approx(0.25)
    assert candidate_probability(0.5, bands=2, rows=2) == pytest.approx(1 - 0.75**2)
    assert candidate_probability(1.0, bands=9, rows=13) == 1.0
    assert candidate_probability(0.0, bands=9, rows=13) == 0.0
    # The known weakness this helper documents: datasketch's (9, 13) for t=0.8 finds ~40% at J=0.8.
    assert candidate_probability(0.8, bands=9, rows=13) == pytest.approx(0.3988, abs=1e-4)


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.5, 64), (0.7, 128), (0.8, 128), (0.9, 256)])
def test_bands_rows_for_recall_is_the_cheapest_feasible_banding(threshold: float, num_perm: int) -> None:
    b, r = bands_rows_for_recall(threshold, num_perm, min_recall=0.95)
    assert b * r <= num_perm
    assert candidate_probability(threshold, b, r) >= 0.95

    def fp_area(bands: int, rows: int) -> float:
        return quad(lambda s: 1 - (1 - s**rows) ** bands, 0.0, threshold)[0]

    feasible = [
        (bb, rr)
        for bb in range(1, num_perm + 1)
        for rr in range(1, num_perm // bb + 1)
        if candidate_probability(threshold, bb, rr) >= 0.95
    ]
    assert min(fp_area(bb, rr) for bb, rr in feasible) == pytest.approx(fp_area(b, r), rel=1e-9)


# --- band hashes -------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1


def fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def band_hash_int(values: list[int], band: int) -> int:
    """The documented band-key formula in plain Python integers, as a second implementation."""
    h = fmix64_int(((band + 1) * 0x9E3779B97F4A7C15) & MASK64)
    for v in values:
        h = fmix64_int((h * 0xBF58476D1CE4E5B9 + v) & MASK64)
    return h - (1 << 64) if h >= 1 << 63 else h


def test_band_hashes_match_the_documented_formula() -> None:
    rng = np.random.RandomState(0)
    sigs = rng.randint(0, 1 << 32, size=(5, 12), dtype=np.uint64).astype(np.uint32)
    got = band_hashes(sigs, bands=3, rows=4)
    assert got.dtype == np.int64 and got.shape == (5, 3)
    expected = [
        [band_hash_int([int(v) for v in row[4 * k : 4 * k + 4]], k) for k in range(3)] for row in sigs
    ]
    assert got.tolist() == expected


def test_band_hashes_of_uint64_signatures_use_all_64_bits() -> None:
    sigs = np.array([[(1 << 64) - 1, 1 << 63], [(1 << 64) - 1, 1 << 62]], dtype=np.uint64)
    got = band_hashes(sigs, bands=1, rows=2)
    assert got[:, 0].tolist() == [
        band_hash_int([(1 << 64) - 1, 1 << 63], 0),
        band_hash_int([(1 << 64) - 1, 1 << 62], 0),
    ]
    assert got[0, 0] != got[1, 0]


def test_identical_signatures_give_identical_band_hashes() -> None:
    docs = [
        shingles(t)
        for t in ["the same document, word for word, twice over"] * 2 + ["another text entirely here"]
    ]
    keys = band_hashes(signature_matrix(docs), bands=16, rows=8)
    assert keys[0].tolist() == keys[1].tolist()
    assert not set(keys[0].tolist()) & set(keys[2].tolist())


def test_a_change_in_one_band_changes_only_that_band() -> None:
    sig = signature_matrix([shingles("one two three four five six seven eight nine ten")])[0]
    changed = sig.copy()
    changed[5 * 8 + 3] ^= 1  # a value in band 5 (rows=8)
    keys = band_hashes(np.stack([sig, changed]), bands=16, rows=8)
    differs = [k for k in range(16) if keys[0, k] != keys[1, k]]
    assert differs == [5]


def test_band_index_is_part_of_the_key() -> None:
    sig = np.full((1, 32), 7, dtype=np.uint32)  # every band holds the same values
    keys = band_hashes(sig, bands=4, rows=8)
    assert len(set(keys[0].tolist())) == 4


def test_columns_past_bands_times_rows_are_ignored() -> None:
    sig = signature_matrix([shingles("columns past the banded ones do not matter at all")], num_perm=128)
    other = sig.copy()
    other[0, 117:] = 0
    np.testing.assert_array_equal(band_hashes(sig, 9, 13), band_hashes(other, 9, 13))


def test_band_hashes_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="num_perm"):
        band_hashes(np.zeros((2, 16), dtype=np.uint32), bands=5, rows=4)
    with pytest.raises(ValueError, match="2-D"):
        band_hashes(np.zeros(16, dtype=np.uint32), bands=2, rows=8)


# --- Jaccard -----------------------------------------------------------------------------------


def test_exact_jaccard_by_hand() -> None:
    assert jaccard([b"a", b"b", b"c"], [b"b", b"c", b"d"]) == pytest.approx(2 / 4)
    assert jaccard([b"a", b"a", b"b"], [b"a", b"b", b"b"]) == 1.0
    assert jaccard([b"a"], []) == 0.0
    assert jaccard([], []) == 1.0
    # {the cat, cat sat, sat on, on the, the mat} vs {the cat, cat sat, sat on, on a, a mat}: 3 / 7
    a = shingles("The cat sat on the mat", ngram=2)
    b = shingles("the cat sat on a mat.", ngram=2)
    assert jaccard(a, b) == pytest.approx(3 / 7)


def test_estimated_jaccard_by_hand_and_against_datasketch() -> None:
    assert estimated_jaccard(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError):
        estimated_jaccard(np.zeros(4), np.zeros(5))
    docs = [
        shingles("the quick brown fox jumps over the lazy dog again and again", ngram=2),
        shingles("the quick brown fox jumped over the lazy dog again and again", ngram=2),
    ]
    sigs = signature_matrix(docs, num_perm=256)
    ref = []
    for doc in docs:
        m = MinHash(num_perm=256)
        m.update_batch(doc)
        ref.append(m)
    assert estimated_jaccard(sigs[0], sigs[1]) == ref[0].jaccard(ref[1])
    assert estimated_jaccard_rows(sigs[:1], sigs[1:]).tolist() == [ref[0].jaccard(ref[1])]


# --- the data-juicer near-duplicate demo -------------------------------------------------------


@pytest.mark.shared_data
def test_dedup_demo_near_duplicate_pairs() -> None:
    with shared_data_file(DEDUP_DEMO).open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    assert len(texts) == 14
    docs = [shingles(t, ngram=5, unit="auto") for t in texts]
    pairs = {
        (i, j): jaccard(docs[i], docs[j])
        for i, j in itertools.combinations(range(len(docs)), 2)
        if jaccard(docs[i], docs[j]) >= 0.7
    }
    for (i, j), sim in sorted(pairs.items()):
        print(f"J={sim:.3f} #{i} {texts[i][:70]!r}\n          #{j} {texts[j][:70]!r}")
    # Checked by eye: 6/11 the same sentence; 7/8 and 9/10 one added/removed "s" in a long
    # article (9/10 are its first half); 12/13 a Chinese UN note, one adds "时间：".
    assert set(pairs) == {(6, 11), (7, 8), (9, 10), (12, 13)}

    # Banding for recall at 0.7 then verifying the candidates finds exactly these pairs.
    b, r = bands_rows_for_recall(0.7, 128)
    sigs = signature_matrix(docs, num_perm=128)
    buckets: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    for doc, keys in enumerate(band_hashes(sigs, b, r).tolist()):
        for band, key in enumerate(keys):
            buckets[(band, key)].append(doc)
    candidates = {pair for members in buckets.values() for pair in itertools.combinations(members, 2)}
    assert set(pairs) <= candidates
    verified = {(i, j) for i, j in candidates if estimated_jaccard(sigs[i], sigs[j]) >= 0.7}
    assert verified == set(pairs)

"""udfs.minhash: shingling rules and bit-for-bit parity with datasketch.MinHash."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import numpy as np
import pytest
from datasketch import MinHash

from tests.shared import shared_data_file
from udfs import minhash
from udfs.minhash import empty_signature, permutations, shingles, signature_matrix


def read_texts(relative: str) -> list[str]:
    with shared_data_file(relative).open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


@functools.cache
def real_docs(relative: str, unit: str) -> list[list[bytes]]:
    return [shingles(t, ngram=5, unit=unit) for t in read_texts(relative)]  # type: ignore[arg-type]


def datasketch_signature(
    doc: list[bytes], num_perm: int, seed: int, scheme: str, hashfunc: Callable[[bytes], int] | None = None
) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, hashfunc=hashfunc)
    for shingle in doc:
        m.update(shingle)
    return m.hashvalues


def datasketch_matrix(docs: list[list[bytes]], num_perm: int, seed: int, scheme: str) -> np.ndarray:
    return np.array([datasketch_signature(d, num_perm, seed, scheme) for d in docs])


# --- shingling -------------------------------------------------------------------------------


def test_word_shingles_by_hand() -> None:
    assert shingles("The quick brown fox jumps over", ngram=3) == [
        b"the quick brown",
        b"quick brown fox",
        b"brown fox jumps",
        b"fox jumps over",
    ]


def test_word_shingles_are_unicode_aware_and_casefolded() -> None:
    assert shingles("Straße, CAFÉ -- naïve!", ngram=2) == [
        "strasse café".encode(),
        "café naïve".encode(),
    ]
    assert shingles("Straße CAFÉ", ngram=2, lowercase=False) == ["Straße CAFÉ".encode()]


def test_short_and_empty_texts() -> None:
    assert shingles("Hello, world", ngram=5) == [b"hello world"]
    assert shingles("exactly five words right here", ngram=5) == [b"exactly five words right here"]
    assert shingles("") == []
    assert shingles("   \n\t ") == []
    assert shingles("!!! ...", unit="word") == []
    assert shingles("!!!", unit="char") == [b"!!!"]
    assert shingles("", unit="char") == []


def test_char_shingles_collapse_whitespace() -> None:
    assert shingles("你好  世界\n\n再见", ngram=3, unit="char") == [
        s.encode() for s in ["你好 ", "好 世", " 世界", "世界 ", "界 再", " 再见"]
    ]
    assert shingles("  AB  ", ngram=3, unit="char") == [b"ab"]


def test_duplicate_shingles_are_kept_in_order() -> None:
    assert shingles("a b a b a b", ngram=2) == [b"a b", b"b a", b"a b", b"b a", b"a b"]


@pytest.mark.parametrize(
    ("text", "char_mode"),
    [
        ("这是一个中文句子，没有空格。", True),
        ("我喜欢用Python和Spark写数据处理程序", True),
        ("今日はいい天気ですね", True),
        ("สวัสดีครับ ยินดีต้อนรับ", True),
        ("안녕하세요 세계 여러분", False),
        ("An English sentence with the word 中 in it.", False),
        ("12345 67890", False),
        ("", False),
    ],
)
def test_auto_unit(text: str, char_mode: bool) -> None:
    assert minhash.is_mostly_no_space_script(text) is char_mode
    expected = shingles(text, ngram=3, unit="char" if char_mode else "word")
    assert shingles(text, ngram=3, unit="auto") == expected


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unit"):
        shingles("x", unit="sentence")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ngram"):
        shingles("x", ngram=0)
    with pytest.raises(ValueError, match="scheme"):
        signature_matrix([[b"x"]], scheme="affine16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hash"):
        signature_matrix([[b"x"]], hash="md5")  # type: ignore[arg-type]


# --- permutations and signatures: synthetic ----------------------------------------------------

SYNTHETIC = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "The quick brown fox jumped over the lazy dog near the river bank!",
    "",
    "Short one",
    "Sur la plateforme MT4, plusieurs manières d'accéder à ces fonctionnalités.",
    "国际海底管理局大会第八届会议请秘书长采取一项临时措施",
    "a b a b a b a b a b a b",
    "   ",
]


@pytest.mark.parametrize("scheme", minhash.SCHEMES)
@pytest.mark.parametrize(("num_perm", "seed"), [(16, 1), (128, 7), (200, 42)])
def test_permutations_match_datasketch(scheme: str, num_perm: int, seed: int) -> None:
    a, b = permutations(num_perm, seed, scheme)  # type: ignore[arg-type]
    ref_a, ref_b = MinHash(num_perm=num_perm, seed=seed, scheme=scheme).permutations
    assert a.dtype == np.asarray(ref_a).dtype and np.array_equal(a, ref_a)
    assert b.dtype == np.asarray(ref_b).dtype and np.array_equal(b, ref_b)


def test_permutations_are_cached_and_read_only() -> None:
    first = permutations(64, 3, "affine32")
    assert permutations(64, 3, "affine32") is first
    with pytest.raises(ValueError):
        first[0][0] = 1


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("scheme", minhash.SCHEMES)
@pytest.mark.parametrize(("num_perm", "seed"), [(16, 1), (128, 1), (256, 42)])
def test_synthetic_signatures_match_datasketch(scheme: str, num_perm: int, seed: int, kernel: bool) -> None:
    docs = [shingles(t, ngram=3, unit="auto") for t in SYNTHETIC]
    got = signature_matrix(docs, num_perm=num_perm, seed=seed, scheme=scheme, kernel=kernel)  # type: ignore[arg-type]
    expected = datasketch_matrix(docs, num_perm, seed, scheme)
    assert got.dtype == expected.dtype
    assert got.shape == (len(docs), num_perm)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("scheme", minhash.SCHEMES)
def test_empty_documents_get_the_empty_minhash(scheme: str, kernel: bool) -> None:
    got = signature_matrix([[], [b"x"], [], [], [b"y", b"z"], []], num_perm=32, scheme=scheme,  # type: ignore[arg-type]
                           kernel=kernel)
    fresh = MinHash(num_perm=32, scheme=scheme).hashvalues
    for row in (0, 2, 3, 5):
        np.testing.assert_array_equal(got[row], fresh)
    np.testing.assert_array_equal(empty_signature(32, scheme), fresh)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got[1], datasketch_signature([b"x"], 32, 1, scheme))
    np.testing.assert_array_equal(got[4], datasketch_signature([b"y", b"z"], 32, 1, scheme))
    assert signature_matrix([], num_perm=32, scheme=scheme).shape == (0, 32)  # type: ignore[arg-type]


def test_duplicate_shingles_do_not_change_the_signature() -> None:
    with_dups = shingles("a b a b a b a b", ngram=2)
    unique = list(dict.fromkeys(with_dups))
    got = signature_matrix([with_dups, unique])
    np.testing.assert_array_equal(got[0], got[1])


@pytest.mark.parametrize("scheme", minhash.SCHEMES)
def test_chunking_splits_documents_without_changing_results(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """The numpy path cuts the (num_perm x shingles) product into chunks; the numba one does not."""
    docs = [shingles(t, ngram=2, unit="auto") for t in SYNTHETIC * 3]
    whole = signature_matrix(docs, num_perm=64, scheme=scheme, kernel=True)  # type: ignore[arg-type]
    assert whole.shape == (len(docs), 64)
    # 64 cells = one shingle per chunk, then 5 shingles: every document-boundary case gets crossed.
    for cells in (64, 5 * 64):
        monkeypatch.setattr(minhash, "_CHUNK_CELLS", cells)
        np.testing.assert_array_equal(signature_matrix(docs, num_perm=64, scheme=scheme, kernel=False), whole)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", minhash.SCHEMES)
def test_numba_and_numpy_signatures_agree_on_random_hashes(scheme: str) -> None:
    rng = np.random.default_rng(11)
    counts = np.r_[0, rng.integers(0, 400, 300), 0, 1]
    hashes = rng.integers(0, 1 << 63, int(counts.sum()), dtype=np.uint64)
    if scheme != "affine64":
        hashes = hashes.astype(np.uint32)
    for num_perm, seed in [(1, 1), (128, 3), (256, 9)]:
        fast = minhash.signatures_from_hashes(hashes, counts, num_perm, seed, scheme, kernel=True)  # type: ignore[arg-type]
        slow = minhash.signatures_from_hashes(hashes, counts, num_perm, seed, scheme, kernel=False)  # type: ignore[arg-type]
        assert fast.dtype == slow.dtype
        np.testing.assert_array_equal(fast, slow)


def test_xxhash_matches_datasketch_with_the_same_hashfunc() -> None:
    xxhash = pytest.importorskip("xxhash")
    docs = [shingles(t, ngram=3, unit="auto") for t in SYNTHETIC]
    for scheme, name, func in [
        ("affine32", "xxh32", xxhash.xxh32_intdigest),
        ("legacy", "xxh32", xxhash.xxh32_intdigest),
        ("affine64", "xxh64", xxhash.xxh64_intdigest),
    ]:
        got = signature_matrix(docs, num_perm=64, seed=5, scheme=scheme, hash=name)  # type: ignore[arg-type]
        expected = np.array([datasketch_signature(d, 64, 5, scheme, func) for d in docs])
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="affine64"):
        signature_matrix(docs, hash="xxh64", scheme="affine32")


# --- signatures: real third-party data ---------------------------------------------------------

REAL_SETS = {
    "c4_en_word5": ("llamafactory/c4_demo.jsonl", "word"),
    "firefly_zh_char5": ("firefly/data/pretrain/dummy_pretrain.jsonl", "char"),
    "datajuicer_dedup_auto5": ("data-juicer/demos/data/demo-dataset-deduplication.jsonl", "auto"),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset", sorted(REAL_SETS))
@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("num_perm", [128, 256])
@pytest.mark.parametrize("seed", [1, 42])
@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
def test_real_data_signatures_match_datasketch(dataset: str, scheme: str, num_perm: int, seed: int,
                                               kernel: bool) -> None:
    relative, unit = REAL_SETS[dataset]
    docs = real_docs(relative, unit)
    assert all(docs), "every real document should give at least one shingle"
    got = signature_matrix(docs, num_perm=num_perm, seed=seed, scheme=scheme, kernel=kernel)  # type: ignore[arg-type]
    expected = datasketch_matrix(docs, num_perm, seed, scheme)
    assert got.dtype == expected.dtype
    mismatched = [i for i in range(len(docs)) if not np.array_equal(got[i], expected[i])]
    assert mismatched == [], f"{len(mismatched)}/{len(docs)} documents differ from datasketch"


@pytest.mark.shared_data
def test_chinese_pretrain_data_is_sent_to_char_mode() -> None:
    texts = read_texts("firefly/data/pretrain/dummy_pretrain.jsonl")
    assert all(minhash.is_mostly_no_space_script(t) for t in texts)
    assert not any(minhash.is_mostly_no_space_script(t) for t in read_texts("llamafactory/c4_demo.jsonl"))

"""MinHash signatures for near-duplicate detection, bit-identical to datasketch 2.0.

Pure Python + numpy (no pyspark): shingling, and batched signatures equal to
``datasketch.MinHash(num_perm, seed, scheme, hashfunc).hashvalues`` after ``update()`` with each
shingle.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from udfs.sha1 import hash_spans

Unit = Literal["word", "char", "auto"]
Scheme = Literal["affine32", "affine64", "legacy"]
HashName = Literal["sha1", "xxh32", "xxh64"]

SCHEMES: tuple[str, ...] = ("affine32", "affine64", "legacy")
HASHES: tuple[str, ...] = ("sha1", "xxh32", "xxh64")

_WORD_RE = re.compile(r"\w+")
_WHITESPACE_RE = re.compile(r"\s+")
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
# Scripts written without spaces between words: word tokens would be whole clauses there.
_NO_SPACE_SCRIPT_RE = re.compile(
    "["
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f"  # Bopomofo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # halfwidth Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
    "]"
)

# Empty-set value per scheme: datasketch initialises hashvalues to the scheme's max hash.
_MAX_HASH = {"legacy": (1 << 32) - 1, "affine32": (1 << 32) - 1, "affine64": (1 << 64) - 1}
_DTYPE = {"legacy": np.uint64, "affine32": np.uint32, "affine64": np.uint64}
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_FMIX = {
    32: (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16),
    64: (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33),
}
# Cells of the (num_perm x shingles) product held at once (4-8 MiB): measured fastest on 2 KB
# documents; smaller chunks pay per-chunk overhead, larger ones fall out of cache.
_CHUNK_CELLS = 1 << 20


def is_mostly_no_space_script(text: str) -> bool:
    """True when Han/Kana/Thai/Lao/Khmer/Myanmar/Tibetan characters are at least as many as the
    words (letter runs) of all other scripts.

    Counting one such character against one other-script word, not letter against letter, keeps a
    Chinese text with some English terms in char mode. Digits and punctuation do not vote. Hangul is
    not counted: Korean separates words with spaces, so word shingles suit it.
    """
    no_space_chars = len(_NO_SPACE_SCRIPT_RE.findall(text))
    if no_space_chars == 0:
        return False
    other_words = len(_LETTER_RUN_RE.findall(_NO_SPACE_SCRIPT_RE.sub(" ", text)))
    return no_space_chars >= other_words


def shingles(text: str, *, ngram: int = 5, unit: Unit = "word", lowercase: bool = True) -> list[bytes]:
    """Return the utf-8 n-gram shingles of ``text`` in document order (duplicates kept).

    ``word``: ``\\w+`` tokens (Unicode-aware, after ``casefold`` when ``lowercase``) joined by one
    space. ``char``: character n-grams after collapsing whitespace runs to one space.
    ``auto``: ``char`` when :func:`is_mostly_no_space_script`, else ``word``.
    A text with fewer than ``ngram`` units gives one shingle of all of them, so short documents
    still get a signature; a text with no units (empty, only spaces or punctuation in word mode)
    gives none.
    """
    if ngram < 1:
        msg = f"ngram must be >= 1, got {ngram}"
        raise ValueError(msg)
    if unit == "auto":
        unit = "char" if is_mostly_no_space_script(text) else "word"
    if lowercase:
        text = text.casefold()
    if unit == "word":
        tokens = _WORD_RE.findall(text)
        if len(tokens) <= ngram:
            return [" ".join(tokens).encode("utf-8")] if tokens else []
        return [" ".join(tokens[i : i + ngram]).encode("utf-8") for i in range(len(tokens) - ngram + 1)]
    if unit == "char":
        chars = _WHITESPACE_RE.sub(" ", text).strip()
        if len(chars) <= ngram:
            return [chars.encode("utf-8")] if chars else []
        return [chars[i : i + ngram].encode("utf-8") for i in range(len(chars) - ngram + 1)]
    msg = f"unit must be 'word', 'char' or 'auto', got {unit!r}"
    raise ValueError(msg)


@functools.lru_cache(maxsize=64)
def permutations(num_perm: int, seed: int, scheme: Scheme = "affine32") -> tuple[np.ndarray, np.ndarray]:
    """Return the read-only ``(a, b)`` permutation parameters exactly as ``MinHash`` draws them."""
    if scheme not in SCHEMES:
        msg = f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}"
        raise ValueError(msg)
    if num_perm < 1:
        msg = f"num_perm must be >= 1, got {num_perm}"
        raise ValueError(msg)
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        # Drawn interleaved (a0, b0, a1, b1, ...), one scalar at a time: the draw order is the contract.
        pairs = [
            (
                gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
                gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
            )
            for _ in range(num_perm)
        ]
        a, b = np.array(pairs, dtype=np.uint64).T.copy()
    else:
        width = 32 if scheme == "affine32" else 64
        dtype = _DTYPE[scheme]
        # Odd `a` makes a*h+b mod 2^w a bijection (no collisions introduced by the permutation).
        a = gen.randint(0, 1 << (width - 1), num_perm, dtype=dtype) * dtype(2) + dtype(1)
        b = gen.randint(0, 1 << width, num_perm, dtype=dtype)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def _fmix(values: np.ndarray, width: int) -> np.ndarray:
    """MurmurHash3 finalizer on a uint array; wrap-around is the intended mod 2^width."""
    dtype = np.uint32 if width == 32 else np.uint64
    s1, m1, s2, m2, s3 = (dtype(c) for c in _FMIX[width])
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s3)


def hash_shingles(flat: Sequence[bytes], hash: HashName = "sha1", width: int = 32) -> np.ndarray:
    """Hash each shingle to the integer ``MinHash.hashfunc`` would return, as uint32/uint64.

    ``sha1`` is datasketch's default: ``sha1_hash32`` (first 4 digest bytes, little-endian) for
    width 32, ``sha1_hash64`` (first 8) for width 64, computed by :mod:`udfs.sha1` (libcrypto from
    numba: faster per shingle than ``xxhash`` called from Python). ``xxh32``/``xxh64`` (seed 0) equal
    datasketch only when it is given ``hashfunc=xxhash.xxh32_intdigest`` (or ``xxh64_intdigest``).
    """
    if hash == "sha1":
        lengths = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
        ends = np.cumsum(lengths)
        return hash_spans(b"".join(flat), ends - lengths, ends, width)
    if hash in ("xxh32", "xxh64"):
        try:
            import xxhash
        except ImportError as err:
            msg = f"hash={hash!r} needs the xxhash package: pip install xxhash"
            raise ImportError(msg) from err
        if hash == "xxh64" and width == 32:
            msg = "hash='xxh64' gives 64-bit values; use it with scheme='affine64', or use hash='xxh32'"
            raise ValueError(msg)
        func = xxhash.xxh32_intdigest if hash == "xxh32" else xxhash.xxh64_intdigest
        dtype = np.uint32 if width == 32 else np.uint64
        return np.fromiter(map(func, flat), dtype=dtype, count=len(flat))
    msg = f"hash must be one of {', '.join(HASHES)}, got {hash!r}"
    raise ValueError(msg)


def span_hashes(buf: bytes, starts: np.ndarray, ends: np.ndarray, hash: HashName = "sha1",
                width: int = 32) -> np.ndarray:
    """:func:`hash_shingles` of the shingles ``buf[starts[k]:ends[k]]`` (see
    :func:`udfs.dedup_key.shingle_spans`); sha1 hashes the spans in place (:mod:`udfs.sha1`)."""
    if hash == "sha1":
        return hash_spans(buf, starts, ends, width)
    return hash_shingles([buf[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)], hash, width)


def _permute_into(
    hashes: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: str, out: np.ndarray
) -> np.ndarray:
    """Write the (num_perm, len(hashes)) permuted values into ``out`` with datasketch's arithmetic."""
    if scheme == "legacy":
        # a*h overflows uint64 (a < 2^61, h < 2^32); datasketch wraps too, so the wrap is the spec.
        np.multiply(a[:, None], hashes.astype(np.uint64), out=out)
        out += b[:, None]
        # x % (2^61-1) without a 64-bit division: fold the top bits down, then one conditional subtract.
        high = out >> np.uint64(61)
        out &= _MERSENNE_PRIME
        out += high
        np.subtract(out, _MERSENNE_PRIME, out=out, where=out >= _MERSENNE_PRIME)
        out &= np.uint64(_MAX_HASH["legacy"])
        return out
    width = 32 if scheme == "affine32" else 64
    np.multiply(a[:, None], _fmix(hashes.astype(_DTYPE[scheme]), width), out=out)
    out += b[:, None]
    return out


@functools.lru_cache(maxsize=1)
def _signature_kernels() -> dict[str, Any] | None:
    """numba loops computing the signatures one document at a time, the running minimum of every
    permutation kept in a small array (vectorized over permutations): about 4x faster than the
    numpy version, which materializes the (num_perm, shingles) product. None without numba."""
    try:
        from udfs.jit import njit
    except ImportError:
        return None
    u32, u64 = np.uint32, np.uint64
    prime = u64((1 << 61) - 1)
    low32 = u64(0xFFFFFFFF)

    @njit
    def affine32(h: Any, counts: Any, a: Any, b: Any, out: Any) -> None:
        running = np.empty(a.shape[0], dtype=np.uint32)
        pos = 0
        for d in range(counts.shape[0]):
            running[:] = u32(0xFFFFFFFF)
            for k in range(pos, pos + counts[d]):
                x = u32(h[k])  # MurmurHash3 fmix32, then a*x + b mod 2^32
                x = u32(x ^ (x >> u32(16)))
                x = u32(x * u32(0x85EBCA6B))
                x = u32(x ^ (x >> u32(13)))
                x = u32(x * u32(0xC2B2AE35))
                x = u32(x ^ (x >> u32(16)))
                for p in range(a.shape[0]):
                    running[p] = min(running[p], u32(a[p] * x + b[p]))
            pos += counts[d]
            out[d, :] = running

    @njit
    def affine64(h: Any, counts: Any, a: Any, b: Any, out: Any) -> None:
        running = np.empty(a.shape[0], dtype=np.uint64)
        pos = 0
        for d in range(counts.shape[0]):
            running[:] = u64(0xFFFFFFFFFFFFFFFF)
            for k in range(pos, pos + counts[d]):
                x = u64(h[k])  # MurmurHash3 fmix64, then a*x + b mod 2^64
                x = x ^ (x >> u64(33))
                x = x * u64(0xFF51AFD7ED558CCD)
                x = x ^ (x >> u64(33))
                x = x * u64(0xC4CEB9FE1A85EC53)
                x = x ^ (x >> u64(33))
                for p in range(a.shape[0]):
                    running[p] = min(running[p], a[p] * x + b[p])
            pos += counts[d]
            out[d, :] = running

    @njit
    def legacy(h: Any, counts: Any, a: Any, b: Any, out: Any) -> None:
        running = np.empty(a.shape[0], dtype=np.uint64)
        pos = 0
        for d in range(counts.shape[0]):
            running[:] = low32
            for k in range(pos, pos + counts[d]):
                x = u64(h[k])
                for p in range(a.shape[0]):
                    v = a[p] * x + b[p]  # wraps mod 2^64, as datasketch's does
                    v = (v & prime) + (v >> u64(61))  # mod 2^61 - 1 without a division
                    if v >= prime:
                        v -= prime
                    running[p] = min(running[p], v & low32)
            pos += counts[d]
            out[d, :] = running

    return {"affine32": affine32, "affine64": affine64, "legacy": legacy}


def signatures_from_hashes(
    hashes: np.ndarray,
    counts: Sequence[int] | np.ndarray,
    num_perm: int = 128,
    seed: int = 1,
    scheme: Scheme = "affine32",
    kernel: bool | None = None,
) -> np.ndarray:
    """Signatures of documents whose shingle hashes lie concatenated in ``hashes``, ``counts[i]`` each.

    Returns ``(len(counts), num_perm)``: uint32 for ``affine32``, uint64 for ``legacy`` and
    ``affine64`` (datasketch's dtypes). A document with no shingles gets the empty-MinHash value.
    Computed by numba when it is installed (``kernel=None``; True requires it, False forces numpy:
    both give the same values).
    """
    a, b = permutations(num_perm, seed, scheme)
    counts = np.asarray(counts, dtype=np.int64)
    if int(counts.sum()) != len(hashes):
        msg = f"counts sum to {int(counts.sum())} but there are {len(hashes)} hashes"
        raise ValueError(msg)
    dtype = _DTYPE[scheme]
    kernels = _signature_kernels() if kernel is not False else None
    if kernel and kernels is None:
        msg = "kernel=True needs numba: pip install numba"
        raise ImportError(msg)
    if kernels is not None:
        out = np.empty((len(counts), num_perm), dtype=dtype)
        kernels[scheme](np.ascontiguousarray(hashes), counts, a, b, out)
        return out
    # Permutation-major (num_perm, shingles) so the per-document min runs over contiguous memory.
    out = np.full((num_perm, len(counts)), _MAX_HASH[scheme], dtype=dtype)
    doc_of_row = np.repeat(np.arange(len(counts)), counts)
    chunk = max(1, _CHUNK_CELLS // num_perm)
    buffer = np.empty((num_perm, min(chunk, len(hashes))), dtype=dtype)
    # Chunks may split a document; np.minimum into `out` merges the pieces.
    for start in range(0, len(hashes), chunk):
        docs = doc_of_row[start : start + chunk]
        phv = _permute_into(hashes[start : start + chunk], a, b, scheme, buffer[:, : len(docs)])
        seg_starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        seg_docs = docs[seg_starts]
        out[:, seg_docs] = np.minimum(out[:, seg_docs], np.minimum.reduceat(phv, seg_starts, axis=1))
    return np.ascontiguousarray(out.T)


def signature_matrix(
    docs: Sequence[Sequence[bytes]],
    num_perm: int = 128,
    seed: int = 1,
    scheme: Scheme = "affine32",
    hash: HashName = "sha1",
    kernel: bool | None = None,
) -> np.ndarray:
    """MinHash signatures of a batch of shingle lists, shape ``(len(docs), num_perm)``.

    With ``hash="sha1"`` row i equals ``MinHash(num_perm=num_perm, seed=seed, scheme=scheme)``
    updated with each shingle of ``docs[i]``; see :func:`hash_shingles` for the xxhash options.
    """
    if scheme not in SCHEMES:
        msg = f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}"
        raise ValueError(msg)
    flat = list(itertools.chain.from_iterable(docs))
    hashes = hash_shingles(flat, hash, 64 if scheme == "affine64" else 32)
    return signatures_from_hashes(hashes, [len(d) for d in docs], num_perm, seed, scheme, kernel)


def empty_signature(num_perm: int = 128, scheme: Scheme = "affine32") -> np.ndarray:
    """The signature of a document without shingles (datasketch's freshly built MinHash)."""
    return np.full(num_perm, _MAX_HASH[scheme], dtype=_DTYPE[scheme])

"""udfs.sha1: every backend gives hashlib's SHA-1 (datasketch's sha1_hash32 / sha1_hash64)."""

from __future__ import annotations

import hashlib
import random
import struct

import numpy as np
import pytest
from datasketch.hashfunc import sha1_hash32, sha1_hash64

from udfs import sha1


def _spans(messages: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    lengths = np.array([len(m) for m in messages], dtype=np.int64)
    ends = np.cumsum(lengths)
    return b"".join(messages), ends - lengths, ends


# Lengths around the 55/56/64-byte padding edges, empty, multi-block, every byte value.
RNG = random.Random(5)
MESSAGES = [b"", b"abc", bytes(range(256)), "中文 émigré".encode()] + [
    bytes(RNG.randrange(256) for _ in range(n)) for n in (*range(50, 70), 119, 120, 127, 128, 129, 1000)
] + [bytes(RNG.randrange(97, 123) for _ in range(RNG.randrange(1, 80))) for _ in range(2000)]


@pytest.mark.parametrize("backend", sha1.BACKENDS)
def test_every_backend_equals_datasketch_hash_functions(backend: str) -> None:
    buf, starts, ends = _spans(MESSAGES)
    got32 = sha1.hash_spans(buf, starts, ends, 32, backend)
    got64 = sha1.hash_spans(buf, starts, ends, 64, backend)
    assert got32.dtype == np.uint32 and got64.dtype == np.uint64
    assert got32.tolist() == [sha1_hash32(m) for m in MESSAGES]
    assert got64.tolist() == [sha1_hash64(m) for m in MESSAGES]


def test_spans_may_overlap_and_come_in_any_order() -> None:
    buf = b"the quick brown fox jumps"
    starts, ends = np.array([4, 0, 4, 10]), np.array([25, 9, 9, 10])
    want = [struct.unpack("<I", hashlib.sha1(buf[a:b]).digest()[:4])[0] for a, b in zip(starts, ends, strict=True)]
    assert sha1.hash_spans(buf, starts, ends).tolist() == want
    assert sha1.hash_spans(np.frombuffer(buf, dtype=np.uint8), starts, ends).tolist() == want


def test_the_fastest_loadable_backend_is_chosen_and_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sha1.backend() == "openssl"  # numba and this interpreter's libcrypto are installed here
    sha1.backend.cache_clear()
    monkeypatch.setenv("CORPUSMILL_SHA1_BACKEND", "hashlib")
    try:
        assert sha1.backend() == "hashlib"
    finally:
        sha1.backend.cache_clear()
    monkeypatch.setenv("CORPUSMILL_SHA1_BACKEND", "md5")
    try:
        with pytest.raises(ValueError, match="openssl, numba, hashlib"):
            sha1.backend()
    finally:
        sha1.backend.cache_clear()


def test_bad_spans_and_widths_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="inside the buffer"):
        sha1.hash_spans(b"abc", np.array([0]), np.array([4]))
    with pytest.raises(ValueError, match="start <= end"):
        sha1.hash_spans(b"abc", np.array([2]), np.array([1]))
    with pytest.raises(ValueError, match="32 or 64"):
        sha1.hash_spans(b"abc", np.array([0]), np.array([1]), width=16)
    assert sha1.hash_spans(b"", np.array([0]), np.array([0])).tolist() == [sha1_hash32(b"")]
    assert sha1.hash_spans(b"abc", np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0,)

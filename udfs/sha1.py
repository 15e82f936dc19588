"""SHA-1 of many byte spans of one buffer, without a Python call per span.

datasketch's default MinHash hash is ``sha1_hash32``: the first 4 bytes of the SHA-1 digest read
little-endian (``sha1_hash64``: the first 8). Shingles are short (about 46 bytes for five English
words), so ``hashlib.sha1(s).digest()`` spends most of its time in the Python call, not in SHA-1.
:func:`hash_spans` hashes every span ``buf[starts[k]:ends[k]]`` in one compiled loop. Backends,
fastest first, each giving the same values as ``hashlib``:

- ``openssl``: a numba loop calling libcrypto's ``SHA1_Init/Update/Final`` directly (the library
  ``hashlib`` itself is built on, found through the process's loaded ``_hashlib``);
- ``numba``: SHA-1 (FIPS 180-4) written out in numba, for platforms where libcrypto cannot be
  loaded with ctypes;
- ``hashlib``: one ``hashlib.sha1`` call per span, when numba is not installed.

Measured on this project's 2-core machine, 452k real 5-word shingles (mean 46 bytes), ns per
shingle: openssl 55, numba 230, ``hashlib.sha1(s).digest()`` per shingle 404
(``python -m bench.dedup.sha1``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

BACKENDS: tuple[str, ...] = ("openssl", "numba", "hashlib")
_ENV = "CORPUSMILL_SHA1_BACKEND"  # force one backend (tests, or to work around a broken libcrypto)


def _libcrypto_paths() -> list[str]:
    """Where the libcrypto hashlib uses is: first the one mapped into this process (Linux), then
    whatever the platform's library search finds."""
    import _hashlib  # noqa: F401 - maps libcrypto into the process

    paths: list[str] = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                if "libcrypto" in os.path.basename(path) and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    found = ctypes.util.find_library("crypto")
    if found:
        paths.append(found)
    return paths


def _openssl_loop(init: Any, update: Any, final: Any) -> Callable[..., None]:
    """The numba loop over spans for libcrypto's SHA1_Init/Update/Final (ctypes functions).
    Their addresses are baked into the machine code: not cacheable, compiled once per process
    (about 0.3 s)."""
    import numba

    @numba.njit(nogil=True)
    def kernel(buf: Any, starts: Any, ends: Any, out: Any, wide: bool) -> None:
        digest = np.empty(5, dtype=np.uint32)  # native (little-endian) view of the digest bytes
        ctx = np.empty(64, dtype=np.uint32)  # SHA_CTX is 96 bytes; 256 leaves room
        for k in range(starts.shape[0]):
            init(ctx.ctypes.data)
            update(ctx.ctypes.data, buf[starts[k]:].ctypes.data, ends[k] - starts[k])
            final(digest.ctypes.data, ctx.ctypes.data)
            if wide:
                out[k] = np.uint64(digest[0]) | (np.uint64(digest[1]) << np.uint64(32))
            else:
                out[k] = digest[0]

    return kernel


def _openssl_kernel() -> Callable[..., None]:
    last_error: Exception | None = None
    for path in _libcrypto_paths():
        try:
            lib = ctypes.CDLL(path)
            init, update, final = lib.SHA1_Init, lib.SHA1_Update, lib.SHA1_Final
        except (OSError, AttributeError) as err:
            last_error = err
            continue
        init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
        update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
        final.argtypes, final.restype = [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
        return _openssl_loop(init, update, final)
    msg = f"libcrypto with SHA1_Init/Update/Final not found ({last_error})"
    raise OSError(msg)


def _numba_kernel() -> Callable[..., None]:
    import numba

    from udfs.jit import njit

    mask = np.uint64(0xFFFFFFFF)

    @numba.njit(inline="always")
    def rotl(x: Any, n: int) -> Any:
        return ((x << np.uint64(n)) | (x >> np.uint64(32 - n))) & mask

    @numba.njit(inline="always")
    def bswap32(x: Any) -> Any:
        return (((x & np.uint64(0xFF)) << np.uint64(24)) | ((x & np.uint64(0xFF00)) << np.uint64(8))
                | ((x >> np.uint64(8)) & np.uint64(0xFF00)) | (x >> np.uint64(24)))

    @njit
    def kernel(buf: Any, starts: Any, ends: Any, out: Any, wide: bool) -> None:
        w = np.empty(80, dtype=np.uint64)
        block = np.zeros(64, dtype=np.uint8)
        for k in range(starts.shape[0]):
            s = starts[k]
            length = ends[k] - s
            h0, h1 = np.uint64(0x67452301), np.uint64(0xEFCDAB89)
            h2, h3, h4 = np.uint64(0x98BADCFE), np.uint64(0x10325476), np.uint64(0xC3D2E1F0)
            n_blocks = (length + 8) // 64 + 1  # message + 0x80 + 64-bit length, padded to 64
            for blk in range(n_blocks):
                base = blk * 64
                n = min(64, max(0, length - base))
                for j in range(n):
                    block[j] = buf[s + base + j]
                for j in range(n, 64):
                    block[j] = 0
                if 0 <= length - base < 64:
                    block[length - base] = 0x80
                if blk == n_blocks - 1:
                    bits = length * 8
                    for j in range(8):
                        block[63 - j] = (bits >> (8 * j)) & 0xFF
                for i in range(16):
                    w[i] = ((np.uint64(block[4 * i]) << np.uint64(24)) | (np.uint64(block[4 * i + 1]) << np.uint64(16))
                            | (np.uint64(block[4 * i + 2]) << np.uint64(8)) | np.uint64(block[4 * i + 3]))
                for i in range(16, 80):
                    w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
                a, b, c, d, e = h0, h1, h2, h3, h4
                for i in range(20):
                    t = (rotl(a, 5) + (d ^ (b & (c ^ d))) + e + np.uint64(0x5A827999) + w[i]) & mask
                    a, b, c, d, e = t, a, rotl(b, 30), c, d
                for i in range(20, 40):
                    t = (rotl(a, 5) + (b ^ c ^ d) + e + np.uint64(0x6ED9EBA1) + w[i]) & mask
                    a, b, c, d, e = t, a, rotl(b, 30), c, d
                for i in range(40, 60):
                    t = (rotl(a, 5) + ((b & c) | (d & (b | c))) + e + np.uint64(0x8F1BBCDC) + w[i]) & mask
                    a, b, c, d, e = t, a, rotl(b, 30), c, d
                for i in range(60, 80):
                    t = (rotl(a, 5) + (b ^ c ^ d) + e + np.uint64(0xCA62C1D6) + w[i]) & mask
                    a, b, c, d, e = t, a, rotl(b, 30), c, d
                h0, h1, h2 = (h0 + a) & mask, (h1 + b) & mask, (h2 + c) & mask
                h3, h4 = (h3 + d) & mask, (h4 + e) & mask
            # The digest is h0 h1 ... big-endian; datasketch reads its first bytes little-endian.
            if wide:
                out[k] = bswap32(h0) | (bswap32(h1) << np.uint64(32))
            else:
                out[k] = bswap32(h0)

    return kernel


def _hashlib_kernel(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, out: np.ndarray, wide: bool) -> None:
    data = buf.tobytes()
    sha1 = hashlib.sha1
    width = 8 if wide else 4
    block = 1 << 16  # bounds the list of digests held at once
    for lo in range(0, len(starts), block):
        hi = min(lo + block, len(starts))
        digests = b"".join([sha1(data[a:b]).digest()[:width]
                            for a, b in zip(starts[lo:hi].tolist(), ends[lo:hi].tolist(), strict=True)])
        out[lo:hi] = np.frombuffer(digests, dtype=out.dtype.newbyteorder("<"))


@functools.cache
def _kernel(name: str) -> Callable[..., None]:
    if name == "hashlib":
        return _hashlib_kernel
    kernel = _openssl_kernel() if name == "openssl" else _numba_kernel()
    # Check against hashlib before trusting it: a wrong SHA_CTX layout would not raise.
    probe = np.frombuffer(b"abcthe quick brown fox" * 5, dtype=np.uint8)
    starts, ends = np.array([0, 3, 0], dtype=np.int64), np.array([3, 22, 110], dtype=np.int64)
    got = np.zeros(3, dtype=np.uint64)
    kernel(probe, starts, ends, got, True)
    want = np.zeros(3, dtype=np.uint64)
    _hashlib_kernel(probe, starts, ends, want, True)
    if not np.array_equal(got, want):
        msg = f"sha1 backend {name!r} disagrees with hashlib"
        raise RuntimeError(msg)
    return kernel


@functools.cache
def backend(preferred: str | None = None) -> str:
    """The backend :func:`hash_spans` uses: ``preferred`` (or ``$CORPUSMILL_SHA1_BACKEND``) when
    given, else the fastest that loads here. An explicitly requested one that cannot load raises."""
    wanted = preferred or os.environ.get(_ENV) or None
    if wanted is not None:
        if wanted not in BACKENDS:
            msg = f"sha1 backend must be one of {', '.join(BACKENDS)}, got {wanted!r}"
            raise ValueError(msg)
        _kernel(wanted)
        return wanted
    for name in BACKENDS:
        try:
            _kernel(name)
        except Exception:  # noqa: BLE001, S112 - numba missing, no libcrypto: try the next one
            continue
        return name
    return "hashlib"


def hash_spans(buf: bytes | np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int = 32,
               backend_name: str | None = None) -> np.ndarray:
    """``sha1_hash32`` (``width=32``, uint32) or ``sha1_hash64`` (``width=64``, uint64) of every
    ``buf[starts[k]:ends[k]]``, exactly as datasketch's ``MinHash`` hashes a shingle."""
    if width not in (32, 64):
        msg = f"width must be 32 or 64, got {width}"
        raise ValueError(msg)
    data = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes | bytearray) else buf
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32 if width == 32 else np.uint64)
    if len(starts):
        if int(starts.min()) < 0 or int(ends.max()) > len(data) or bool((ends < starts).any()):
            msg = "every span must lie inside the buffer with start <= end"
            raise ValueError(msg)
        if len(data) == 0:  # only empty spans: give the kernels a pointer to something
            data = np.zeros(1, dtype=np.uint8)
        _kernel(backend(backend_name))(data, starts, ends, out, width == 64)
    return out

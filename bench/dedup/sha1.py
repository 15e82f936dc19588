"""SHA-1 of shingles: each udfs.sha1 backend against hashlib, the same shingles, one process.

    python -m bench.dedup.sha1 [--docs 2000] [--data /tmp/corpusmill-bench-dedup]

Shingles: word 5-grams of the first ``--docs`` documents of the generated 10k-doc corpus
(``bench/dedup/generate.py``; generated if missing). Baseline: ``hashlib.sha1(s).digest()`` per
shingle, the call datasketch's ``sha1_hash32`` makes. Best of 5 runs each; every backend's values are
checked against the baseline's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np


def best_of(fn, reps: int = 5) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--data", default="/tmp/corpusmill-bench-dedup")
    args = parser.parse_args(argv)

    import pyarrow.parquet as pq

    from bench.dedup.generate import main as generate
    from udfs import sha1
    from udfs.dedup_key import shingle_spans

    ds = os.path.join(args.data, "10000")
    if not os.path.exists(os.path.join(ds, "truth.json")):
        generate(["--docs", "10000", "--out", ds])
    texts = pq.read_table(os.path.join(ds, "units.parquet"), columns=["text"]).column("text").to_pylist()[: args.docs]
    spans = shingle_spans(texts, 5, "word")
    flat = spans.shingles()
    n = len(flat)

    def baseline() -> list[bytes]:
        return [hashlib.sha1(s).digest() for s in flat]  # noqa: S324 - datasketch's hash, not security

    expected = np.array([int.from_bytes(d[:4], "little") for d in baseline()], dtype=np.uint32)
    base = best_of(baseline)
    print(f"{n:,} shingles, mean {np.mean([len(s) for s in flat]):.1f} bytes")
    print("| method | ns / shingle | x hashlib |")
    print("|---|---|---|")
    print(f"| hashlib.sha1 per shingle (baseline) | {base / n * 1e9:.0f} | 1.00 |")
    for name in sha1.BACKENDS:
        try:
            got = sha1.hash_spans(spans.buf, spans.starts, spans.ends, 32, name)
        except Exception as exc:  # noqa: BLE001 - a backend that cannot load here is reported
            print(f"| udfs.sha1 {name} | not available: {exc} | - |")
            continue
        assert np.array_equal(got, expected), f"{name} differs from hashlib"
        seconds = best_of(lambda name=name: sha1.hash_spans(spans.buf, spans.starts, spans.ends, 32, name))
        print(f"| udfs.sha1 {name} | {seconds / n * 1e9:.0f} | {base / seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Language identification backends: docs/s on one core and label agreement, on real en + zh text.

    python bench/langid/run.py [--repeat 3]

Baseline: langdetect on the full text, measured in the same run; every other figure is a ratio to it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from bench.shared_text import documents, labeled_prompts  # noqa: E402
from udfs.langid import make_detector  # noqa: E402


def best_rate(detector, texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        detector.detect_batch(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core: figures are per core
    docs = documents()
    configs = [("langdetect", 10**9), ("langdetect", 500), ("fasttext", 10**9), ("fasttext", 500)]
    print("| backend | prefix | en docs/s | zh docs/s | vs langdetect full (en) |")
    print("|---|---|---|---|---|")
    base = None
    for backend, prefix in configs:
        det = make_detector(backend, prefix)
        det.detect_batch(docs["en"][:5])  # load the model outside the timing
        en, zh = best_rate(det, docs["en"], args.repeat), best_rate(det, docs["zh"], args.repeat)
        base = base or en
        label = "full" if prefix > 10**6 else str(prefix)
        print(f"| {backend} | {label} | {en:,.0f} | {zh:,.0f} | {en / base:.2f}x |")

    prompts = labeled_prompts()
    print("\nLabels on alpaca_en_demo / alpaca_zh_demo (instruction + input, 500-char prefix):\n")
    print("| backend | true | n | en | zh | other |")
    print("|---|---|---|---|---|---|")
    labels = {}
    for backend in ("langdetect", "fasttext"):
        det = make_detector(backend, 500)
        for true, texts in prompts.items():
            got = [lang for lang, _ in det.detect_batch(texts)]
            labels[(backend, true)] = got
            c = Counter(got)
            other = ", ".join(f"{k} {v}" for k, v in c.most_common() if k not in ("en", "zh"))
            print(f"| {backend} | {true} | {len(got)} | {c['en']} | {c['zh']} | {other[:40] or '-'} |")
    for true in prompts:
        a, b = labels[("langdetect", true)], labels[("fasttext", true)]
        agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
        print(f"\nagreement langdetect vs fasttext on the {true} file: {agree:.1%}")


if __name__ == "__main__":
    main()

"""Deterministic RedPajama-like corpus with planted near-duplicates at known Jaccard levels.

Documents are ~2 KB of English-like prose: sentences of pseudo-words drawn from a Zipfian
vocabulary (so frequent words and short phrases recur across documents, as in web text), some with
one of a few shared boilerplate footers (cookie notices, share buttons). A fraction of the corpus
is planted duplicates: each planted group is one base document plus 1-3 variants made by replacing
random words, at an edit rate chosen for a target Jaccard level, or copied exactly / with case and
whitespace changes. The ground truth is not the target: it is the exact Jaccard of the shingle
sets (word 5-grams, casefolded, :func:`udfs.minhash.shingles`), computed for every pair inside a
group. Documents outside a group share no more than common phrases and boilerplate (J < 0.2).

    python -m bench.dedup.generate --docs 100000 --out bench/dedup/data/100k

writes ``units.parquet`` (rows of the unified schema, kind cpt; what the dedup stage reads),
``docs.jsonl`` (RedPajama ``{text, meta}``) and ``truth.json`` (groups and their pairs' Jaccard).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import combinations

import numpy as np

# Target Jaccard of a variant to its base, and how often each is drawn. Weighted towards the
# 0.8 threshold, where banding is least sure, with clear negatives below it.
LEVELS = (1.0, 0.98, 0.95, 0.9, 0.85, 0.82, 0.8, 0.78, 0.75, 0.7, 0.6, 0.5, 0.3)
LEVEL_WEIGHTS = (2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1)
BOILERPLATE = (
    "We use cookies to improve your experience on our site. By continuing to browse you agree to our use of cookies.",
    "Share this article on Facebook Twitter LinkedIn or send it by email to a friend.",
    "All rights reserved. No part of this publication may be reproduced without written permission.",
    "Sign up for our newsletter to get the latest stories delivered to your inbox every morning.",
    "This article was originally published on our partner site and is republished with permission.",
    "Comments are closed. Read our community guidelines before posting.",
)
NGRAM = 5


def vocabulary(size: int, rng: np.random.RandomState) -> list[str]:
    onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "ch",
              "br", "pl", "gr", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
    codas = ["", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck"]
    words: set[str] = set()
    out: list[str] = []
    while len(out) < size:
        n_syl = 1 + min(3, rng.geometric(0.45) - 1)
        w = "".join(onsets[rng.randint(len(onsets))] + vowels[rng.randint(len(vowels))] + codas[rng.randint(len(codas))]
                    for _ in range(n_syl))
        if w not in words:
            words.add(w)
            out.append(w)
    return out


class Writer:
    """Zipfian prose; one instance per corpus so every document draws from the same distribution."""

    def __init__(self, seed: int, vocab_size: int = 30000) -> None:
        self.rng = np.random.RandomState(seed)
        self.vocab = np.array(vocabulary(vocab_size, self.rng), dtype=object)
        ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
        p = 1.0 / ranks**1.05
        self.cdf = np.cumsum(p / p.sum())

    def words(self, n: int) -> list[str]:
        idx = np.searchsorted(self.cdf, self.rng.random_sample(n))
        return list(self.vocab[np.minimum(idx, len(self.vocab) - 1)])

    def document(self, target_chars: int) -> str:
        paragraphs: list[str] = []
        size = 0
        while size < target_chars:
            sentences = []
            for _ in range(self.rng.randint(2, 7)):
                ws = self.words(self.rng.randint(6, 26))
                ws[0] = ws[0].capitalize()
                sentences.append(" ".join(ws) + self.rng.choice([".", ".", ".", "?", "!"]))
            para = " ".join(sentences)
            paragraphs.append(para)
            size += len(para) + 2
        text = "\n\n".join(paragraphs)
        if self.rng.random_sample() < 0.3:
            text += "\n\n" + BOILERPLATE[self.rng.randint(len(BOILERPLATE))]
        return text

    def variant(self, text: str, level: float) -> str:
        """A copy of ``text`` whose shingle Jaccard to it is about ``level``.

        Replacing a fraction p of the words at random destroys about 1-(1-p)^n of the n-gram
        shingles, and J = q / (2 - q) for q = (1-p)^n kept, so p = 1 - (2J / (1 + J))^(1/n).
        """
        if level >= 1.0:
            if self.rng.random_sample() < 0.5:
                return text
            # same normalized key: case and whitespace changes only
            return text.upper().replace("\n\n", "\n \n") if self.rng.random_sample() < 0.5 else "  " + text + "\n"
        tokens = text.split(" ")
        p = 1.0 - (2 * level / (1 + level)) ** (1.0 / NGRAM)
        hits = self.rng.random_sample(len(tokens)) < p
        fresh = self.words(int(hits.sum()))
        for i, w in zip(np.flatnonzero(hits), fresh, strict=True):
            tokens[i] = w
        return " ".join(tokens)


def generate(n_docs: int, seed: int = 0, dup_fraction: float = 0.1) -> tuple[list[str], list[list[int]]]:
    """``n_docs`` texts and the planted groups (lists of document indices, base first)."""
    writer = Writer(seed)
    rng = writer.rng
    docs: list[str] = []
    groups: list[list[int]] = []
    weights = np.array(LEVEL_WEIGHTS, dtype=np.float64) / sum(LEVEL_WEIGHTS)
    while len(docs) < n_docs:
        base = writer.document(int(rng.normal(1800, 300)))
        docs.append(base)
        if rng.random_sample() < dup_fraction / 2 and len(docs) < n_docs:
            group = [len(docs) - 1]
            for _ in range(rng.randint(1, 4)):
                if len(docs) >= n_docs:
                    break
                docs.append(writer.variant(base, float(rng.choice(LEVELS, p=weights))))
                group.append(len(docs) - 1)
            groups.append(group)
    # Shuffle so duplicates are not neighbours (Spark partitions by position).
    order = rng.permutation(n_docs)
    where = np.empty(n_docs, dtype=np.int64)
    where[order] = np.arange(n_docs)
    return [docs[i] for i in order], [[int(where[i]) for i in g] for g in groups]


def doc_id(i: int) -> str:
    return f"d{i:08d}"


def group_pairs(docs: list[str], groups: list[list[int]]) -> list[tuple[str, str, float]]:
    """Exact shingle Jaccard of every pair inside each planted group."""
    from udfs.lsh import jaccard
    from udfs.minhash import shingles

    out = []
    for g in groups:
        sets = {i: set(shingles(docs[i], ngram=NGRAM, unit="word")) for i in g}
        for a, b in combinations(sorted(g), 2):
            out.append((doc_id(a), doc_id(b), round(jaccard(sets[a], sets[b]), 6)))
    return out


def write_units(docs: list[str], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from udfs.schema import UNIT_SCHEMA

    n = len(docs)
    cols = {name: pa.nulls(n, type=UNIT_SCHEMA.field(name).type) for name in UNIT_SCHEMA.names}
    cols["id"] = pa.array([doc_id(i) for i in range(n)])
    cols["kind"] = pa.array(["cpt"] * n)
    cols["source"] = pa.array(["synthetic"] * n)
    cols["shape"] = pa.array(["text"] * n)
    cols["text"] = pa.array(docs)
    cols["source_file"] = pa.array(["docs.jsonl"] * n)
    cols["source_offset"] = pa.array(np.arange(n, dtype=np.int64))
    cols["source_index"] = pa.array(np.zeros(n, dtype=np.int32))
    table = pa.table([cols[name] for name in UNIT_SCHEMA.names], schema=UNIT_SCHEMA)
    # ~16 MB row groups: Spark reads one task per row group span, so both cores get work.
    pq.write_table(table, path, row_group_size=8192, compression="zstd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dup-fraction", type=float, default=0.1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    docs, groups = generate(args.docs, args.seed, args.dup_fraction)
    os.makedirs(args.out, exist_ok=True)
    write_units(docs, os.path.join(args.out, "units.parquet"))
    with open(os.path.join(args.out, "docs.jsonl"), "w", encoding="utf-8") as fh:
        for i, text in enumerate(docs):
            fh.write(json.dumps({"text": text, "meta": {"id": doc_id(i)}}, ensure_ascii=False) + "\n")
    pairs = group_pairs(docs, groups)
    truth = {"docs": len(docs), "seed": args.seed, "ngram": NGRAM, "unit": "word",
             "bytes": sum(len(d.encode()) for d in docs),
             "groups": [[doc_id(i) for i in g] for g in groups], "pairs": pairs}
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(truth, fh)
    print(f"{len(docs)} docs, {truth['bytes'] / 1e6:.1f} MB, {len(groups)} groups, {len(pairs)} pairs "
          f"({sum(j >= 0.8 for _, _, j in pairs)} at J >= 0.8) in {time.monotonic() - t0:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

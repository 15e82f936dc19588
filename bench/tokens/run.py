"""Tokenizers: docs/s and tokens/s on one core on real en + zh text, and the byte estimator's error.

    python bench/tokens/run.py [--repeat 3]

Baseline: tiktoken cl100k_base (the default tokenizer), measured in the same run. The HF and
sentencepiece tokenizers are trained here, offline, on the same shared text (32k / 16k vocab BPE),
so their speed is indicative of the libraries, not of a particular production vocabulary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("RAYON_NUM_THREADS", "1")

from bench.shared_text import documents  # noqa: E402
from udfs.tokens import make_tokenizer  # noqa: E402


def train_tokenizers(texts: list[str], workdir: str) -> dict[str, str]:
    import sentencepiece as spm
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=32000, show_progress=False))
    hf = os.path.join(workdir, "tokenizer.json")
    tok.save(hf)
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as fh:
        fh.write("\n".join(t.replace("\n", " ") for t in texts))
    prefix = os.path.join(workdir, "sp")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=16000, model_type="bpe",
                                   character_coverage=0.9995, minloglevel=2)
    return {"hf": hf, "sp": prefix + ".model"}


def rate(tok, texts: list[str], repeat: int) -> tuple[float, int]:
    best, total = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        total = sum(tok.count_batch(texts))
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best, int(total / best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    docs = documents()
    with tempfile.TemporaryDirectory() as tmp:
        paths = train_tokenizers(docs["en"] + docs["zh"], tmp)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
        specs = ["tiktoken:cl100k_base", f"hf:{paths['hf']}", f"sentencepiece:{paths['sp']}", "bytes:4.0"]
        print("| tokenizer | en docs/s | en tokens/s | zh docs/s | zh tokens/s | vs cl100k (en docs/s) |")
        print("|---|---|---|---|---|---|")
        base = None
        for spec in specs:
            tok = make_tokenizer(spec)
            tok.count_batch(docs["en"][:5])
            en, en_tps = rate(tok, docs["en"], args.repeat)
            zh, zh_tps = rate(tok, docs["zh"], args.repeat)
            base = base or en
            name = spec.split(":")[0] + (":cl100k_base" if spec.startswith("tiktoken") else "")
            print(f"| {name} | {en:,.0f} | {en_tps:,.0f} | {zh:,.0f} | {zh_tps:,.0f} | {en / base:.2f}x |")
        ref = make_tokenizer("tiktoken:cl100k_base")
        print("\nByte estimator vs cl100k (mean absolute % error per document):\n")
        print("| text | bytes/token that fits the total | MAPE at 4.0 | MAPE at the fitted value |")
        print("|---|---|---|---|")
        for lang, texts in docs.items():
            true = ref.count_batch(texts)
            nbytes = [len(t.encode()) for t in texts]
            fit = sum(nbytes) / sum(true)
            def mape(bpt: float, nbytes=nbytes, true=true) -> float:
                return 100 * sum(abs(b / bpt - t) / t for b, t in zip(nbytes, true, strict=True) if t) / len(true)
            print(f"| {lang} | {fit:.2f} | {mape(4.0):.1f}% | {mape(fit):.1f}% |")


if __name__ == "__main__":
    main()

"""Real multilingual text for the langid/tokens benchmarks (../shared/data; never copied here)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def shared_dir() -> Path:
    path = Path(os.environ.get("CORPUSMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not path.is_dir():
        sys.exit(f"shared data not found at {path}: set CORPUSMILL_SHARED_DATA")
    return path


def documents() -> dict[str, list[str]]:
    """{"en": c4 docs (~2.4 KB), "zh": Firefly pretraining docs (~1 KB)}."""
    base = shared_dir()
    en = [json.loads(line)["text"] for line in open(base / "llamafactory/c4_demo.jsonl", encoding="utf-8")]
    zh = [json.loads(line)["text"] for line in open(base / "firefly/data/pretrain/dummy_pretrain.jsonl", encoding="utf-8")]
    return {"en": en, "zh": zh}


def labeled_prompts() -> dict[str, list[str]]:
    """Alpaca instruction (+input) texts with a known language: 999 en, 1000 zh."""
    base = shared_dir()
    out = {}
    for lang in ("en", "zh"):
        records = json.load(open(base / f"llamafactory/alpaca_{lang}_demo.json", encoding="utf-8"))
        out[lang] = ["\n".join(p for p in (r["instruction"], r["input"]) if p) for r in records]
    return out

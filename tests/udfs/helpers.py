"""Small helpers for tests of the pure core."""

from __future__ import annotations

import json
from typing import Any

from udfs.normalize import SourceSpec, normalize_raw


def units(obj: Any, raw: str | None = None, **spec: Any) -> list[dict[str, Any]]:
    row = {"source": "src", "source_file": "f.jsonl", "source_offset": 0, "format": "jsonl",
           "raw": raw if raw is not None else json.dumps(obj, ensure_ascii=False), "error": None}
    return normalize_raw(row, SourceSpec("src", **spec))


def one(obj: Any, **spec: Any) -> dict[str, Any]:
    out = units(obj, **spec)
    assert len(out) == 1, out
    assert out[0]["reject_reason"] is None, (out[0]["reject_reason"], out[0]["reject_detail"])
    return out[0]


def reason(obj: Any, **spec: Any) -> str:
    out = units(obj, **spec)
    assert len(out) == 1
    return out[0]["reject_reason"]


def turns(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]

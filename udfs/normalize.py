"""Raw record -> unified units (pure Python): the core of the normalize stage.

``normalize_raw`` never raises for bad data: a record that cannot be mapped becomes one reject
unit carrying a stable reason, its raw text, file and offset. Every raw record yields at least
one unit, so ``units == raw records + expansions`` holds by construction and can be checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from udfs.messages import Reject, Tags
from udfs.schema import UNIT_SCHEMA
from udfs.shapes import SHAPE_KIND, detect_shape, map_record
from udfs.text import has_lone_surrogate, safe_raw

# LLaMA-Factory `columns` names -> the canonical keys the shape detector reads.
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output",
                  "history": "history", "system": "system", "tools": "tools",
                  "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag"}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools",
                    "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag"}
_CONTENT_FIELDS = ("text", "system", "messages", "tools", "prompt", "chosen", "rejected",
                   "completion", "label", "score_chosen", "score_rejected", "score")


@dataclass(frozen=True)
class SourceSpec:
    """What normalization needs to know about a source (the pure part of its config)."""

    name: str
    kind: str = "auto"
    shape: str = "auto"
    text_field: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def tag_rules(self) -> Tags:
        return Tags.from_mapping(self.tags)


def apply_columns(obj: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """Rename a record's columns to canonical keys, LLaMA-Factory style; others are kept as-is."""
    if not columns:
        return obj
    table = SHAREGPT_COLUMNS if "messages" in columns else ALPACA_COLUMNS
    renamed = {obj_key: table.get(name, name) for name, obj_key in columns.items()}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        out[renamed.get(key, key)] = value
    missing = [obj_key for obj_key in columns.values() if obj_key not in obj]
    if missing:
        raise Reject("missing_field", f"column(s) {missing} named in columns are absent")
    return out


def content_hash(source: str, unit: dict[str, Any]) -> str:
    canonical = json.dumps({k: unit.get(k) for k in ("kind",) + _CONTENT_FIELDS},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if has_lone_surrogate(canonical):
        raise Reject("invalid_unicode", "text holds lone surrogates (undecodable bytes or bad \\u escapes)")
    return hashlib.sha256(f"{source}\x1f{canonical}".encode()).hexdigest()[:24]


def _meta(leftover: dict[str, Any], media: dict[str, list[str]] | None) -> str | None:
    meta: dict[str, Any] = {}
    original = leftover.pop("meta", None)
    if isinstance(original, dict):
        meta.update(original)
    elif original is not None:
        meta["meta"] = original
    for key, value in leftover.items():
        meta[f"_{key}" if key in meta else key] = value
    for kind, paths in (media or {}).items():
        meta.setdefault(kind, paths)
    if not meta:
        return None
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str)


def _empty_unit(row: dict[str, Any]) -> dict[str, Any]:
    unit = dict.fromkeys(UNIT_SCHEMA.names)
    unit.update(source=row["source"], source_file=row["source_file"],
                source_offset=row["source_offset"], source_index=0, source_format=row.get("format"))
    return unit


def reject_unit(row: dict[str, Any], reason: str, detail: str, shape: str | None = None) -> dict[str, Any]:
    unit = _empty_unit(row)
    unit.update(reject_reason=reason, reject_detail=detail[:500], shape=shape,
                raw=safe_raw(row.get("raw") or ""))
    return unit


def normalize_raw(row: dict[str, Any], spec: SourceSpec) -> list[dict[str, Any]]:
    """One raw row (``RAW_SCHEMA``) -> one or more units (``UNIT_SCHEMA``)."""
    if row.get("error"):
        return [reject_unit(row, row["error"], row.get("error_detail") or "")]
    shape = None
    try:
        raw = row["raw"]
        if has_lone_surrogate(raw):
            raise Reject("invalid_utf8", "the record holds bytes that are not valid UTF-8")
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise Reject("malformed_json", str(exc)) from exc
        if not isinstance(obj, dict):
            raise Reject("not_an_object", f"record is a JSON {type(obj).__name__}, not an object")
        obj = apply_columns(obj, spec.columns)
        shape = spec.shape if spec.shape != "auto" else detect_shape(obj, spec.kind, spec.text_field)
        if spec.kind not in ("auto", SHAPE_KIND[shape]):
            raise Reject("kind_mismatch", f"shape {shape} gives {SHAPE_KIND[shape]}, source wants {spec.kind}")
        mapped, leftover = map_record(obj, shape, spec.tag_rules(), spec.text_field)
        units = []
        for index, content in enumerate(mapped):
            media = content.pop("_media", None)
            unit = _empty_unit(row)
            unit.update(content)
            unit.update(shape=shape, source_index=index, meta=_meta(dict(leftover), media),
                        content_hash=content_hash(spec.name, unit))
            units.append(unit)
        return units
    except Reject as rej:
        return [reject_unit(row, rej.reason, rej.detail, shape)]
    except (RecursionError, OverflowError, TypeError, ValueError, KeyError, AttributeError) as exc:
        # A shape we mis-detected or data we did not foresee: never crash the run, say what it was.
        return [reject_unit(row, "unmappable", f"{type(exc).__name__}: {exc}", shape)]

"""Filter decisions (pure Python): length measures, language, token counts, the context-length rule.

``annotate_batch`` takes a batch of unified records and returns, per record, its language, score,
token count and the first reason it fails (or None). Order of checks: ``too_short`` / ``too_long``
(cheap), then ``language``, then ``over_max_seq_len``; a record gets one reason, the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from udfs.langid import make_detector, text_for_langid
from udfs.tokens import count_conversations, count_preference_pairs, make_tokenizer

_WORD = re.compile(r"\w+")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
MESSAGE_LISTS = ("messages", "prompt", "chosen", "rejected", "completion")


@dataclass(frozen=True)
class Limits:
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    min_lines: int | None = None
    max_lines: int | None = None


@dataclass(frozen=True)
class FilterParams:
    lang_backend: str = "langdetect"
    lang_prefix_chars: int = 500
    languages: tuple[str, ...] = ()
    min_lang_score: float = 0.0
    lengths: Mapping[str, Limits] = field(default_factory=dict)
    tokenizer: str = "tiktoken:cl100k_base"
    per_message_overhead: int = 5
    chat_template: str | None = None
    max_seq_len: int | None = None


def record_text(record: Mapping[str, Any]) -> str:
    """All the text of a record that length limits apply to (cpt text; every turn otherwise)."""
    if record.get("kind") == "cpt":
        return record.get("text") or ""
    parts = [record.get("system") or ""]
    for key in MESSAGE_LISTS:
        parts += [m.get("content") or "" for m in record.get(key) or []]
    return "\n".join(p for p in parts if p)


def count_words(text: str) -> int:
    """Words: runs of word characters, with each CJK character counted as a word (no spaces there)."""
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(_CJK.sub(" ", text))) + cjk


def length_reason(text: str, limits: Limits | None) -> str | None:
    if limits is None:
        return None
    measures = {"chars": len(text), "words": count_words(text), "lines": text.count("\n") + 1 if text else 0}
    for unit, value in measures.items():
        low, high = getattr(limits, f"min_{unit}"), getattr(limits, f"max_{unit}")
        if low is not None and value < low:
            return "too_short"
        if high is not None and value > high:
            return "too_long"
    return None


def token_counts(records: Sequence[Mapping[str, Any]], params: FilterParams) -> list[int]:
    """Tokens a trainer sees: cpt text; sft the whole conversation with role markers; preference the
    longer of prompt+chosen and prompt+rejected (what the context must hold), or prompt+completion."""
    tok = make_tokenizer(params.tokenizer)
    out = [0] * len(records)
    cpt = [i for i, r in enumerate(records) if r["kind"] == "cpt"]
    for i, n in zip(cpt, tok.count_batch([records[i]["text"] or "" for i in cpt]), strict=True):
        out[i] = n
    convs = [i for i, r in enumerate(records) if r["kind"] == "sft" or (
        r["kind"] == "preference" and r.get("chosen") is None)]
    counted = count_conversations(
        tok, [records[i].get("system") for i in convs],
        [list(records[i].get("messages") or []) if records[i]["kind"] == "sft"
         else list(records[i].get("prompt") or []) + list(records[i].get("completion") or []) for i in convs],
        params.per_message_overhead, params.chat_template)
    for i, n in zip(convs, counted, strict=True):
        out[i] = n
    pairs = [i for i, r in enumerate(records) if r["kind"] == "preference" and r.get("chosen") is not None]
    counted_pairs = count_preference_pairs(
        tok, [records[i].get("system") for i in pairs], [records[i].get("prompt") or [] for i in pairs],
        [records[i].get("chosen") for i in pairs], [records[i].get("rejected") for i in pairs],
        params.per_message_overhead, params.chat_template)
    for i, (a, b) in zip(pairs, counted_pairs, strict=True):
        out[i] = max(a, b)
    return out


def langid_text(record: Mapping[str, Any]) -> str:
    text = text_for_langid(record["kind"], record)
    if not text and record["kind"] == "preference":  # scored texts have no prompt: use the response
        text = "\n".join(m.get("content") or "" for m in record.get("completion") or record.get("chosen") or [])
    return text


def annotate_batch(records: Sequence[Mapping[str, Any]], params: FilterParams
                   ) -> list[tuple[str, float, int, str | None]]:
    """(lang, lang_score, n_tokens, drop reason or None) for each record."""
    if not records:
        return []
    detector = make_detector(params.lang_backend, params.lang_prefix_chars)
    langs = detector.detect_batch([langid_text(r) for r in records])
    tokens = token_counts(records, params)
    allowed = set(params.languages)
    out = []
    for record, (lang, score), n in zip(records, langs, tokens, strict=True):
        reason = length_reason(record_text(record), params.lengths.get(record["kind"]))
        if reason is None and allowed and (lang not in allowed or score < params.min_lang_score):
            reason = "language"
        if (reason is None and params.max_seq_len is not None and record["kind"] != "cpt"
                and n > params.max_seq_len):
            reason = "over_max_seq_len"
        out.append((lang, float(score), int(n), reason))
    return out

"""Stage 3, filter: language, length and token counts on every good record; drops with reasons.

Every good record gets ``lang``, ``lang_score`` and ``n_tokens``; with limits configured, records
that fail get ``drop_reason`` (``too_short``, ``too_long``, ``language``, ``over_max_seq_len``) and
are written to ``dropped/``, never truncated. Models and tokenizers load once per Python worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config, FilterConfig
from udfs.filters import FilterParams, annotate_batch

_NEEDED = ["kind", "text", "system", "messages", "prompt", "chosen", "rejected", "completion"]


def params_of(f: FilterConfig) -> FilterParams:
    return FilterParams(
        lang_backend=f.lang_backend, lang_prefix_chars=f.lang_prefix_chars, languages=tuple(f.languages),
        min_lang_score=f.min_lang_score,
        lengths=dict(f.lengths),
        tokenizer=f.tokenizer, per_message_overhead=f.per_message_overhead,
        chat_template=f.chat_template, max_seq_len=f.max_seq_len)


def _annotate(params: FilterParams):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            good = [i for i, (rej, drop) in enumerate(zip(batch.column("reject_reason").to_pylist(),
                                                          batch.column("drop_reason").to_pylist(), strict=True))
                    if rej is None and drop is None]
            if not good:
                yield batch
                continue
            sub = batch.take(pa.array(good)).select(_NEEDED).to_pylist()
            results = annotate_batch(sub, params)
            cols = {name: batch.column(name).to_pylist() for name in ("lang", "lang_score", "n_tokens", "drop_reason")}
            for i, (lang, score, n, reason) in zip(good, results, strict=True):
                cols["lang"][i], cols["lang_score"][i], cols["n_tokens"][i] = lang, score, n
                cols["drop_reason"][i] = reason
            for name, values in cols.items():
                idx = batch.schema.get_field_index(name)
                batch = batch.set_column(idx, batch.schema.field(name), pa.array(values, batch.schema.field(name).type))
            yield batch

    return run


def apply(spark: SparkSession, units: DataFrame, cfg: Config) -> tuple[DataFrame, dict[str, Any]]:
    f = cfg.filter
    if not f.enabled:
        return units, {"enabled": False}
    out = units.mapInArrow(_annotate(params_of(f)), units.schema)
    report = {
        "enabled": True, "lang_backend": f.lang_backend, "lang_prefix_chars": f.lang_prefix_chars,
        "languages": f.languages, "min_lang_score": f.min_lang_score, "tokenizer": f.tokenizer,
        "per_message_overhead": f.per_message_overhead, "chat_template": f.chat_template,
        "max_seq_len": f.max_seq_len, "lengths": {k: vars(v) for k, v in f.lengths.items()},
    }
    return out, report


def language_mix(units: DataFrame) -> dict[str, dict[str, int]]:
    """{kind: {lang: records}} over good records (for the manifest and the report)."""
    rows = (units.filter(F.col("reject_reason").isNull() & F.col("lang").isNotNull())
            .groupBy("kind", "lang").count().collect())
    mix: dict[str, dict[str, int]] = {}
    for r in rows:
        mix.setdefault(r["kind"], {})[r["lang"]] = r["count"]
    return mix

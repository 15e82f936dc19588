"""Stage 2, normalize: raw records -> unified units (records and rejects), with stable ids.

The mapping is the pure ``udfs.normalize.normalize_raw``, run in Arrow batches. Ids are the
content hash of (source, canonical content); the n-th exact repeat inside a source gets ``-n``
appended (ordered by file and offset), so ids are unique and the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.common.config import Config, SourceConfig
from jobs.common.schema import UNIT_STRUCT
from udfs.normalize import SourceSpec, normalize_raw
from udfs.schema import UNIT_SCHEMA

_BATCH_ROWS = 2048


def source_spec(src: SourceConfig) -> SourceSpec:
    return SourceSpec(name=src.name, kind=src.kind, shape=src.shape, text_field=src.text_field,
                      columns=dict(src.columns), tags=dict(src.tags))


def _normalize_batches(specs: dict[str, SourceSpec]):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        out = []
        for batch in batches:
            for row in batch.to_pylist():
                out += normalize_raw(row, specs[row["source"]])
                if len(out) >= _BATCH_ROWS:
                    yield pa.RecordBatch.from_pylist(out, schema=UNIT_SCHEMA)
                    out = []
        if out:
            yield pa.RecordBatch.from_pylist(out, schema=UNIT_SCHEMA)

    return run


def with_ids(units: DataFrame) -> DataFrame:
    """``id`` = content hash, plus ``-n`` for the n-th repeat of the same content in a source."""
    order = Window.partitionBy("source", "content_hash").orderBy("source_file", "source_offset", "source_index")
    rank = F.row_number().over(order)
    return units.withColumn(
        "id",
        F.when(F.col("content_hash").isNull(), F.lit(None))
        .when(rank == 1, F.col("content_hash"))
        .otherwise(F.concat(F.col("content_hash"), F.lit("-"), rank.cast("string"))),
    )


def normalize(raw: DataFrame, cfg: Config) -> DataFrame:
    specs = {src.name: source_spec(src) for src in cfg.sources}
    return with_ids(raw.mapInArrow(_normalize_batches(specs), UNIT_STRUCT))

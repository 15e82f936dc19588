"""Stage 1, ingest: every source's files -> one raw record per row (``RAW_SCHEMA``).

Files are listed on the driver (fsspec), then read inside the executors, one read unit per task,
so a bucket is read the same way as a local directory and nothing passes through the driver.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config, SourceConfig
from jobs.common.io import ReadUnit, list_files, plan_units, read_options
from jobs.common.schema import RAW_STRUCT
from udfs.readers import iter_file
from udfs.schema import RAW_SCHEMA

_BATCH_ROWS = 2048
_UNIT_COLUMNS = ["source", "path", "format", "start", "end"]


def plan(cfg: Config) -> tuple[list[ReadUnit], dict[str, list[tuple[str, int]]]]:
    """All read units of a config and the files each source resolved to."""
    units: list[ReadUnit] = []
    files: dict[str, list[tuple[str, int]]] = {}
    for src in cfg.sources:
        files[src.name] = list_files(src)
        units += plan_units(src, files[src.name], cfg.ingest.split_bytes)
    return units, files


def _read_units(sources: dict[str, SourceConfig]):
    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for unit in batch.to_pylist():
                src = sources[unit["source"]]
                end = None if unit["end"] < 0 else unit["end"]
                rows = []
                for row in iter_file(unit["path"], unit["format"], read_options(src), unit["start"], end):
                    row.update(source=unit["source"], source_file=unit["path"])
                    rows.append(row)
                    if len(rows) >= _BATCH_ROWS:
                        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
                        rows = []
                if rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)

    return read


def ingest(spark: SparkSession, cfg: Config, units: list[ReadUnit] | None = None) -> DataFrame:
    """Raw records of every source (lazy)."""
    if units is None:
        units, _ = plan(cfg)
    sources = {src.name: src for src in cfg.sources}
    rows = [(u.source, u.path, u.format, u.start, u.end) for u in units]
    # One read unit per partition, in plan order: reads stay balanced and deterministic.
    unit_df = (spark.sparkContext.parallelize(rows, numSlices=max(1, len(rows)))
               .toDF("source string, path string, format string, start long, end long"))
    return unit_df.mapInArrow(_read_units(sources), RAW_STRUCT)


def count_by_source(raw: DataFrame) -> dict[str, int]:
    return {r["source"]: r["n"] for r in raw.groupBy("source").agg(F.count("*").alias("n")).collect()}

"""Final stage, write: records per kind, rejects, drops, then ``manifest.json`` last.

Layout under ``output.path``:
    <kind>/part-*.jsonl.gz (or .parquet)   unified records of that kind
    rejected/part-*.jsonl.gz               input that could not be read or mapped, with reason + raw
    dropped/part-*.jsonl.gz                records later stages removed, with reason
    manifest.json                          config, counts per source/reason, outputs; written last
"""

from __future__ import annotations

import json
import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.accounting import build_counts, check_balance
from jobs.common.config import Config
from jobs.common.io import join, spark_path, write_text
from udfs.schema import KINDS, columns_for

ORDER = ["source", "source_file", "source_offset", "source_index"]
REJECT_COLUMNS = {"source": "source", "reason": "reject_reason", "detail": "reject_detail", "shape": "shape",
                  "source_file": "source_file", "source_offset": "source_offset",
                  "source_index": "source_index", "source_format": "source_format", "raw": "raw"}
VERSION = "0.1.0"


def _writer(df: DataFrame, fmt: str):
    w = df.write.mode("overwrite")
    if fmt == "parquet":
        return w.option("compression", "zstd").parquet
    return w.option("compression", "gzip").json


def _reader(spark: SparkSession, fmt: str):
    return spark.read.parquet if fmt == "parquet" else spark.read.json


def split_outcomes(units: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(records, rejects, drops) of a unit frame."""
    rejected = F.col("reject_reason").isNotNull()
    dropped = F.col("drop_reason").isNotNull()
    return (units.filter(~rejected & ~dropped), units.filter(rejected), units.filter(~rejected & dropped))


def write_all(spark: SparkSession, units: DataFrame, cfg: Config, timings: dict[str, float],
              source_files: dict[str, list[tuple[str, int]]], reports: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Write everything, count it back, check the balance, write the manifest; return the manifest."""
    started = time.monotonic()
    out = cfg.output.path
    fmt = cfg.output.format
    records, rejects, drops = split_outcomes(units)
    kinds_present = [r["kind"] for r in records.select("kind").distinct().collect()]
    outputs: dict[str, Any] = {}
    for kind in KINDS:
        if kind not in kinds_present:
            continue
        path = join(out, kind)
        _writer(records.filter(F.col("kind") == kind).select(columns_for(kind)).orderBy(*ORDER), fmt)(spark_path(path))
        outputs[kind] = {"path": path, "format": fmt}
    rej_path = join(out, "rejected")
    _writer(rejects.select(*[F.col(c).alias(a) for a, c in REJECT_COLUMNS.items()]).orderBy(*ORDER), "jsonl")(spark_path(rej_path))
    outputs["rejected"] = {"path": rej_path, "format": "jsonl"}
    drop_path = join(out, "dropped")
    drop_cols = ["id", "kind", "source", F.col("drop_reason").alias("reason"), "duplicate_of",
                 "source_file", "source_offset", "source_index"]
    _writer(drops.select(*drop_cols).orderBy(*ORDER), "jsonl")(spark_path(drop_path))
    outputs["dropped"] = {"path": drop_path, "format": "jsonl"}

    # Count what is on disk, not what we meant to write.
    written = []
    for kind in kinds_present:
        df = _reader(spark, fmt)(spark_path(join(out, kind)))
        rows = df.groupBy("source").count().collect()
        outputs[kind]["rows"] = sum(r["count"] for r in rows)
        written += [{"source": r["source"], "outcome": "output", "kind": kind, "reason": None, "n": r["count"]}
                    for r in rows]
    for outcome, path in (("rejected", rej_path), ("dropped", drop_path)):
        if outcome not in outputs:
            continue
        df = spark.read.json(spark_path(path))
        if not df.columns:  # nothing was written: Spark infers no schema from empty files
            outputs[outcome]["rows"] = 0
            continue
        rows = df.groupBy("source", "reason").count().collect()
        outputs[outcome]["rows"] = sum(r["count"] for r in rows)
        written += [{"source": r["source"], "outcome": outcome, "kind": None, "reason": r["reason"],
                     "n": r["count"]} for r in rows]
    unit_rows = (units.groupBy("source")
                 .agg(F.sum((F.col("source_index") == 0).cast("long")).alias("raw_records"),
                      F.count("*").alias("units")).collect())
    counts = build_counts([r.asDict() for r in unit_rows], written)
    timings["write"] = round(time.monotonic() - started, 3)
    manifest = {
        "corpusmill_version": VERSION,
        "config_sha256": cfg.digest(),
        "config": cfg.public_dict(),
        "counts": counts.pop("__all__"),
        "sources": _source_report(units, counts, source_files),
        "stages": reports or {},
        "outputs": outputs,
        "timings_s": timings,
    }
    check_balance({"__all__": manifest["counts"], **counts})
    manifest["balanced"] = True
    write_text(join(out, "manifest.json"), json.dumps(manifest, indent=2, ensure_ascii=False, default=str),
               cfg.output.storage_options)
    return manifest


def _source_report(units: DataFrame, counts: dict[str, Any], source_files: dict[str, list[tuple[str, int]]]
                   ) -> dict[str, Any]:
    detected = (units.groupBy("source", "source_format", "shape", "kind")
                .count().orderBy("source", "source_format", "shape", "kind").collect())
    report: dict[str, Any] = {}
    for name, files in source_files.items():
        report[name] = {"files": len(files), "bytes": sum(size for _, size in files),
                        "formats": {}, "shapes": {}, "kinds": {}, "counts": counts.get(name)}
    for r in detected:
        entry = report[r["source"]]
        fmt = r["source_format"] or "unreadable"
        entry["formats"][fmt] = entry["formats"].get(fmt, 0) + r["count"]
        if r["shape"]:
            entry["shapes"][r["shape"]] = entry["shapes"].get(r["shape"], 0) + r["count"]
        if r["kind"]:
            entry["kinds"][r["kind"]] = entry["kinds"].get(r["kind"], 0) + r["count"]
    return report

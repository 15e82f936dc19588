"""The whole pipeline in one Spark application, or one stage at a time (Airflow, ``--stage``).

Stages in order: ingest -> normalize -> the transforms (filter, dedup, budget, split, as they are
registered in ``TRANSFORMS``) -> write. Run alone, a stage reads the previous stage's output from
``<output>/_work/<stage>/`` (Parquet) and writes its own there, with its report beside it in
``_work/<stage>.report.json``; ``write`` publishes. Run whole, intermediate results stay in Spark.

A transform is ``apply(spark, units, cfg) -> (units, report)``: it may add or fill columns and set
``drop_reason`` on good records (never touching rejected or already-dropped ones); ``report`` is a
JSON-able dict that lands in the manifest under ``stages.<name>``.

Usable as a spark-submit entry point: ``spark-submit jobs/pipeline.py CONFIG [--stage S] [--set k=v]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from jobs.common.config import Config, load
from jobs.common.io import join, read_json, spark_path, write_text
from jobs.progress import Progress

# name -> "module:function"; the order is the pipeline order.
TRANSFORMS: dict[str, str] = {
    "filter": "jobs.filter:apply",
    "dedup": "jobs.dedup:apply",
    "budget": "jobs.budget:apply",
    "split": "jobs.split:apply",
}
STAGES = ("ingest", "normalize", *TRANSFORMS, "write")


def work_path(cfg: Config, stage: str) -> str:
    return join(cfg.output.path, "_work", stage)


def _transform(name: str) -> Callable[..., tuple[Any, dict[str, Any]]]:
    module, func = TRANSFORMS[name].split(":")
    return getattr(importlib.import_module(module), func)


def _previous(stage: str) -> str:
    return STAGES[STAGES.index(stage) - 1]


def run(cfg: Config, stage: str | None = None, log: Callable[[str], None] = print,
        progress: Progress | None = None) -> dict[str, Any] | None:
    """Run every stage (``stage=None``) or just one; returns the manifest when ``write`` ran.

    Progress goes to ``progress`` (console lines locally, logging on a cluster, nothing when quiet);
    by default, console lines through ``log``.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from jobs.common.session import get_session
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize
    from jobs.write import write_all

    progress = progress or Progress("console", emit=log)
    spark = get_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.conf)
    timings: dict[str, float] = {}
    reports: dict[str, Any] = {}
    started = time.monotonic()

    def good(df: Any) -> int:
        return df.filter(F.col("reject_reason").isNull() & F.col("drop_reason").isNull()).count()

    def save(df: Any, name: str) -> None:
        df.write.mode("overwrite").parquet(spark_path(work_path(cfg, name)))

    def timed(entry: Any) -> None:
        timings[entry.stage] = entry.elapsed_s

    read_units, files = plan(cfg)
    n_files = sum(len(v) for v in files.values())
    progress.note(f"plan       {len(cfg.sources)} sources, {n_files} files, {len(read_units)} read units")
    if stage == "ingest":
        with progress.stage("ingest") as p:
            save(ingest(spark, cfg, read_units), "ingest")
        return None
    if stage == "normalize":
        with progress.stage("normalize") as p:
            units = normalize(spark.read.parquet(spark_path(work_path(cfg, "ingest"))), cfg)
            save(units, "normalize")
        return None
    if stage in TRANSFORMS:
        with progress.stage(stage) as p:
            units, report = _transform(stage)(spark, spark.read.parquet(spark_path(work_path(cfg, _previous(stage)))), cfg)
            save(units, stage)
            write_text(work_path(cfg, stage) + ".report.json", json.dumps(report, default=str))
        return None
    if stage == "write":
        units = spark.read.parquet(spark_path(work_path(cfg, _previous("write"))))
        for name in TRANSFORMS:
            reports[name] = read_json(work_path(cfg, name) + ".report.json")
        records = None
    else:
        with progress.stage("normalize") as p:
            units = normalize(ingest(spark, cfg, read_units), cfg).persist(StorageLevel.MEMORY_AND_DISK)
            p.records_in = units.count()
            p.records_out = records = good(units)
        timed(p)
        for name in TRANSFORMS:
            with progress.stage(name, records_in=records) as p:
                # Persisted: later stages run several actions, and langid/MinHash must not run twice.
                # The previous stage's cache stays: unpersisting it would also drop this one
                # (Spark uncaches dependent plans) and every stage would recompute its inputs.
                units, reports[name] = _transform(name)(spark, units, cfg)
                units = units.persist(StorageLevel.MEMORY_AND_DISK)
                p.records_out = records = good(units)
            timed(p)
    with progress.stage("write", records_in=records) as p:
        manifest = write_all(spark, units, cfg, timings, files, reports, progress=progress.summary())
        c = manifest["counts"]
        p.records_out = c["output"]
        p.detail = (f"{sum(c['rejected'].values())} rejected, {sum(c['dropped'].values())} dropped "
                    f"-> {cfg.output.path}")
    timings["total"] = round(time.monotonic() - started, 3)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobs/pipeline.py", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    cfg = load(args.config, args.overrides)
    run(cfg, args.stage, progress=Progress.for_run(quiet=args.quiet, master=cfg.spark.master))
    return 0


if __name__ == "__main__":
    sys.exit(main())

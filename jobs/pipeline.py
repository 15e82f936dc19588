"""The whole pipeline in one Spark application, or one stage at a time (Airflow, ``--stage``).

Stages in order: ingest -> normalize -> write. Run alone, a stage reads the previous stage's
output from ``<output>/_work/<stage>/`` (Parquet) and writes its own there; ``write`` publishes.
Run whole, intermediate results stay in Spark (persisted) and ``_work`` is not written.

Usable as a spark-submit entry point: ``spark-submit jobs/pipeline.py CONFIG [--stage S] [--set k=v]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from jobs.common.config import Config, load
from jobs.common.io import join, spark_path

STAGES = ("ingest", "normalize", "write")


def work_path(cfg: Config, stage: str) -> str:
    return join(cfg.output.path, "_work", stage)


def run(cfg: Config, stage: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Run every stage (``stage=None``) or just one; returns the manifest when ``write`` ran."""
    from pyspark import StorageLevel

    from jobs.common.session import get_session
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize
    from jobs.write import write_all

    spark = get_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.conf)
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(name: str, t0: float, detail: str = "") -> None:
        timings[name] = round(time.monotonic() - t0, 3)
        log(f"[corpusmill] {name:<10} done in {timings[name]:7.1f}s {detail}".rstrip())

    t0 = time.monotonic()
    units_plan, files = plan(cfg)
    n_files = sum(len(v) for v in files.values())
    log(f"[corpusmill] plan       {len(cfg.sources)} sources, {n_files} files, {len(units_plan)} read units")
    if stage == "ingest":
        ingest(spark, cfg, units_plan).write.mode("overwrite").parquet(spark_path(work_path(cfg, "ingest")))
        mark("ingest", t0)
        return None
    if stage == "normalize":
        raw = spark.read.parquet(spark_path(work_path(cfg, "ingest")))
        normalize(raw, cfg).write.mode("overwrite").parquet(spark_path(work_path(cfg, "normalize")))
        mark("normalize", t0)
        return None
    if stage == "write":
        units = spark.read.parquet(spark_path(work_path(cfg, "normalize")))
    else:
        units = normalize(ingest(spark, cfg, units_plan), cfg).persist(StorageLevel.MEMORY_AND_DISK)
        n = units.count()
        mark("normalize", t0, f"{n} units")
    manifest = write_all(spark, units, cfg, timings, files)
    c = manifest["counts"]
    log(f"[corpusmill] write      done in {timings['write']:7.1f}s {c['output']} records, "
        f"{sum(c['rejected'].values())} rejected -> {cfg.output.path}")
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
    run(cfg, args.stage, log=(lambda _m: None) if args.quiet else print)
    return 0


if __name__ == "__main__":
    sys.exit(main())

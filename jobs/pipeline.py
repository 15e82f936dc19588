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

# name -> "module:function"; the order is the pipeline order.
TRANSFORMS: dict[str, str] = {}
STAGES = ("ingest", "normalize", *TRANSFORMS, "write")


def work_path(cfg: Config, stage: str) -> str:
    return join(cfg.output.path, "_work", stage)


def _transform(name: str) -> Callable[..., tuple[Any, dict[str, Any]]]:
    module, func = TRANSFORMS[name].split(":")
    return getattr(importlib.import_module(module), func)


def _previous(stage: str) -> str:
    return STAGES[STAGES.index(stage) - 1]


def run(cfg: Config, stage: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Run every stage (``stage=None``) or just one; returns the manifest when ``write`` ran."""
    from pyspark import StorageLevel

    from jobs.common.session import get_session
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize
    from jobs.write import write_all

    spark = get_session(cfg.spark.master, cfg.spark.app_name, cfg.spark.conf)
    timings: dict[str, float] = {}
    reports: dict[str, Any] = {}
    started = time.monotonic()

    def mark(name: str, t0: float, detail: str = "") -> None:
        timings[name] = round(time.monotonic() - t0, 3)
        log(f"[corpusmill] {name:<10} done in {timings[name]:7.1f}s {detail}".rstrip())

    def save(df: Any, name: str) -> None:
        df.write.mode("overwrite").parquet(spark_path(work_path(cfg, name)))

    t0 = time.monotonic()
    read_units, files = plan(cfg)
    n_files = sum(len(v) for v in files.values())
    log(f"[corpusmill] plan       {len(cfg.sources)} sources, {n_files} files, {len(read_units)} read units")
    if stage == "ingest":
        save(ingest(spark, cfg, read_units), "ingest")
        mark("ingest", t0)
        return None
    if stage == "normalize":
        save(normalize(spark.read.parquet(spark_path(work_path(cfg, "ingest"))), cfg), "normalize")
        mark("normalize", t0)
        return None
    if stage in TRANSFORMS:
        units = spark.read.parquet(spark_path(work_path(cfg, _previous(stage))))
        units, report = _transform(stage)(spark, units, cfg)
        save(units, stage)
        write_text(work_path(cfg, stage) + ".report.json", json.dumps(report, default=str))
        mark(stage, t0)
        return None
    if stage == "write":
        units = spark.read.parquet(spark_path(work_path(cfg, _previous("write"))))
        for name in TRANSFORMS:
            reports[name] = read_json(work_path(cfg, name) + ".report.json")
    else:
        units = normalize(ingest(spark, cfg, read_units), cfg).persist(StorageLevel.MEMORY_AND_DISK)
        mark("normalize", t0, f"{units.count()} units")
        for name in TRANSFORMS:
            t0 = time.monotonic()
            units, reports[name] = _transform(name)(spark, units, cfg)
            mark(name, t0)
    manifest = write_all(spark, units, cfg, timings, files, reports)
    c = manifest["counts"]
    log(f"[corpusmill] write      done in {timings['write']:7.1f}s {c['output']} records, "
        f"{sum(c['rejected'].values())} rejected, {sum(c['dropped'].values())} dropped -> {cfg.output.path}")
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

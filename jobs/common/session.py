"""The SparkSession: what local mode needs on a small machine, and config-driven settings."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Quiet, UI-less, small-shuffle defaults; any of them can be overridden by spark.conf in the config.
LOCAL_DEFAULTS: dict[str, Any] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    "spark.log.level": "ERROR",
}


def prepare_environment() -> None:
    """Environment local mode needs here: workers run this interpreter, loopback address."""
    # Without this, Python workers run `python3` from PATH, which lacks pandas/pyarrow in a venv.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # The hostname resolves to loopback on these machines; Spark warns and guesses otherwise.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def get_session(master: str = "local[*]", app_name: str = "corpusmill",
                conf: dict[str, Any] | None = None) -> SparkSession:
    """A SparkSession; under spark-submit the existing master and settings win."""
    prepare_environment()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    # spark-submit starts the JVM first and hands Python its port: its --master and --conf win.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    settings: dict[str, Any] = {}
    if not submitted:
        builder = builder.master(master)
        settings.update(LOCAL_DEFAULTS)
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(str(settings.get("spark.log.level", "ERROR")))
    return spark

"""corpusmill as an Airflow DAG: one ``SparkSubmitOperator`` task per pipeline stage, in order.

Each task is ``spark-submit jobs/pipeline.py CONFIG --stage STAGE --set output.path=OUT`` with
``dist/corpusmill.zip`` in ``--py-files``: the same application, zip and Python settings as
``deploy/submit.sh``. A stage reads the previous stage's output from ``OUT/_work/<previous>/`` and
replaces only its own (``OUT/_work/<stage>/``; ``write`` publishes ``OUT/<kind>/...`` and
``OUT/manifest.json``), so a task can be cleared and re-run on its own.

Params (trigger with ``-c '{"config": ..., "output": ..., "run_id": ...}'`` or the UI form):
  config   the corpusmill YAML config (relative paths, in it too, resolve against the worker's
           working directory: use absolute paths or URLs on a real deployment)
  output   base output path; empty = the config's ``output.path``
  run_id   name of this run's directory under the base; empty = the Airflow run id (sanitized).
           The run writes ``<output>/<run_id>/``, so runs never overwrite each other and a task
           re-run within a run replaces that run's stage output only.

Settings, read at parse time from environment variables (``CORPUSMILL_X``, or the Airflow Variable
environment form ``AIRFLOW_VAR_CORPUSMILL_X``; no metadata-database access while parsing):
  CORPUSMILL_HOME          the corpusmill checkout or deployed tree (default: two levels above this file)
  CORPUSMILL_PYTHON        interpreter with corpusmill's dependencies (default: $HOME/.venv/bin/python)
  CORPUSMILL_SPARK_SUBMIT  spark_binary: the corpusmill environment's spark-submit, never the Airflow
                           venv's (the spark provider's ``pyspark-client`` has no Spark inside);
                           default: $HOME/.venv/lib/python3*/site-packages/pyspark/bin/spark-submit
  CORPUSMILL_ZIP           code zip (default: $HOME/dist/corpusmill.zip, built by deploy/package.py)
  CORPUSMILL_ENV_ARCHIVE   packed environment to ship with --archives (default: none; see submit.sh)
  CORPUSMILL_SPARK_CONF    extra spark-submit --conf settings, a JSON object (default {})
  CORPUSMILL_SPARK_CONN_ID Spark connection (default corpusmill_spark; e.g.
                           AIRFLOW_CONN_CORPUSMILL_SPARK='{"conn_type":"spark","host":"local[2]"}')
  CORPUSMILL_CONFIG        default of the ``config`` param (default: conf/local.yaml)
  CORPUSMILL_TASK_RETRIES  retries per task (default 1; tasks are idempotent)
  CORPUSMILL_STAGES        comma-separated stage list, only if jobs/pipeline.py cannot be read

No pyspark or corpusmill import here: the stage list is read from ``jobs/pipeline.py`` with ``ast``.
"""

from __future__ import annotations

import ast
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[no-redef]

DAG_ID = "corpusmill"


def setting(name: str, default: str) -> str:
    return os.environ.get(f"CORPUSMILL_{name}") or os.environ.get(f"AIRFLOW_VAR_CORPUSMILL_{name}") or default


def pipeline_stages(pipeline_py: Path) -> list[str]:
    """``jobs.pipeline.STAGES`` without importing it: ``("ingest", ..., *TRANSFORMS, "write")``."""
    override = setting("STAGES", "")
    if override:
        return [s.strip() for s in override.split(",") if s.strip()]
    tree = ast.parse(pipeline_py.read_text(encoding="utf-8"), str(pipeline_py))
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("TRANSFORMS", "STAGES") and node.value is not None:
                found[target.id] = node.value
    try:
        transforms = list(ast.literal_eval(found["TRANSFORMS"]))
        stages: list[str] = []
        for elt in found["STAGES"].elts:  # type: ignore[attr-defined]
            if isinstance(elt, ast.Starred) and isinstance(elt.value, ast.Name) and elt.value.id == "TRANSFORMS":
                stages += transforms
            else:
                stages.append(ast.literal_eval(elt))
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        msg = (f"cannot read the stage list from {pipeline_py} ({exc!r}): keep TRANSFORMS a dict literal and "
               "STAGES = (..., *TRANSFORMS, ...) of string literals there, or set CORPUSMILL_STAGES")
        raise ValueError(msg) from exc
    return stages


def output_path(params: dict[str, Any], airflow_run_id: str) -> str:
    """``<output or config's output.path>/<run_id>``; rendered when a task runs, never at parse time."""
    base = str(params.get("output") or "")
    if not base:
        import yaml  # Airflow depends on PyYAML

        with open(params["config"], encoding="utf-8") as fh:
            base = ((yaml.safe_load(fh) or {}).get("output") or {}).get("path") or "out/corpusmill"
    run = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(params.get("run_id") or airflow_run_id)).strip("_.") or "run"
    return f"{base.rstrip('/')}/{run}"


def default_spark_submit(home: Path) -> str:
    """bin/spark-submit inside the venv's pyspark package: it finds its Spark by its own location, so
    it needs no Python on PATH (the venv's bin/spark-submit runs `python3` to look for one)."""
    found = sorted(home.glob(".venv/lib/python3*/site-packages/pyspark/bin/spark-submit"))
    return str(found[-1] if found else home / ".venv" / "bin" / "spark-submit")


HOME = Path(setting("HOME", str(Path(__file__).resolve().parents[2])))
PYTHON = setting("PYTHON", str(HOME / ".venv" / "bin" / "python"))
SPARK_SUBMIT = setting("SPARK_SUBMIT", "") or default_spark_submit(HOME)
ZIP = setting("ZIP", str(HOME / "dist" / "corpusmill.zip"))
ENV_ARCHIVE = setting("ENV_ARCHIVE", "")
CONN_ID = setting("SPARK_CONN_ID", "corpusmill_spark")
STAGES = pipeline_stages(HOME / "jobs" / "pipeline.py")
EXTRA_CONF = {str(k): str(v) for k, v in json.loads(setting("SPARK_CONF", "{}")).items()}

if ENV_ARCHIVE:
    # Executors run the shipped environment; the (client-mode) driver runs here with PYTHON.
    ARCHIVES: str | None = f"{ENV_ARCHIVE}#environment"
    SPARK_CONF = {"spark.pyspark.python": "./environment/bin/python", "spark.pyspark.driver.python": PYTHON}
    ENV_VARS: dict[str, str] = {}
else:
    ARCHIVES = None
    SPARK_CONF = {}
    # Driver and workers on corpusmill's interpreter (a venv's bin/spark-submit also runs it to find Spark).
    ENV_VARS = {"PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON}

OUT = "{{ corpusmill_output(params, run_id) }}"

with DAG(
    dag_id=DAG_ID,
    description="corpusmill: raw LLM training data -> unified, filtered, budgeted records (one task per stage)",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "config": Param(setting("CONFIG", "conf/local.yaml"), type="string", description="corpusmill YAML config"),
        "output": Param("", type="string", description="base output path; empty: the config's output.path"),
        "run_id": Param("", type="string", description="run directory name; empty: the Airflow run id"),
    },
    user_defined_macros={"corpusmill_output": output_path},
    default_args={"retries": int(setting("TASK_RETRIES", "1")), "retry_delay": timedelta(minutes=2)},
    tags=["corpusmill", "spark"],
    doc_md=__doc__,
) as dag:
    previous = None
    for stage in STAGES:
        task = SparkSubmitOperator(
            task_id=stage,
            conn_id=CONN_ID,
            spark_binary=SPARK_SUBMIT,
            application=str(HOME / "jobs" / "pipeline.py"),
            py_files=ZIP,
            archives=ARCHIVES,
            conf={**EXTRA_CONF, **SPARK_CONF},
            env_vars=dict(ENV_VARS),
            name=f"corpusmill-{stage}",
            application_args=["{{ params.config }}", "--stage", stage, "--set", f"output.path={OUT}"],
        )
        if previous is not None:
            previous >> task
        previous = task

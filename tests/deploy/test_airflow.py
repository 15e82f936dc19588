"""The Airflow DAG for real: Airflow in its own venv, a DagBag import check, ``airflow dags test``.

Airflow lives in its own virtual environment (``$CORPUSMILL_AIRFLOW_VENV``, default
``build/airflow-venv``, created on first use: ~50 s here) because its Spark provider installs
``pyspark-client``, which overwrites pyspark's files. Its tasks run spark-submit from the pyspark of
the interpreter running these tests, with that interpreter as the driver and worker Python.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.common.session import LOCAL_DEFAULTS
from jobs.pipeline import STAGES
from tests.deploy.helpers import REPO, check_sample_output, child_env

DAG_FILE = REPO / "deploy" / "airflow" / "corpusmill_dag.py"
REQUIREMENTS = ["apache-airflow>=3,<4", "apache-airflow-providers-apache-spark>=5"]


def _dag_helpers() -> dict:
    """The DAG file's pure helpers, compiled alone (the file itself needs Airflow to import)."""
    tree = ast.parse(DAG_FILE.read_text())
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    namespace: dict = {"ast": ast, "os": os, "re": __import__("re"), "Path": Path, "Any": object}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), str(DAG_FILE), "exec"), namespace)  # noqa: S102
    return namespace


def test_dag_reads_the_stage_list_of_jobs_pipeline_without_importing_it(monkeypatch):
    monkeypatch.delenv("CORPUSMILL_STAGES", raising=False)
    assert _dag_helpers()["pipeline_stages"](REPO / "jobs" / "pipeline.py") == list(STAGES)


def test_dag_stage_list_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CORPUSMILL_STAGES", raising=False)
    bad = tmp_path / "pipeline.py"
    bad.write_text("TRANSFORMS = load_registry()\nSTAGES = ('ingest', *TRANSFORMS, 'write')\n")
    with pytest.raises(ValueError, match="CORPUSMILL_STAGES"):
        _dag_helpers()["pipeline_stages"](bad)
    monkeypatch.setenv("CORPUSMILL_STAGES", "ingest, normalize ,write")
    assert _dag_helpers()["pipeline_stages"](bad) == ["ingest", "normalize", "write"]


def test_default_spark_submit_is_the_one_inside_the_venvs_pyspark():
    import pyspark

    found = Path(_dag_helpers()["default_spark_submit"](REPO))
    pyspark_bin = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    if REPO / ".venv" in pyspark_bin.parents:
        assert found == pyspark_bin
    assert found.name == "spark-submit"


def test_output_path_is_per_run(tmp_path):
    output_path = _dag_helpers()["output_path"]
    config = tmp_path / "c.yaml"
    config.write_text("sources: []\noutput:\n  path: s3://bucket/corpus/\n")
    assert output_path({"config": str(config), "output": "", "run_id": ""},
                       "manual__2026-11-23T00:48:17.236968+00:00") == "s3://bucket/corpus/manual__2026-11-23T00_48_17.236968_00_00"
    assert output_path({"config": str(config), "output": "/data/out", "run_id": "nightly 7"}, "x") == "/data/out/nightly_7"


# --------------------------------------------------------------------------- with Airflow installed
def _run(cmd: list[str], env: dict[str, str], timeout: int, log: Path, cwd: Path = REPO) -> tuple[float, str]:
    """Run with no stdin (as CI does); output to ``log``; fail with its tail."""
    t0 = time.monotonic()
    with open(log, "w") as fh:
        done = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=timeout)
    text = log.read_text(errors="replace")
    assert done.returncode == 0, f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{text[-6000:]}"
    return time.monotonic() - t0, text


@pytest.fixture(scope="module")
def airflow_venv(tmp_path_factory) -> Path:
    venv = Path(os.environ.get("CORPUSMILL_AIRFLOW_VENV") or REPO / "build" / "airflow-venv")
    marker = venv / "corpusmill-requirements.json"
    if marker.exists() and json.loads(marker.read_text()) == REQUIREMENTS and (venv / "bin" / "airflow").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    log = tmp_path_factory.mktemp("airflow-install") / "install.log"
    env = child_env(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(venv)], env, 300, log)
    took, _ = _run([str(venv / "bin" / "pip"), "install", "--quiet", *REQUIREMENTS], env, 1200, log)
    print(f"airflow installed into {venv} in {took:.0f}s")
    marker.write_text(json.dumps(REQUIREMENTS))
    return venv


@pytest.fixture(scope="module")
def airflow_env(airflow_venv, tmp_path_factory) -> dict[str, str]:
    import pyspark

    home = tmp_path_factory.mktemp("airflow-home")
    env = child_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAG_FILE.parent),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW_CONN_CORPUSMILL_SPARK=json.dumps({"conn_type": "spark", "host": "local[2]"}),
        CORPUSMILL_HOME=str(REPO),
        CORPUSMILL_PYTHON=sys.executable,
        CORPUSMILL_SPARK_SUBMIT=str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        CORPUSMILL_SPARK_CONF=json.dumps(LOCAL_DEFAULTS),
        CORPUSMILL_TASK_RETRIES="0",
        SPARK_LOCAL_IP="127.0.0.1",
        PATH=f"{airflow_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    took, _ = _run([str(airflow_venv / "bin" / "airflow"), "db", "migrate"], env, 300, home / "migrate.log")
    print(f"airflow db migrate: {took:.1f}s")
    subprocess.run([sys.executable, str(REPO / "deploy" / "package.py"), "--zip-only", "--quiet"], check=True)
    return env


DAGBAG_CHECK = r"""
import json, sys, time
t0 = time.monotonic()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.get_dag("corpusmill")
order, task = [], None
if dag is not None:
    task = next(t for t in dag.tasks if not t.upstream_task_ids)
    while task is not None:
        order.append(task)
        task = dag.get_task(next(iter(task.downstream_task_ids))) if task.downstream_task_ids else None
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "chain": [t.task_id for t in order],
    "n_tasks": len(dag.tasks) if dag else 0,
    "operators": sorted({type(t).__name__ for t in order}),
    "spark_binary": sorted({getattr(t, "spark_binary", None) or t._spark_binary for t in order}),
    "application": sorted({t.application for t in order}),
    "conf": [t.conf for t in order][:1],
    "args": {t.task_id: t.application_args for t in order},
    "catchup": dag.catchup if dag else None,
    "schedule": str(getattr(dag, "schedule", None)),
    "params": sorted(dag.params.keys()) if dag else [],
    "heavy_imports": sorted(m for m in ("pyspark", "jobs", "udfs", "pandas", "pyarrow") if m in sys.modules),
    "seconds": round(time.monotonic() - t0, 2),
}))
"""


@pytest.mark.slow
def test_dagbag_imports_the_dag_with_one_spark_task_per_stage(airflow_venv, airflow_env, tmp_path):
    script = tmp_path / "dagbag_check.py"
    script.write_text(DAGBAG_CHECK)
    _, text = _run([str(airflow_venv / "bin" / "python"), str(script), str(DAG_FILE.parent)], airflow_env, 300,
                   tmp_path / "dagbag.log")
    report = json.loads(text.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dag_ids"] == ["corpusmill"]
    assert report["chain"] == list(STAGES) and report["n_tasks"] == len(STAGES)
    assert report["operators"] == ["SparkSubmitOperator"]
    assert report["spark_binary"] == [airflow_env["CORPUSMILL_SPARK_SUBMIT"]]
    assert report["application"] == [str(REPO / "jobs" / "pipeline.py")]
    assert report["conf"] == [{k: str(v) for k, v in LOCAL_DEFAULTS.items()}]  # CORPUSMILL_SPARK_CONF
    for stage, args in report["args"].items():
        assert args[0] == "{{ params.config }}" and args[1:3] == ["--stage", stage]
    assert report["catchup"] is False and report["params"] == ["config", "output", "run_id"]
    assert report["heavy_imports"] == []


def _files_and_mtimes(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


def _rows(directory: Path) -> list[dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(directory)
    return sorted(table.to_pylist(), key=lambda r: (r["id"] or "", r.get("source_offset") or 0))


@pytest.mark.slow
def test_dags_test_runs_the_whole_dag_and_a_task_rerun_replaces_only_its_stage(airflow_venv, airflow_env, tmp_path):
    airflow = str(airflow_venv / "bin" / "airflow")
    conf = json.dumps({"config": "conf/local.yaml", "output": str(tmp_path / "runs"), "run_id": "ci"})
    took, text = _run([airflow, "dags", "test", "corpusmill", "-c", conf], airflow_env, 1500,
                      tmp_path / "dags_test.log")
    print(f"airflow dags test corpusmill ({len(STAGES)} tasks): {took:.0f}s")
    out = tmp_path / "runs" / "ci"
    for stage in STAGES:
        assert f"--stage {stage} --set output.path={out}" in text  # each task ran its own spark-submit
    check_sample_output(out)
    work = out / "_work"
    assert [s for s in STAGES[:-1] if not (work / s / "_SUCCESS").exists()] == []

    # Re-run one task of the same run (the stage before write), the others marked successful.
    stage = STAGES[-2]
    before = {p.name: _files_and_mtimes(p) for p in work.iterdir() if p.is_dir() and p.name != stage}
    published = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    rows_before = _rows(work / stage)
    stamp = (work / stage / "_SUCCESS").stat().st_mtime_ns
    others = "|".join(s for s in STAGES if s != stage)
    _, text = _run([airflow, "dags", "test", "corpusmill", "-c", conf, "--mark-success-pattern", f"^({others})$"],
                   airflow_env, 900, tmp_path / "rerun.log")
    assert [s for s in STAGES if f"--stage {s} " in text] == [stage]
    assert (work / stage / "_SUCCESS").stat().st_mtime_ns > stamp  # it ran and replaced its output
    assert {p.name: _files_and_mtimes(p) for p in work.iterdir() if p.is_dir() and p.name != stage} == before
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == published
    assert _rows(work / stage) == rows_before  # same input, same result

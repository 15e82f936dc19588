"""spark-submit packaging: the code zip, deploy/submit.sh's command line, and real spark-submit runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobs.pipeline import STAGES
from tests.deploy.helpers import REPO, check_sample_output, child_env

SUBMIT = REPO / "deploy" / "submit.sh"
PACKAGE = REPO / "deploy" / "package.py"


def _package(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PACKAGE), *args], capture_output=True, text=True, check=True,
                          stdin=subprocess.DEVNULL)


def test_zip_holds_every_source_file_and_is_byte_reproducible(tmp_path):
    _package("--zip-only", "--quiet", "--dist", str(tmp_path / "a"))
    _package("--zip-only", "--quiet", "--dist", str(tmp_path / "b"))
    first, second = tmp_path / "a" / "corpusmill.zip", tmp_path / "b" / "corpusmill.zip"
    assert first.read_bytes() == second.read_bytes()
    expected = sorted(p.relative_to(REPO).as_posix() for pkg in ("jobs", "udfs") for p in (REPO / pkg).rglob("*.py")
                      if "__pycache__" not in p.parts)
    names = zipfile.ZipFile(first).namelist()
    assert sorted(n for n in names if n.endswith(".py")) == expected
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # The zip alone provides the packages (as --py-files does on an executor).
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import jobs.pipeline, udfs.schema; "
             "print(jobs.pipeline.__file__); print(' '.join(jobs.pipeline.STAGES))")
    out = subprocess.run([sys.executable, "-c", probe, str(first)], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str(first)) and out[1].split() == list(STAGES)


def test_requirements_for_images_and_packed_envs_leave_pyspark_out():
    reqs = _package("--print-requirements").stdout.split()
    assert reqs and not [r for r in reqs if r.lower().startswith("pyspark")]
    assert any(r.startswith("pyarrow") for r in reqs)


def test_unknown_stage_fails_before_spark_starts(tmp_path):
    done = subprocess.run([str(SUBMIT), "dedupe", "conf/local.yaml"], capture_output=True, text=True, cwd=REPO,
                          env=child_env(SPARK_SUBMIT=str(tmp_path / "never-run")), stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "unknown stage 'dedupe'" in done.stderr and " ".join(STAGES) in done.stderr


def _fake_spark_submit(tmp_path: Path) -> Path:
    """A stand-in spark-submit that records its arguments and environment."""
    fake = tmp_path / "spark-submit"
    record = tmp_path / "call.json"
    fake.write_text(f"""#!{sys.executable}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if "PYSPARK" in k or k == "SPARK_LOCAL_IP"}}}},
          open({str(record)!r}, "w"))
""")
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize("stage", ["pipeline", STAGES[1]])
def test_arguments_go_to_spark_submit_or_to_the_job(tmp_path, stage):
    fake = _fake_spark_submit(tmp_path)
    args = [str(SUBMIT), stage, "conf/local.yaml", "--master", "local[2]", "--conf", "spark.x=1",
            "--set", "output.path=/tmp/o", "--set=spark.conf.a=b", "--quiet", "--driver-memory", "1g"]
    subprocess.run(args, check=True, capture_output=True, cwd=REPO, stdin=subprocess.DEVNULL,
                   env=child_env(SPARK_SUBMIT=str(fake), CORPUSMILL_PYTHON=sys.executable))
    call = json.loads((tmp_path / "call.json").read_text())
    argv = call["argv"]
    app = argv.index(str(REPO / "jobs" / "pipeline.py"))
    spark_side, job_side = argv[:app], argv[app + 1:]
    assert spark_side[spark_side.index("--py-files") + 1] == str(REPO / "dist" / "corpusmill.zip")
    assert spark_side[spark_side.index("--master") + 1] == "local[2]"
    assert "spark.x=1" in spark_side and "--driver-memory" in spark_side
    # Local mode gets corpusmill's local defaults, before the caller's own --conf (later wins).
    assert spark_side.index("spark.ui.enabled=false") < spark_side.index("spark.x=1")
    expected_job = ["conf/local.yaml"] + ([] if stage == "pipeline" else ["--stage", stage])
    assert job_side == expected_job + ["--set", "output.path=/tmp/o", "--set", "spark.conf.a=b", "--quiet"]
    assert call["env"]["PYSPARK_PYTHON"] == sys.executable == call["env"]["PYSPARK_DRIVER_PYTHON"]
    assert call["env"]["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_packed_env_is_shipped_as_an_archive(tmp_path):
    fake = _fake_spark_submit(tmp_path)
    archive = tmp_path / "env.tar.gz"
    archive.write_bytes(b"")
    subprocess.run([str(SUBMIT), "pipeline", "conf/local.yaml", "--master", "yarn", "--deploy-mode", "cluster"],
                   check=True, capture_output=True, cwd=REPO, stdin=subprocess.DEVNULL,
                   env=child_env(SPARK_SUBMIT=str(fake), CORPUSMILL_PYTHON=sys.executable,
                                 CORPUSMILL_ENV_ARCHIVE=str(archive)))
    call = json.loads((tmp_path / "call.json").read_text())
    argv = call["argv"]
    assert argv[argv.index("--archives") + 1] == f"{archive}#environment"
    assert "spark.pyspark.python=./environment/bin/python" in argv
    assert "spark.pyspark.driver.python=./environment/bin/python" in argv  # cluster mode: the driver too
    assert "SPARK_LOCAL_IP" not in call["env"] and "PYSPARK_PYTHON" not in call["env"]
    assert "spark.ui.enabled=false" not in argv  # no local defaults on a cluster


def _pyspark_submit() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def test_submit_pipeline_with_the_spark_submit_from_pyspark(tmp_path):
    """The whole pipeline as one spark-submit application in local mode; workers on this interpreter."""
    out = tmp_path / "out"
    done = subprocess.run([str(SUBMIT), "pipeline", "conf/local.yaml", "--master", "local[2]",
                           "--set", f"output.path={out}"],
                          capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=900,
                          env=child_env(SPARK_SUBMIT=_pyspark_submit(), CORPUSMILL_PYTHON=sys.executable))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[corpusmill]" in done.stdout  # progress lines reach the console
    check_sample_output(out)
    # A whole run keeps the stages' intermediate data in Spark (no per-stage outputs in _work/).
    assert not [s for s in STAGES if (out / "_work" / s).exists()]


@pytest.mark.slow
def test_packed_env_on_a_local_cluster(tmp_path):
    """deploy/package.py's venv-pack archive, shipped with --archives to real executor processes.

    ``local-cluster[1,2,1024]`` starts a separate executor JVM whose working directory receives the
    unpacked archive, as on YARN or Kubernetes: the workers can only start if
    ``./environment/bin/python`` resolves there, and the pipeline only finishes if the packed
    environment holds every package the workers import. The driver runs this interpreter (client mode).
    """
    _package("--quiet")  # rebuilt only when the requirements changed (dist/corpusmill-env.json)
    archive = REPO / "dist" / "corpusmill-env.tar.gz"
    assert archive.exists()
    # local-cluster's worker directory is <SPARK_HOME>/work, whatever SPARK_WORKER_DIR says: find this
    # run's application there and remove it afterwards.
    work = Path(_pyspark_submit()).parents[1] / "work"
    apps_before = set(work.glob("app-*"))
    out = tmp_path / "out"
    try:
        done = subprocess.run([str(SUBMIT), "pipeline", "conf/local.yaml", "--master", "local-cluster[1,2,1024]",
                               "--set", f"output.path={out}"],
                              capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=1200,
                              env=child_env(SPARK_SUBMIT=_pyspark_submit(), CORPUSMILL_PYTHON=sys.executable,
                                            CORPUSMILL_ENV_ARCHIVE=str(archive)))
        apps = sorted(set(work.glob("app-*")) - apps_before)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        check_sample_output(out)
        unpacked = [p for app in apps for p in app.glob("*/environment/bin/python")]
        assert unpacked, f"the archive was not unpacked for an executor under {work}"
        assert os.access(unpacked[0], os.X_OK)
    finally:
        for app in set(work.glob("app-*")) - apps_before:
            shutil.rmtree(app, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.rmdir()  # only if empty

"""Kubernetes: the SparkApplication manifest's structure and the Dockerfile's references.

No Docker engine or cluster runs here, so this checks what can be checked without one: the YAML is
what the Spark operator's v1beta2 CRD expects, its config is a valid corpusmill config, credentials
come from a secret on driver and executors alike, and every file the Dockerfile copies exists.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import yaml

from jobs.common.config import load
from tests.deploy.helpers import REPO

K8S = REPO / "deploy" / "k8s"
CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _docs() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all((K8S / "sparkapplication.yaml").read_text()) if d]
    return {d["kind"]: d for d in docs}


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (K8S / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_spark_application_structure():
    app = _docs()["SparkApplication"]
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster" and str(spec["pythonVersion"]) == "3"
    assert spec["mainApplicationFile"] == "local:///opt/corpusmill/jobs/pipeline.py"
    assert spec["image"] and spec["restartPolicy"]["type"] in ("Never", "OnFailure")
    for role in ("driver", "executor"):
        assert spec[role]["cores"] >= 1 and re.fullmatch(r"\d+[mg]", spec[role]["memory"])
    assert spec["executor"]["instances"] >= 1 and spec["driver"]["serviceAccount"]


def test_credentials_come_from_a_secret_on_driver_and_executors():
    spec = _docs()["SparkApplication"]["spec"]
    for role in ("driver", "executor"):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec[role]["env"] if "valueFrom" in e}
        assert CREDENTIALS <= set(refs), role
        assert {r["name"] for r in refs.values()} == {"corpusmill-s3"}
        assert not [e for e in spec[role]["env"] if e["name"] in CREDENTIALS and "value" in e]  # never inline


def test_arguments_name_a_mounted_valid_config():
    docs = _docs()
    spec = docs["SparkApplication"]["spec"]
    config_path = PurePosixPath(spec["arguments"][0])
    mount = next(m for m in spec["driver"]["volumeMounts"] if config_path.is_relative_to(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    configmap = docs["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    key = str(config_path.relative_to(mount["mountPath"]))
    overrides = [a for prev, a in zip(spec["arguments"], spec["arguments"][1:], strict=False) if prev == "--set"]
    cfg = load(None, overrides, check_paths=False, text=configmap["data"][key])
    assert cfg.output.path.startswith("s3://") and all(s.path.startswith("s3://") for s in cfg.sources)
    assert configmap["metadata"]["namespace"] == docs["SparkApplication"]["metadata"]["namespace"]


def test_dockerfile_copies_files_that_exist_and_matches_the_manifest():
    steps = _dockerfile()
    args = dict(a.split("=", 1) for word, a in steps if word == "ARG" and "=" in a)
    assert any(word == "FROM" and "apache/spark" in a for word, a in steps)
    for word, rest in steps:
        if word == "COPY":
            *sources, _dest = rest.split()
            for src in sources:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the build context"
    workdirs = [a for w, a in steps if w == "WORKDIR"]
    assert workdirs[0] == "/opt/corpusmill"
    assert ("COPY", "jobs/ jobs/") in steps  # -> /opt/corpusmill/jobs/pipeline.py, the mainApplicationFile
    assert Path(REPO / "jobs" / "pipeline.py").exists()
    spec = _docs()["SparkApplication"]["spec"]
    assert spec["sparkVersion"] == args["SPARK_VERSION"]
    assert [a for w, a in steps if w == "USER"][-1] not in ("root", "0")  # not root at run time

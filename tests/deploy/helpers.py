"""Shared by the deploy tests: the repository, a clean environment for child processes, and an
independent count of what a run wrote (read back from the files, not from the manifest)."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# By construction of jobs/samples.py (README table): 278 units read, 8 of them rejected.
SAMPLE_INPUT = 278
SAMPLE_REJECTED = 8


def child_env(**extra: str) -> dict[str, str]:
    """This environment minus what the test session's own Spark set up, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYSPARK_", "SPARK_", "AIRFLOW", "CORPUSMILL_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def sample_sources() -> list[str]:
    return [s["name"] for s in yaml.safe_load((REPO / "conf" / "local.yaml").read_text())["sources"]]


def _lines(path: Path) -> int:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return sum(1 for line in data.splitlines() if line.strip())


def count_records(directory: Path) -> int:
    """Records in every ``part-*`` file below ``directory``."""
    return sum(_lines(p) for p in directory.rglob("part-*") if p.is_file())


def check_sample_output(out: Path) -> dict:
    """The manifest of a run over conf/local.yaml agrees with the samples and with the files on disk."""
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert manifest["balanced"] is True
    assert counts["input"] == SAMPLE_INPUT
    assert sum(counts["rejected"].values()) == SAMPLE_REJECTED
    assert counts["input"] == counts["output"] + sum(counts["rejected"].values()) + sum(counts["dropped"].values())
    assert sorted(manifest["sources"]) == sorted(sample_sources())
    for kind, n in counts["output_by_kind"].items():
        assert count_records(out / kind) == n, kind
    assert count_records(out / "rejected") == SAMPLE_REJECTED
    assert (out / "_SUCCESS").exists()
    # Every run writes its report (jobs.write calls jobs.report.write_report).
    from jobs.report import SECTIONS

    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(f"<h2>{title}</h2>" in page for _, title in SECTIONS)
    return manifest

"""Shared fixtures: one local SparkSession for the whole run, the real-data directory, samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    value = os.environ.get("CORPUSMILL_SHARED_DATA")
    if value and Path(value).is_dir():
        return Path(value)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (third-party data); skipped where absent, a failure under CI."""
    path = shared_data_dir()
    if path is None:
        reason = ("real third-party data not available: set CORPUSMILL_SHARED_DATA to the shared/data "
                  "directory (.ci/run sets it to ../shared/data)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " -- required under CI")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def spark():
    from jobs.common.session import get_session

    session = get_session("local[2]", "corpusmill-tests", {
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "2g",
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory) -> Path:
    """The embedded sample set, freshly written by the generator."""
    from jobs.samples import write_samples

    out = tmp_path_factory.mktemp("samples")
    write_samples(str(out))
    return out

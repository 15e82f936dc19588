"""Shared fixtures: one local SparkSession for the whole run, the real-data directory, samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared import shared_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (third-party data); skipped where absent, a failure under CI."""
    return shared_data_dir()


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

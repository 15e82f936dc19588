"""The one setting that points tests at the real third-party data: ``CORPUSMILL_SHARED_DATA``.

Absent (a fresh user machine): the test is skipped with the reason. Absent under ``CI=true``: the
test fails, because CI must run the real-data tests (``.ci/run`` sets the variable).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "CORPUSMILL_SHARED_DATA"


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the shared data is missing: {reason}")
    pytest.skip(reason)


def shared_data_dir() -> Path:
    root = os.environ.get(ENV)
    if root and Path(root).is_dir():
        return Path(root)
    _missing(f"{ENV} is not set: point it at the shared third-party data (.ci/run sets ../shared/data)"
             if not root else f"{ENV}={root} is not a directory")
    raise AssertionError("unreachable")


def shared_data_file(relative: str) -> Path:
    path = shared_data_dir() / relative
    if not path.is_file():
        _missing(f"{relative} not found under {ENV}={path.parents[len(Path(relative).parts) - 1]}")
    return path

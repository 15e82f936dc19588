"""Atomic publish of a run's output on any fsspec filesystem: stage, then move into place.

A run writes every file under ``<out>/_staging/<token>/``. Publishing then

1. removes ``_SUCCESS`` (from here on the output does not look complete) and ``manifest.json``,
2. removes what an earlier run published (only the entries corpusmill owns, never ``_work``),
3. moves every staged entry into place: a directory rename on a local filesystem; on object
   stores (s3, gcs, ...) a server-side copy of every file followed by a delete, since they have no
   rename,
4. leaves ``manifest.json`` and ``_SUCCESS`` to the caller, in that order, after everything else.

A run that dies anywhere before step 4 leaves no ``_SUCCESS``; the next run deletes the stale
staging area first and rewrites everything.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec

from jobs.common.io import join

STAGING = "_staging"
SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def new_staging(out: str, storage_options: dict[str, Any] | None = None) -> str:
    """A fresh staging folder under ``out``; stale ones from failed runs are removed first."""
    fs, root = filesystem(out, storage_options)
    stale = join(root, STAGING)
    if fs.exists(stale):
        fs.rm(stale, recursive=True)
    return join(out, STAGING, uuid.uuid4().hex[:16])  # the name never reaches the output bytes


def discard(staging: str, storage_options: dict[str, Any] | None = None) -> None:
    """Best effort: a task Spark is still cancelling may write a file after this; the next run's
    ``new_staging`` removes what is left."""
    fs, path = filesystem(staging, storage_options)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    _remove_if_empty(fs, path.rsplit("/", 1)[0])


def _remove_if_empty(fs: fsspec.AbstractFileSystem, path: str) -> None:
    if is_local(fs) and fs.exists(path) and not fs.ls(path):
        fs.rm(path, recursive=True)


def unpublish(out: str, owned: list[str], storage_options: dict[str, Any] | None = None) -> None:
    """Make ``out`` not look complete, then remove what corpusmill published there before."""
    fs, root = filesystem(out, storage_options)
    for name in (SUCCESS, MANIFEST):
        if fs.exists(join(root, name)):
            fs.rm(join(root, name))
    for name in owned:
        if fs.exists(join(root, name)):
            fs.rm(join(root, name), recursive=True)


def publish(staging: str, out: str, entries: list[str], files: list[str],
            storage_options: dict[str, Any] | None = None) -> None:
    """Move staged top-level ``entries`` (folders or files) into ``out``.

    ``files`` (paths relative to the staging root) lists every staged file: object stores copy them
    one by one (batched, server side) and then delete the staging area.
    """
    fs, src_root = filesystem(staging, storage_options)
    _, dst_root = filesystem(out, storage_options)
    if is_local(fs):
        os.makedirs(dst_root, exist_ok=True)
        for name in entries:
            os.replace(join(src_root, name), join(dst_root, name))
    else:
        if files:
            fs.copy([join(src_root, f) for f in files], [join(dst_root, f) for f in files])
    if fs.exists(src_root):
        fs.rm(src_root, recursive=True)
    _remove_if_empty(fs, src_root.rsplit("/", 1)[0])

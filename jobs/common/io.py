"""Storage through fsspec: listing a source's files, planning read units, writing small files.

A local path and a bucket behave the same: every path goes through ``fsspec.core.url_to_fs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import fsspec

from jobs.common.config import ConfigError, SourceConfig
from udfs.readers import ReadOptions, compression_of, format_from_name, resolve_format

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ReadUnit:
    """One task's worth of input: a whole file, or a byte range of a large uncompressed JSONL file."""

    source: str
    path: str
    format: str
    start: int = 0
    end: int = -1  # -1: to the end of the file


def read_options(src: SourceConfig) -> ReadOptions:
    return ReadOptions(format=src.format, txt_unit=src.txt_unit, csv_delimiter=src.csv_delimiter,
                       storage_options=tuple(sorted(src.storage_options.items())))


def _full_path(fs: fsspec.AbstractFileSystem, path: str) -> str:
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return os.path.abspath(path)
    return fs.unstrip_protocol(path)


def _is_data_file(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and format_from_name(name) is not None


def list_files(src: SourceConfig) -> list[tuple[str, int]]:
    """Every (file, size) of a source, sorted, so reads and ids are the same on every run."""
    found: dict[str, int] = {}
    for pattern in src.paths:
        fs, root = fsspec.core.url_to_fs(pattern, **src.storage_options)
        if GLOB_CHARS & set(root):
            matches = fs.glob(root, detail=True)
            items = {p: info for p, info in matches.items() if info.get("type") == "file"}
        elif fs.isdir(root):
            items = {p: info for p, info in fs.find(root, detail=True).items() if _is_data_file(p)}
        elif fs.exists(root):
            items = {root: fs.info(root)}
        else:
            raise ConfigError(f"source '{src.name}': path '{pattern}' does not exist")
        for path, info in items.items():
            found[_full_path(fs, path)] = int(info.get("size") or 0)
    if not found:
        raise ConfigError(f"source '{src.name}': {src.paths} matched no data file "
                          "(directories are searched for .jsonl/.json/.parquet/.csv/.tsv/.txt files)")
    return sorted(found.items())


def plan_units(src: SourceConfig, files: list[tuple[str, int]], split_bytes: int) -> list[ReadUnit]:
    """Whole files, except large uncompressed JSONL files, which are split into byte ranges."""
    options = read_options(src)
    units = []
    for path, size in files:
        if size > split_bytes and compression_of(path) is None:
            fmt = resolve_format(path, options)
            if fmt == "jsonl":
                units += [ReadUnit(src.name, path, fmt, start, min(start + split_bytes, size))
                          for start in range(0, size, split_bytes)]
                continue
            units.append(ReadUnit(src.name, path, fmt))
            continue
        units.append(ReadUnit(src.name, path, src.format))
    return units


def write_text(url: str, text: str, storage_options: dict[str, Any] | None = None) -> None:
    with fsspec.open(url, "w", encoding="utf-8", **(storage_options or {})) as fh:
        fh.write(text)


def read_json(url: str, storage_options: dict[str, Any] | None = None) -> Any:
    with fsspec.open(url, "r", encoding="utf-8", **(storage_options or {})) as fh:
        return json.load(fh)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])


def spark_path(url: str) -> str:
    """A path Spark's own readers/writers accept (local paths as absolute file: URIs)."""
    if "://" in url:
        return url
    return "file://" + os.path.abspath(url)

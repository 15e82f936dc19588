"""Shard files written from Python through fsspec (executors and driver; no Spark import).

A shard is one file: JSONL (plain, gzip or zstd) or Parquet (zstd). Bytes are byte-identical for
the same rows in the same order: gzip with ``mtime=0`` and no file name in the header, zstd at a
fixed level in one thread, Parquet in fixed-size row groups whatever batches the rows arrived in.
Every writer counts rows and hashes the bytes as they go out, so the caller gets
``{path, rows, bytes, sha256}`` without reading the file back.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

EXTENSIONS = {("jsonl", "gzip"): "jsonl.gz", ("jsonl", "zstd"): "jsonl.zst", ("jsonl", "none"): "jsonl",
              ("parquet", "zstd"): "parquet"}
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
PARQUET_ROW_GROUP = 8192


def extension(fmt: str, compression: str) -> str:
    return EXTENSIONS[(fmt, "zstd" if fmt == "parquet" else compression)]


def shard_name(index: int, total: int, ext: str, prefix: str = "part") -> str:
    return f"{prefix}-{index:05d}-of-{total:05d}.{ext}"


def shard_count(rows: int, est_bytes: int, shard_rows: int | None, shard_bytes: int) -> int:
    """Shards for a group: from the target rows per shard if set, else from the target bytes."""
    if rows <= 0:
        return 1
    if shard_rows:
        return max(1, math.ceil(rows / shard_rows))
    return max(1, min(rows, math.ceil(est_bytes / shard_bytes)))


class HashingWriter:
    """A binary file wrapper that counts and sha256-hashes what goes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes = 0
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.bytes += len(view)
        self.raw.write(data)
        return len(view)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True  # the owner closes ``raw``


class ShardWriter:
    """Rows -> one shard file at ``url``. ``write_rows`` (dicts, JSONL) or ``write_table`` (Parquet)."""

    def __init__(self, url: str, fmt: str, compression: str = "none", schema: pa.Schema | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.fmt = fmt
        self.rows = 0
        self._file = fsspec.open(url, "wb", **(storage_options or {})).open()
        self._hashing = HashingWriter(self._file)
        self._stream: Any = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        if fmt == "parquet":
            if schema is None:
                raise ValueError("a parquet shard needs a schema")
            self.schema = schema
            self._parquet = pq.ParquetWriter(self._hashing, schema, compression="zstd")
        elif compression == "gzip":
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0,
                                         compresslevel=GZIP_LEVEL)
        elif compression == "zstd":
            import zstandard

            self._stream = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0).stream_writer(
                self._hashing, closefd=False)
        else:
            self._stream = self._hashing

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        self._stream.write(text.encode("utf-8"))
        self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= PARQUET_ROW_GROUP:
            self._flush_group(PARQUET_ROW_GROUP)

    def _flush_group(self, n: int) -> None:
        merged = pa.concat_tables(self._pending).combine_chunks() if self._pending else self.schema.empty_table()
        head, tail = merged.slice(0, n), merged.slice(n)
        if head.num_rows:
            self._parquet.write_table(head, row_group_size=n)
        self._pending = [tail] if tail.num_rows else []
        self._pending_rows = tail.num_rows

    def close(self) -> dict[str, Any]:
        if self.fmt == "parquet":
            if self._pending_rows or self.rows == 0:
                self._flush_group(max(self._pending_rows, 1))
            self._parquet.close()
        elif self._stream is not self._hashing:
            self._stream.close()
        self._file.close()
        return {"rows": self.rows, "bytes": self._hashing.bytes, "sha256": self._hashing.hash.hexdigest()}


def file_digest(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{bytes, sha256}`` of a file, read back in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with fsspec.open(url, "rb", **(storage_options or {})) as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return {"bytes": size, "sha256": h.hexdigest()}


def count_rows(url: str, storage_options: dict[str, Any] | None = None) -> int:
    """Rows in a shard, read back: Parquet from its footer, JSONL by lines (decompressed)."""
    if url.endswith(".parquet"):
        with fsspec.open(url, "rb", **(storage_options or {})) as fh:
            return pq.ParquetFile(fh).metadata.num_rows
    compression = "gzip" if url.endswith(".gz") else "zstd" if url.endswith(".zst") else None
    n = 0
    with fsspec.open(url, "rb", compression=compression, **(storage_options or {})) as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def write_bytes(url: str, data: bytes, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    with fsspec.open(url, "wb", **(storage_options or {})) as fh:
        fh.write(data)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

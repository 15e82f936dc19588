"""Read back what a run wrote, with plain gzip/zstd/pyarrow (independent of the writers)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import zstandard


def read_records(directory: Path) -> list[dict]:
    """Every record of every shard below ``directory`` (jsonl, .gz, .zst or parquet)."""
    rows: list[dict] = []
    for part in sorted(p for p in Path(directory).rglob("part-*") if p.is_file()):
        name = part.name
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            rows += pq.read_table(part).to_pylist()
            continue
        data = part.read_bytes()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        elif name.endswith(".zst"):
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        rows += [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    return rows

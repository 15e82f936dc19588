"""Input files -> raw records (pure Python, any fsspec URL): format sniffing and record iteration.

Each raw record is a dict of ``RAW_SCHEMA``: its JSON text, file, offset, and a read-level error
(``malformed_json``, ``invalid_utf8``, ``malformed_csv`` ...) when it could not be read. A read
problem never stops the file: the bad record becomes a reject and reading goes on.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec

from udfs.text import has_lone_surrogate, safe_raw

FORMATS = ("auto", "jsonl", "json", "parquet", "csv", "tsv", "txt")
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd",
                ".xz": "xz", ".lzma": "xz"}
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
               ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".text": "txt",
               ".md": "txt"}
SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source's files."""

    format: str = "auto"
    txt_unit: str = "line"  # txt: one document per non-empty line, or per whole file
    csv_delimiter: str | None = None  # default: "," for csv, tab for tsv
    storage_options: tuple[tuple[str, Any], ...] = ()


def compression_of(path: str) -> str | None:
    lower = path.lower()
    for ext, codec in COMPRESSIONS.items():
        if lower.endswith(ext):
            return codec
    return None


def _strip_compression(path: str) -> str:
    lower = path.lower()
    for ext in COMPRESSIONS:
        if lower.endswith(ext):
            return lower[: -len(ext)]
    return lower


def format_from_name(path: str) -> str | None:
    name = _strip_compression(path)
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    return None


def sniff_format(path: str, head: bytes) -> str:
    """The format of a file from its name and first bytes (decompressed)."""
    if head.startswith(b"PAR1"):
        return "parquet"
    by_name = format_from_name(path)
    if by_name in ("parquet", "csv", "tsv", "txt"):
        return by_name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first_line = text.split(b"\n", 1)[0]
        try:
            json.loads(first_line)
            return "jsonl"
        except ValueError:
            # a pretty-printed object, or a first line cut by the sniff window
            return "json" if b"\n" in text[: len(first_line) + 1] else (by_name or "jsonl")
    return by_name or "txt"


def open_binary(path: str, options: ReadOptions) -> BinaryIO:
    codec = compression_of(path)
    fh = fsspec.open(path, "rb", compression=codec, **dict(options.storage_options)).open()
    if codec == "zstd":  # zstandard's reader has read/readinto but no readline: buffer it
        return io.BufferedReader(fh, buffer_size=1 << 20)
    return fh


def resolve_format(path: str, options: ReadOptions) -> str:
    if options.format != "auto":
        return options.format
    with open_binary(path, options) as fh:
        return sniff_format(path, _head(fh))


def _head(fh: BinaryIO) -> bytes:
    """Up to SNIFF_BYTES of a stream; a damaged stream gives what could be read before the damage."""
    chunks: list[bytes] = []
    size = 0
    while size < SNIFF_BYTES:
        try:
            chunk = fh.read(4096)
        except (OSError, EOFError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _row(offset: int, fmt: str, raw: str, error: str | None = None, detail: str | None = None
         ) -> dict[str, Any]:
    if error is None and has_lone_surrogate(raw):
        error, detail = "invalid_utf8", "bytes that are not valid UTF-8"
    if error is not None:
        raw = safe_raw(raw)
    return {"source_offset": offset, "format": fmt, "raw": raw, "error": error, "error_detail": detail}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def iter_jsonl(fh: BinaryIO, start: int = 0, end: int | None = None) -> Iterator[dict[str, Any]]:
    """Lines of a JSONL stream; with ``start``/``end`` a byte range, Hadoop-style.

    A line belongs to the range its first byte falls in: a range that does not start at 0 skips
    the partial line it lands in, and every range reads its last line to the end.
    """
    pos = start
    if start > 0:
        fh.seek(start - 1)
        pos = start - 1 + len(fh.readline())
    while end is None or pos < end:
        line = fh.readline()
        if not line:
            break
        offset, pos = pos, pos + len(line)
        if offset == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        stripped = line.strip()
        if not stripped:
            continue
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _row(offset, "jsonl", stripped.decode("utf-8", "backslashreplace"), "invalid_utf8", str(exc))
            continue
        yield _row(offset, "jsonl", text)  # parsed (and rejected if malformed) by normalize


def _looks_columnar(obj: dict[str, Any]) -> bool:
    values = list(obj.values())
    if len(values) < 2 or not all(isinstance(v, list) for v in values):
        return False
    lengths = {len(v) for v in values}
    return len(lengths) == 1 and lengths != {0} and all(
        not isinstance(x, (dict, list)) for v in values for x in v)


_RECORD_KEYS = {"text", "content", "messages", "conversations", "conversation", "chosen", "rejected",
                "instruction", "prompt", "completion", "input", "output", "response", "question",
                "answer", "label", "meta", "system", "tools", "log", "responses", "turns"}


def records_of_json(obj: Any) -> Iterator[tuple[int, Any, str | None]]:
    """Records of a whole JSON document: (index, record, key).

    An array is a list of records; an object is columnar (``{"col": [...], ...}`` with equal-length
    lists of scalars), a dict of records keyed by id (every value an object and no key a field
    name), or a single record.
    """
    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            yield i, rec, None
    elif isinstance(obj, dict) and _looks_columnar(obj):
        keys = list(obj)
        for i in range(len(obj[keys[0]])):
            yield i, {k: obj[k][i] for k in keys}, None
    elif (isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values())
          and not (set(map(str.lower, obj)) & _RECORD_KEYS)):
        for i, (key, rec) in enumerate(obj.items()):
            yield i, {**rec, "_key": key} if "_key" not in rec else rec, key
    else:
        yield 0, obj, None


def iter_json(fh: BinaryIO) -> Iterator[dict[str, Any]]:
    data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")  # bad records are rejected one by one below
    try:
        obj = json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith("{"):  # maybe JSONL after all (a first line longer than the sniff)
            yield from iter_jsonl(io.BytesIO(data))
            return
        yield _row(0, "json", text[:1_000_000], "malformed_json", f"the whole file is not JSON: {exc}")
        return
    for index, rec, _key in records_of_json(obj):
        yield _row(index, "json", _dumps(rec))


def iter_csv(fh: BinaryIO, delimiter: str) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(text, delimiter=delimiter)
    fmt = "tsv" if delimiter == "\t" else "csv"
    for index, row in enumerate(reader):
        if None in row or any(v is None for v in row.values()):
            fields = [v for v in row.values() if isinstance(v, str)] + list(row.get(None) or [])
            yield _row(index, fmt, _dumps(fields), "malformed_csv",
                       f"row has {len(fields)} fields, header has {len(reader.fieldnames or [])}")
            continue
        yield _row(index, fmt, _dumps(row))


def iter_txt(fh: BinaryIO, unit: str) -> Iterator[dict[str, Any]]:
    if unit == "file":
        data = fh.read()
        text = data.decode("utf-8", "surrogateescape")
        if text.strip():
            yield _row(0, "txt", _dumps({"text": text}))
        return
    pos = 0
    for line in fh:
        offset, pos = pos, pos + len(line)
        if offset == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if line.strip():
            yield _row(offset, "txt", _dumps({"text": line.decode("utf-8", "surrogateescape").rstrip("\r\n")}))


def iter_parquet(fh: BinaryIO) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(fh).iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            yield _row(index, "parquet", _dumps(rec))
            index += 1


def iter_file(path: str, fmt: str, options: ReadOptions, start: int = 0, end: int | None = None
              ) -> Iterator[dict[str, Any]]:
    """Every record of one file (or of one byte range of an uncompressed JSONL/txt file)."""
    try:
        if fmt == "auto":  # sniff with a separate open: compressed streams cannot seek back
            fmt = resolve_format(path, options)
        with open_binary(path, options) as fh:
            if fmt == "jsonl":
                yield from iter_jsonl(fh, start, end)
            elif fmt == "json":
                yield from iter_json(fh)
            elif fmt in ("csv", "tsv"):
                yield from iter_csv(fh, options.csv_delimiter or ("\t" if fmt == "tsv" else ","))
            elif fmt == "txt":
                yield from iter_txt(fh, options.txt_unit)
            elif fmt == "parquet":
                yield from iter_parquet(fh)
            else:
                raise ValueError(f"unknown format {fmt!r}")
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        # A truncated .gz, an unreadable parquet footer ...: one reject for what could not be read
        # (pyarrow's ArrowInvalid is a ValueError).
        yield _row(-1, fmt, "", "unreadable_file", f"{type(exc).__name__}: {exc}")

"""``corpusmill verify OUTPUT``: re-check a published output against its ``manifest.json``.

Every shard and side file listed in the manifest is read back (fsspec: local or any URL; S3
endpoint and credentials from the standard AWS environment or ``storage_options``) and its bytes,
sha256 and rows compared with the manifest; a file in an output folder that the manifest does not
list is reported too (a trainer pointed at the folder would read it). No Spark needed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobs.common import commit
from jobs.common.io import join, read_json
from jobs.common.shards import count_rows, file_digest


@dataclass
class Verification:
    files: int = 0
    rows: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check(out: str, entry: dict[str, Any], storage_options: dict[str, Any]) -> tuple[list[str], int]:
    url = join(out, entry["path"])
    try:
        digest = file_digest(url, storage_options)
    except FileNotFoundError:
        return [f"{entry['path']}: missing"], 0
    except Exception as exc:  # e.g. an object replaced while being read
        return [f"{entry['path']}: unreadable ({type(exc).__name__}: {exc})"], 0
    problems = []
    if digest["bytes"] != entry["bytes"]:
        problems.append(f"{entry['path']}: {digest['bytes']} bytes, manifest says {entry['bytes']}")
    if digest["sha256"] != entry["sha256"]:
        problems.append(f"{entry['path']}: sha256 {digest['sha256'][:16]}..., manifest says {entry['sha256'][:16]}...")
    rows = 0
    if "rows" in entry:
        try:
            rows = count_rows(url, storage_options)
        except Exception as exc:  # a corrupt shard must be reported, not crash the check
            problems.append(f"{entry['path']}: unreadable ({type(exc).__name__}: {exc})")
        else:
            if rows != entry["rows"]:
                problems.append(f"{entry['path']}: {rows} rows, manifest says {entry['rows']}")
    return problems, rows


def verify(out: str, storage_options: dict[str, Any] | None = None, workers: int = 8) -> Verification:
    so = dict(storage_options or {})
    result = Verification()
    fs, root = commit.filesystem(out, so)
    fs.invalidate_cache()  # listings cached by an earlier call in this process may be stale
    if not fs.exists(join(root, commit.SUCCESS)):
        result.problems.append(f"{commit.SUCCESS}: missing (the run did not finish, or is still publishing)")
    try:
        manifest = read_json(join(out, commit.MANIFEST), so)
    except FileNotFoundError:
        result.problems.append(f"{commit.MANIFEST}: missing; nothing to verify against")
        return result
    entries = list(manifest.get("shards", [])) + list(manifest.get("files", []))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = list(pool.map(lambda e: _check(out, e, so), entries))
    for entry, (problems, rows) in zip(entries, checked, strict=True):
        result.problems += problems
        result.files += 1
        result.rows += rows
        result.bytes += entry["bytes"]
    listed = {e["path"] for e in entries}
    for top in sorted({e["path"].split("/", 1)[0] for e in entries}):
        base = join(root, top)
        if not fs.exists(base) or not fs.isdir(base):
            continue
        for found in sorted(fs.find(base)):
            rel = found[len(root.rstrip("/")) + 1:]
            if rel not in listed:
                result.problems.append(f"{rel}: not in the manifest")
    return result

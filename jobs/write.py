"""Final stage, write: sharded output per kind and split, exports, rejects, drops; then publish.

Layout under ``output.path`` (``NNNNN`` shards from ``output.shard_rows`` or ``output.shard_bytes``):

    <kind>/<split>/part-00000-of-NNNNN.jsonl.gz   unified records (.jsonl.zst, .jsonl, or .parquet)
    rejected/part-00000-of-NNNNN.jsonl.gz         input that could not be read or mapped, with reason + raw
    dropped/part-00000-of-NNNNN.jsonl.gz          records later stages removed, with reason
    llamafactory/<dataset>/<split>/part-*.jsonl   export: alpaca/sharegpt/ranking/kto + dataset_info.json
    openai/<sft|preference>/<split>/part-*.jsonl  export: chat fine-tuning / DPO JSONL
    hf/<kind>/<train|validation|test>-*.parquet   export: `datasets`-loadable parquet + README.md card
    manifest.json                                 config, counts, tokens, every shard's rows/bytes/sha256
    _SUCCESS                                      written last: the output is complete

How: every row gets a group (kind, ``rejected`` or ``dropped``), a split and a shard index
``xxhash64(id) mod NNNNN``; one shuffle puts each shard in one task, sorted by id (rejects by file and
offset), and the task writes the shard and its export files with fsspec (``jobs.common.shards``), so
``s3://`` needs no Hadoop jars. Tasks return only ``{path, rows, bytes, sha256, per-source counts}``.
Everything goes to a staging folder first; counts come from those results, the balance
``input == output + rejected + dropped`` is checked, and only then is the output published
(``jobs.common.commit``), ``manifest.json`` written, and ``_SUCCESS`` last.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common import commit
from jobs.common.accounting import build_counts, check_balance
from jobs.common.config import Config
from jobs.common.io import join, write_text
from jobs.common.shards import ShardWriter, extension, shard_count, shard_name, write_bytes
from jobs.report import collect_stats, write_report
from udfs.exports import (
    HF_SPLITS,
    LLAMAFACTORY_ENTRIES,
    ExportSkip,
    check_llamafactory,
    dataset_card,
    drop_nulls,
    llamafactory_dataset_info,
    llamafactory_row,
    openai_row,
    unified_row,
)
from udfs.schema import KINDS, UNIT_SCHEMA, columns_for

VERSION = "0.1.0"
SPLIT_ORDER = ("train", "val", "test")
EXPORTS = ("llamafactory", "openai", "hf")
OWNED = [*KINDS, "rejected", "dropped", *EXPORTS]  # top-level entries a run replaces
ORDER = ["id", "source", "source_file", "source_offset", "source_index"]
REJECT_COLUMNS = {"source": "source", "reason": "reject_reason", "detail": "reject_detail", "shape": "shape",
                  "source_file": "source_file", "source_offset": "source_offset",
                  "source_index": "source_index", "source_format": "source_format", "raw": "raw"}
DROP_COLUMNS = {"id": "id", "kind": "kind", "source": "source", "reason": "drop_reason",
                "duplicate_of": "duplicate_of", "cluster_id": "cluster_id", "source_file": "source_file",
                "source_offset": "source_offset", "source_index": "source_index"}
RESULT_SCHEMA = pa.schema([("path", pa.string()), ("family", pa.string()), ("dataset", pa.string()),
                           ("split", pa.string()), ("shard", pa.int32()), ("nshards", pa.int32()),
                           ("rows", pa.int64()), ("bytes", pa.int64()), ("sha256", pa.string()),
                           ("stats", pa.string())])
RESULT_DDL = ("path string, family string, dataset string, split string, shard int, nshards int, "
              "rows long, bytes long, sha256 string, stats string")


def corpusmill_version() -> str:
    try:
        from importlib.metadata import version

        return version("corpusmill")
    except Exception:  # not installed (spark-submit with --py-files)
        return VERSION


def kind_schema(kind: str) -> pa.Schema:
    return pa.schema([UNIT_SCHEMA.field(c) for c in columns_for(kind)])


def rel_path(family: str, dataset: str, split: str, shard: int, n: int, fmt: str, compression: str) -> str:
    """Path of one shard relative to the output root."""
    if family == "unified":
        return f"{dataset}/{split}/{shard_name(shard, n, extension(fmt, compression))}"
    if family in ("rejected", "dropped"):
        return f"{family}/{shard_name(shard, n, extension('jsonl', compression))}"
    if family == "hf":
        return f"hf/{dataset}/{shard_name(shard, n, 'parquet', prefix=HF_SPLITS[split])}"
    return f"{family}/{dataset}/{split}/{shard_name(shard, n, 'jsonl')}"  # plain: what the trainers load


def _tag(units: DataFrame) -> DataFrame:
    rejected = F.col("reject_reason").isNotNull()
    dropped = F.col("drop_reason").isNotNull()
    return (units
            .withColumn("_group", F.when(rejected, "rejected").when(dropped, "dropped").otherwise(F.col("kind")))
            .withColumn("_split", F.when(rejected | dropped, F.lit("")).otherwise(F.coalesce("split", F.lit("train"))))
            .withColumn("_hash", F.when(F.col("id").isNotNull(), F.xxhash64("id"))
                        .otherwise(F.xxhash64("source", "source_file", "source_offset", "source_index")))
            .withColumn("_est", F.octet_length(F.to_json(F.struct(*units.columns)))))


# --------------------------------------------------------------------------- executor side
class _Stats:
    """Per-file counts a task sends back: rows and tokens per source, reasons, export skips."""

    def __init__(self) -> None:
        self.sources: dict[str, dict[str, int]] = {}
        self.reasons: dict[str, dict[str, int]] = {}
        self.skipped: dict[str, dict[str, int]] = {}

    def record(self, source: str, n_tokens: int | None) -> None:
        s = self.sources.setdefault(source, {"rows": 0, "tokens": 0, "no_tokens": 0})
        s["rows"] += 1
        if n_tokens is None:
            s["no_tokens"] += 1
        else:
            s["tokens"] += n_tokens

    def reason(self, source: str, reason: str) -> None:
        r = self.reasons.setdefault(source, {})
        r[reason] = r.get(reason, 0) + 1

    def skip(self, export: str, reason: str) -> None:
        r = self.skipped.setdefault(export, {})
        r[reason] = r.get(reason, 0) + 1

    def to_json(self) -> str:
        return json.dumps({"sources": self.sources, "reasons": self.reasons, "skipped": self.skipped},
                          sort_keys=True)


class _ShardSet:
    """The files of one (group, split, shard): the unified (or reject/drop) shard and its export files."""

    def __init__(self, staging: str, fmt: str, compression: str, exports: list[str],
                 storage_options: dict[str, Any], group: str, split: str, shard: int, n: int) -> None:
        self.staging, self.fmt, self.compression = staging, fmt, compression
        self.exports, self.so = exports, storage_options
        self.group, self.split, self.shard, self.n = group, split, shard, n
        self.stats = _Stats()  # of the unified / reject / drop file
        self.files: dict[str, tuple[ShardWriter, str, str]] = {}

    def _open(self, family: str, dataset: str, fmt: str, schema: pa.Schema | None = None) -> ShardWriter:
        rel = rel_path(family, dataset, self.split, self.shard, self.n, self.fmt, self.compression)
        if rel not in self.files:
            compression = self.compression if family in ("unified", "rejected", "dropped") else "none"
            self.files[rel] = (ShardWriter(join(self.staging, rel), fmt, compression, schema, self.so),
                               family, dataset)
        return self.files[rel][0]

    def write(self, batch: pa.RecordBatch) -> None:
        rows = batch.to_pylist()
        if self.group in ("rejected", "dropped"):
            cols = REJECT_COLUMNS if self.group == "rejected" else DROP_COLUMNS
            out = [drop_nulls({k: r[c] for k, c in cols.items()}) for r in rows]
            for r in out:
                self.stats.reason(r["source"], r["reason"])
            self._open(self.group, self.group, "jsonl").write_rows(out)
            return
        kind = self.group
        for r in rows:
            self.stats.record(r["source"], r["n_tokens"])
        if self.fmt == "parquet" or "hf" in self.exports:
            table = pa.Table.from_batches([batch]).select(columns_for(kind)).cast(kind_schema(kind))
            if self.fmt == "parquet":
                self._open("unified", kind, "parquet", kind_schema(kind)).write_table(table)
            if "hf" in self.exports:
                self._open("hf", kind, "parquet", kind_schema(kind)).write_table(table)
        if self.fmt == "jsonl":
            self._open("unified", kind, "jsonl").write_rows([unified_row(r) for r in rows])
        for export, convert in (("llamafactory", llamafactory_row), ("openai", openai_row)):
            if export not in self.exports:
                continue
            routed: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                try:
                    dataset, row = convert(r)
                except ExportSkip as skip:
                    self.stats.skip(export, skip.reason)
                    continue
                if export == "llamafactory" and check_llamafactory(row, LLAMAFACTORY_ENTRIES[dataset]):
                    self.stats.skip(export, "failed_llamafactory_check")  # a converter bug: never written
                    continue
                routed[dataset].append(row)
            for dataset in sorted(routed):
                self._open(export, dataset, "jsonl").write_rows(routed[dataset])

    def close(self) -> list[dict[str, Any]]:
        out = []
        for rel in sorted(self.files):
            writer, family, dataset = self.files[rel]
            primary = family in ("unified", "rejected", "dropped")
            out.append({"path": rel, "family": family, "dataset": dataset, "split": self.split,
                        "shard": self.shard, "nshards": self.n, **writer.close(),
                        "stats": self.stats.to_json() if primary else None})
        return out


def _partition_writer(staging: str, fmt: str, compression: str, exports: list[str],
                      storage_options: dict[str, Any]) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: rows sorted by (group, split, shard, id) -> one result per file."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        current: _ShardSet | None = None
        for batch in batches:
            keys = batch.select(["_group", "_split", "_shard", "_nshards"]).to_pylist()
            start = 0
            for i in range(1, len(keys) + 1):
                if i < len(keys) and keys[i] == keys[start]:
                    continue
                k = keys[start]
                if current is None or (current.group, current.split, current.shard) != (k["_group"], k["_split"], k["_shard"]):
                    if current is not None:
                        yield pa.RecordBatch.from_pylist(current.close(), schema=RESULT_SCHEMA)
                    current = _ShardSet(staging, fmt, compression, exports, storage_options,
                                        k["_group"], k["_split"], k["_shard"], k["_nshards"])
                current.write(batch.slice(start, i - start))
                start = i
        if current is not None:
            yield pa.RecordBatch.from_pylist(current.close(), schema=RESULT_SCHEMA)

    return run


# --------------------------------------------------------------------------- driver side
def _plan(tagged: DataFrame) -> list[dict[str, Any]]:
    """One small aggregate for everything the driver needs before writing (and for the report)."""
    return [r.asDict() for r in tagged.groupBy("_group", "_split", "source", "source_format", "shape", "kind")
            .agg(F.count("*").alias("n"), F.sum("_est").alias("est"),
                 F.sum(((F.col("source_index") == 0) & F.col("epoch").isNull()).cast("long")).alias("raw_records"),
                 F.sum(F.col("epoch").isNotNull().cast("long")).alias("repeated")).collect()]


def _shard_counts(plan: list[dict[str, Any]], cfg: Config) -> dict[tuple[str, str], int]:
    rows: dict[tuple[str, str], int] = defaultdict(int)
    est: dict[tuple[str, str], int] = defaultdict(int)
    for r in plan:
        rows[(r["_group"], r["_split"])] += r["n"]
        est[(r["_group"], r["_split"])] += r["est"] or 0
    splits = ["train"] + [s for s in ("val", "test") if getattr(cfg.split, s) > 0]
    for kind in {g for g, _ in rows if g in KINDS}:  # every configured split of a present kind exists
        for split in splits:
            rows.setdefault((kind, split), 0)
    for group in ("rejected", "dropped"):
        rows.setdefault((group, ""), 0)
    return {k: shard_count(n, est.get(k, 0), cfg.output.shard_rows, cfg.output.shard_bytes)
            for k, n in sorted(rows.items())}


def _write_shards(tagged: DataFrame, nshards: dict[tuple[str, str], int], staging: str, cfg: Config,
                  exports: list[str]) -> list[dict[str, Any]]:
    pairs = [x for (g, s), n in nshards.items() for x in (F.lit(f"{g}/{s}"), F.lit(n))]
    n_expr = F.create_map(*pairs)[F.concat_ws("/", "_group", "_split")]
    tasks = (tagged.withColumn("_nshards", n_expr.cast("int"))
             .withColumn("_shard", F.pmod(F.col("_hash"), F.col("_nshards")).cast("int")))
    partitions = max(1, min(sum(nshards.values()), 10_000))
    writer = _partition_writer(staging, cfg.output.format, cfg.output.compression, exports,
                               dict(cfg.output.storage_options))
    written = (tasks.repartition(partitions, "_group", "_split", "_shard")
               .sortWithinPartitions("_group", "_split", "_shard", *ORDER)
               .mapInArrow(writer, RESULT_DDL)
               .collect())
    return [r.asDict() for r in written]


def _fill_missing(results: list[dict[str, Any]], nshards: dict[tuple[str, str], int], staging: str,
                  cfg: Config, exports: list[str]) -> list[dict[str, Any]]:
    """Empty files for shard indices no row hashed to, so every set is complete ``0..N-1``.

    Unified, reject and drop shards and the ``hf`` export exist for every configured split of a
    present kind; the llamafactory/openai datasets only where they got at least one row."""
    fmt, compression, so = cfg.output.format, cfg.output.compression, dict(cfg.output.storage_options)
    have = {r["path"] for r in results}
    wanted: set[tuple[str, str, str, int]] = set()
    for (group, split), n in nshards.items():
        family = group if group in ("rejected", "dropped") else "unified"
        wanted.add((family, group, split, n))
        if group in KINDS and "hf" in exports:
            wanted.add(("hf", group, split, n))
    wanted |= {(r["family"], r["dataset"], r["split"], r["nshards"]) for r in results
               if r["family"] in ("llamafactory", "openai")}
    out = list(results)
    for family, dataset, split, n in sorted(wanted):
        for shard in range(n):
            rel = rel_path(family, dataset, split, shard, n, fmt, compression)
            if rel in have:
                continue
            file_fmt = "parquet" if family == "hf" or (family == "unified" and fmt == "parquet") else "jsonl"
            file_compression = compression if family in ("unified", "rejected", "dropped") else "none"
            schema = kind_schema(dataset) if file_fmt == "parquet" else None
            done = ShardWriter(join(staging, rel), file_fmt, file_compression, schema, so).close()
            primary = family in ("unified", "rejected", "dropped")
            out.append({"path": rel, "family": family, "dataset": dataset, "split": split, "shard": shard,
                        "nshards": n, **done, "stats": _Stats().to_json() if primary else None})
    return sorted(out, key=lambda r: r["path"])


def _written_counts(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accounting rows ``{source, outcome, kind, reason, n}`` from what the writers wrote."""
    rows = []
    for r in results:
        if r["family"] not in ("unified", "rejected", "dropped"):
            continue
        stats = json.loads(r["stats"])
        if r["family"] == "unified":
            rows += [{"source": s, "outcome": "output", "kind": r["dataset"], "reason": None, "n": v["rows"]}
                     for s, v in stats["sources"].items()]
        else:
            rows += [{"source": s, "outcome": r["family"], "kind": None, "reason": reason, "n": n}
                     for s, reasons in stats["reasons"].items() for reason, n in reasons.items()]
    return rows


def _split_report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows and tokens per split, per source and kind (tokens: sum of ``n_tokens`` where present)."""
    splits: dict[str, Any] = {}
    for r in results:
        if r["family"] != "unified":
            continue
        entry = splits.setdefault(r["split"], {"rows": 0, "tokens": 0, "rows_without_tokens": 0,
                                               "kinds": {}, "sources": {}})
        for source, v in json.loads(r["stats"])["sources"].items():
            entry["rows"] += v["rows"]
            entry["tokens"] += v["tokens"]
            entry["rows_without_tokens"] += v["no_tokens"]
            entry["kinds"][r["dataset"]] = entry["kinds"].get(r["dataset"], 0) + v["rows"]
            s = entry["sources"].setdefault(source, {"rows": 0, "tokens": 0})
            s["rows"] += v["rows"]
            s["tokens"] += v["tokens"]
    ordered = {s: splits[s] for s in SPLIT_ORDER if s in splits}
    for entry in ordered.values():
        entry["kinds"] = dict(sorted(entry["kinds"].items()))
        entry["sources"] = dict(sorted(entry["sources"].items()))
    return ordered


def _outputs(results: list[dict[str, Any]], cfg: Config, exports: list[str]) -> dict[str, Any]:
    out, fmt, compression = cfg.output.path, cfg.output.format, cfg.output.compression
    outputs: dict[str, Any] = {}
    skipped: dict[str, dict[str, int]] = defaultdict(dict)
    for r in results:
        family, dataset, split = r["family"], r["dataset"], r["split"]
        if family == "unified":
            o = outputs.setdefault(dataset, {"path": join(out, dataset), "format": fmt,
                                             "compression": "zstd" if fmt == "parquet" else compression,
                                             "rows": 0, "splits": {}})
            o["rows"] += r["rows"]
            sp = o["splits"].setdefault(split, {"rows": 0, "shards": r["nshards"]})
            sp["rows"] += r["rows"]
            for export, reasons in json.loads(r["stats"])["skipped"].items():
                for reason, n in reasons.items():
                    skipped[export][reason] = skipped[export].get(reason, 0) + n
        elif family in ("rejected", "dropped"):
            o = outputs.setdefault(family, {"path": join(out, family), "format": "jsonl",
                                            "compression": compression, "rows": 0, "shards": r["nshards"]})
            o["rows"] += r["rows"]
    for kind in [k for k in KINDS if k in outputs]:
        outputs[kind]["splits"] = {s: outputs[kind]["splits"][s] for s in SPLIT_ORDER if s in outputs[kind]["splits"]}
    outputs = {k: outputs[k] for k in [*KINDS, "rejected", "dropped"] if k in outputs}
    for export in exports:
        datasets: dict[str, dict[str, int]] = {}
        for r in results:
            if r["family"] == export:
                d = datasets.setdefault(r["dataset"], {})
                d[r["split"]] = d.get(r["split"], 0) + r["rows"]
        entry: dict[str, Any] = {"path": join(out, export), "rows": sum(sum(d.values()) for d in datasets.values()),
                                 "datasets": {k: datasets[k] for k in sorted(datasets)}}
        if export in ("llamafactory", "openai"):
            entry["skipped"] = dict(sorted(skipped.get(export, {}).items()))
        if export == "llamafactory":
            entry["dataset_info"] = "llamafactory/dataset_info.json"
        if export == "hf":
            entry["card"] = "hf/README.md"
            entry["datasets"] = {k: {HF_SPLITS[s]: n for s, n in sorted(v.items(), key=lambda kv: SPLIT_ORDER.index(kv[0]))}
                                 for k, v in entry["datasets"].items()}
        outputs[export] = entry
    return outputs


def _extra_files(outputs: dict[str, Any], splits: dict[str, Any], results: list[dict[str, Any]],
                 staging: str, cfg: Config, version: str) -> list[dict[str, Any]]:
    """dataset_info.json (llamafactory) and the dataset card (hf), written beside their shards."""
    files = []
    so = dict(cfg.output.storage_options)
    if "llamafactory" in outputs:
        info = llamafactory_dataset_info(outputs["llamafactory"]["datasets"])
        data = (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()
        files.append({"path": "llamafactory/dataset_info.json",
                      **write_bytes(join(staging, "llamafactory/dataset_info.json"), data, so)})
    if "hf" in outputs:
        tokens: dict[tuple[str, str], int] = defaultdict(int)
        for r in results:
            if r["family"] == "unified":
                tokens[(r["dataset"], r["split"])] += sum(v["tokens"] for v in json.loads(r["stats"])["sources"].values())
        counts = {kind: {HF_SPLITS[s]: {"rows": n, "tokens": tokens[(kind, s)]} for s, n in per.items()}
                  for kind, per in ((k, {s: v["rows"] for s, v in outputs[k]["splits"].items()})
                                    for k in KINDS if k in outputs)}
        card = dataset_card(counts, version, cfg.digest()).encode()
        files.append({"path": "hf/README.md", **write_bytes(join(staging, "hf/README.md"), card, so)})
    return files


def _source_report(plan: list[dict[str, Any]], counts: dict[str, Any],
                   source_files: dict[str, list[tuple[str, int]]], splits: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, files in source_files.items():
        report[name] = {"files": len(files), "bytes": sum(size for _, size in files),
                        "formats": {}, "shapes": {}, "kinds": {}, "counts": counts.get(name),
                        "splits": {s: v["sources"][name] for s, v in splits.items() if name in v["sources"]}}
    for r in sorted(plan, key=lambda r: (r["source"], r["source_format"] or "", r["shape"] or "", r["kind"] or "")):
        entry = report[r["source"]]
        fmt = r["source_format"] or "unreadable"
        entry["formats"][fmt] = entry["formats"].get(fmt, 0) + r["n"]
        if r["shape"]:
            entry["shapes"][r["shape"]] = entry["shapes"].get(r["shape"], 0) + r["n"]
        if r["kind"]:
            entry["kinds"][r["kind"]] = entry["kinds"].get(r["kind"], 0) + r["n"]
    for entry in report.values():
        for key in ("formats", "shapes", "kinds"):
            entry[key] = dict(sorted(entry[key].items()))
    return report


def _public_config(cfg: Config) -> dict[str, Any]:
    """The config for the manifest: storage options show their keys only (no secrets, no endpoints)."""
    data = copy.deepcopy(cfg.public_dict())
    for holder in [*data["sources"], data["output"]]:
        holder["storage_options"] = {k: "***" for k in sorted(holder["storage_options"])}
    return data




def write_all(spark: SparkSession, units: DataFrame, cfg: Config, timings: dict[str, float],
              source_files: dict[str, list[tuple[str, int]]], reports: dict[str, Any] | None = None,
              progress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write every shard to staging, count, check the balance, publish, manifest, ``_SUCCESS``."""
    started = time.monotonic()
    out, so = cfg.output.path, dict(cfg.output.storage_options)
    exports = [e for e in EXPORTS if e in cfg.output.export]
    version = corpusmill_version()
    staging = commit.new_staging(out, so)
    try:
        tagged = _tag(units)
        plan = _plan(tagged)
        nshards = _shard_counts(plan, cfg)
        results = _fill_missing(_write_shards(tagged, nshards, staging, cfg, exports), nshards, staging, cfg, exports)
        unit_rows: dict[str, dict[str, Any]] = {}
        for r in plan:
            u = unit_rows.setdefault(r["source"], {"source": r["source"], "raw_records": 0, "units": 0,
                                                    "repeated": 0})
            u["raw_records"] += r["raw_records"]
            u["repeated"] += r["repeated"]
            u["units"] += r["n"]
        counts = build_counts(unit_rows.values(), _written_counts(results))
        check_balance(counts)  # before anything is published
        splits = _split_report(results)
        all_counts = counts.pop("__all__")
        all_counts["output_by_split"] = {s: v["rows"] for s, v in splits.items()}
        outputs = _outputs(results, cfg, exports)
        files = _extra_files(outputs, splits, results, staging, cfg, version)
        shards = [{k: r[k] for k in ("path", "family", "dataset", "split", "shard", "rows", "bytes", "sha256")}
                  for r in results]
        entries = sorted({r["path"].split("/", 1)[0] for r in results} | {f["path"].split("/", 1)[0] for f in files})
        commit.unpublish(out, OWNED, so)
        commit.publish(staging, out, entries, sorted([r["path"] for r in results] + [f["path"] for f in files]), so)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one to see
            commit.discard(staging, so)
        raise
    timings["write"] = round(time.monotonic() - started, 3)
    manifest = {
        "corpusmill_version": version,
        "config_sha256": cfg.digest(),
        "config": _public_config(cfg),
        "counts": all_counts,
        "sources": _source_report(plan, counts, source_files, splits),
        "stages": reports or {},
        "splits": splits,
        "outputs": outputs,
        "shards": shards,
        "files": files,
        "balanced": True,
        "timings_s": timings,
        "progress": progress or [],
        "stats": collect_stats(units),
    }
    write_text(join(out, commit.MANIFEST), json.dumps(manifest, indent=2, ensure_ascii=False, default=str), so)
    write_report(manifest, out, so)  # report.html: after the manifest it draws from, before _SUCCESS
    write_text(join(out, commit.SUCCESS), "", so)
    return manifest

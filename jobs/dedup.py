"""Stage 4, dedup: exact, then MinHash LSH near-duplicate clustering, one record kept per cluster.

Only good records take part (``reject_reason`` and ``drop_reason`` null); the rest pass through.

1. **Key and signature**, one Arrow pass (``mapInArrow``): the dedup key per kind
   (:mod:`udfs.dedup_key`), its exact hash (blake2b-128 of the key whitespace-collapsed and, with
   ``lowercase``, casefolded), and the LSH band hashes of its MinHash, which is bit-identical to
   datasketch's for the same num_perm/seed/scheme/hash (:mod:`udfs.minhash`, :mod:`udfs.lsh`).
2. **Exact**: records with the same exact hash form a group; all but its best record (keep policy
   below) leave the near stage.
3. **Candidates**: records sharing a band bucket. A bucket of k records gives k-1 edges, each member
   to the bucket's smallest id, so a bucket of 20,000 boilerplate copies stays linear.
4. **Verification** (``verify``): the true Jaccard of the two keys' shingle sets, recomputed for both
   ends of every candidate edge; edges below ``threshold`` never enter the graph.
5. **Clusters**: connected components of the verified edges by large-star / small-star rounds in
   Spark, lineage cut every step (``checkpoint`` when the SparkContext has a checkpoint directory,
   e.g. ``spark.checkpoint.dir`` on a cluster; ``localCheckpoint`` otherwise: nothing to clean up
   and no path Spark must be able to write, at the price that losing an executor fails the stage,
   since truncated lineage cannot be recomputed). Nothing about edges or ids is collected to the
   driver, only counts. ``candidate_pairs`` in the report counts these star edges, not all pairs.
6. **Keep policy**, per cluster (exact groups merged into their near clusters): the highest source
   priority (position in ``source_priority``, unlisted sources after the listed ones), then the
   longest key, then the smallest id. Every record of a cluster gets ``cluster_id`` = the kept id
   (a record alone: its own id); the others get ``duplicate_of`` = the kept id and ``drop_reason``
   ``exact_duplicate`` when their key equals the kept record's (normalized), else
   ``near_duplicate``.

Scope: keys are compared within one kind (a CPT document is never a duplicate of a conversation),
across sources (``scope: global``) or within each source (``per_source``). Keys without a single
shingle (punctuation only) take part in exact dedup only.

An audit table of the clusters (cluster id = kept id, size, members) is written as Parquet to
``<output>/_work/dedup_clusters``; the report (params, counts, cluster sizes exact and binned,
drops per source, timings) lands in the manifest under ``stages.dedup``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.common.config import Config, ConfigError, DedupConfig
from jobs.common.io import join, spark_path
from udfs.dedup_key import dedup_key, exact_key_hash, shingle_batch
from udfs.lsh import band_hashes, bands_rows_for_recall, candidate_probability
from udfs.minhash import hash_shingles, signatures_from_hashes

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
_KEY_COLUMNS = ["id", "kind", "text", "system", "messages", "prompt", "completion"]
_CHUNK_DOCS = 1024  # documents per signature batch: big enough for numpy, small enough for cache
# Up to this many rows, the small side of a join is broadcast so the corpus is never shuffled.
_BROADCAST_ROWS = 2_000_000
_BROADCAST_KEY_BYTES = 64 << 20  # dedup keys of candidate ends, for verification

FEATURES = T.StructType([
    T.StructField("id", T.StringType()),
    T.StructField("source", T.StringType()),
    T.StructField("scope", T.StringType()),
    T.StructField("priority", T.IntegerType()),
    T.StructField("key_len", T.IntegerType()),
    T.StructField("exact_hash", T.StringType()),
    T.StructField("n_shingles", T.IntegerType()),
    T.StructField("bands", T.ArrayType(T.LongType())),
])
_FEATURES_ARROW = pa.schema([("id", pa.string()), ("source", pa.string()), ("scope", pa.string()),
                             ("priority", pa.int32()), ("key_len", pa.int32()), ("exact_hash", pa.string()),
                             ("n_shingles", pa.int32()), ("bands", pa.list_(pa.int64()))])
KEYS = T.StructType([T.StructField("id", T.StringType()), T.StructField("key", T.StringType())])
VERIFIED = T.StructType([T.StructField("a", T.StringType()), T.StructField("b", T.StringType()),
                         T.StructField("jaccard", T.DoubleType())])


def banding(d: DedupConfig) -> tuple[int, int]:
    """Explicit ``bands``/``rows``, or the fewest false positives that catch a pair at exactly
    ``threshold`` with probability ``min_recall`` (candidates are then verified)."""
    if d.bands is not None and d.rows is not None:
        return d.bands, d.rows
    return bands_rows_for_recall(min(d.threshold, 0.99), d.num_perm, d.min_recall)


# --------------------------------------------------------------------------- Arrow functions
def _keys_of(batch: pa.RecordBatch) -> list[str]:
    cols = {name: batch.column(name).to_pylist() for name in _KEY_COLUMNS[1:]}
    return [dedup_key(*values) for values in zip(*(cols[c] for c in _KEY_COLUMNS[1:]), strict=True)]


def _features_fn(d: DedupConfig, bands: int, rows: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    width = 64 if d.scheme == "affine64" else 32

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for big in batches:
            for start in range(0, big.num_rows, _CHUNK_DOCS):
                batch = big.slice(start, _CHUNK_DOCS)
                keys = _keys_of(batch)
                n = len(keys)
                band_values: pa.Array = pa.nulls(n, pa.list_(pa.int64()))
                n_shingles = np.zeros(n, dtype=np.int32)
                if d.near:
                    flat, counts = shingle_batch(keys, d.ngram, d.unit, d.lowercase)
                    sig = signatures_from_hashes(hash_shingles(flat, d.hash, width), counts,  # type: ignore[arg-type]
                                                 d.num_perm, d.seed, d.scheme)  # type: ignore[arg-type]
                    values = band_hashes(sig, bands, rows).reshape(-1)
                    offsets = pa.array(np.arange(0, n * bands + 1, bands, dtype=np.int32))
                    band_values = pa.ListArray.from_arrays(offsets, pa.array(values), mask=pa.array(counts == 0))
                    n_shingles = counts.astype(np.int32)
                yield pa.RecordBatch.from_arrays([
                    batch.column("id"), batch.column("source"), batch.column("scope"), batch.column("priority"),
                    pa.array([len(k) for k in keys], pa.int32()),
                    pa.array([exact_key_hash(k, d.lowercase) for k in keys], pa.string()),
                    pa.array(n_shingles), band_values,
                ], schema=_FEATURES_ARROW)

    return run


def _key_text_fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield pa.RecordBatch.from_arrays([batch.column("id"), pa.array(_keys_of(batch), pa.string())],
                                         names=["id", "key"])


def _verify_fn(d: DedupConfig) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            a, b = batch.column("a").to_pylist(), batch.column("b").to_pylist()
            key_a, key_b = batch.column("key_a").to_pylist(), batch.column("key_b").to_pylist()
            # Edges arrive grouped by `a` (a bucket's smallest id): shingle each distinct key once.
            texts: dict[str, str] = {}
            for ids, keys in ((a, key_a), (b, key_b)):
                texts.update(zip(ids, keys, strict=True))
            order = list(texts)
            flat, counts = shingle_batch([texts[i] for i in order], d.ngram, d.unit, d.lowercase)
            ends = np.cumsum(counts).tolist()
            sets = {i: set(flat[e - c:e]) for i, e, c in zip(order, ends, counts.tolist(), strict=True)}
            scores = []
            for x, y in zip(a, b, strict=True):
                sx, sy = sets[x], sets[y]
                union = len(sx | sy)
                scores.append(len(sx & sy) / union if union else 1.0)
            yield pa.RecordBatch.from_arrays([pa.array(a, pa.string()), pa.array(b, pa.string()),
                                              pa.array(scores, pa.float64())], names=["a", "b", "jaccard"])

    return run


# --------------------------------------------------------------------------- Spark helpers
def _materialize(df: DataFrame) -> tuple[DataFrame, int]:
    """Compute ``df`` once, cut its lineage, and count it (see the module docstring for which
    checkpoint). A local checkpoint is filled by the count itself: one job, not two."""
    if df.sparkSession.sparkContext.getCheckpointDir():
        cached = df.persist(StorageLevel.MEMORY_AND_DISK)
        out = cached.checkpoint(eager=True)
        cached.unpersist()
    else:
        out = df.localCheckpoint(eager=False)
    return out, out.count()


def _maybe_broadcast(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= _BROADCAST_ROWS else df


def _policy(prefix: str = "") -> Column:
    """Keep-policy order as a struct; the smallest wins: priority, then longest key, then id."""
    return F.struct(F.col(prefix + "priority").alias("priority"), (-F.col(prefix + "key_len")).alias("neg_len"),
                    F.col(prefix + "id").alias("id"))


def _priority(source_priority: list[str]) -> Column:
    rank = F.lit(len(source_priority))
    for i, name in reversed(list(enumerate(source_priority))):
        rank = F.when(F.col("source") == name, F.lit(i)).otherwise(rank)
    return rank.cast("int")


def connected_components(edges: DataFrame, max_iterations: int) -> tuple[DataFrame, int, bool]:
    """``(id, root)`` for every node of the undirected ``edges (a, b)`` (distinct, ``a < b``):
    root = the smallest id of its component. Large-star / small-star (Kiveris et al., 2014):
    O(log^2 n) rounds, each two shuffles of the edge list and one count, no state on the driver.

    Returns ``(labels, rounds, converged)``. When ``max_iterations`` runs out, the labels still never
    join two components, but a component may stay split in several (reported, not fatal).
    """
    e = edges
    converged = False
    rounds = 0
    while rounds < max_iterations:
        rounds += 1
        # Large star: every node links its larger neighbours to the smallest of its neighbourhood.
        sym = e.unionByName(e.select(F.col("b").alias("a"), F.col("a").alias("b")))
        m = F.least(F.col("a"), F.min("b").over(Window.partitionBy("a")))
        large = (sym.withColumn("m", m).where(F.col("b") > F.col("a"))
                 .select(F.col("m").alias("a"), F.col("b").alias("b")).distinct())
        # Small star: every node links itself and its smaller neighbours to the smallest of them.
        s = large.withColumn("m", F.min("a").over(Window.partitionBy("b")))
        small = (s.select(F.col("m").alias("a"), F.col("a").alias("b"))
                 .unionByName(s.select(F.col("m").alias("a"), F.col("b").alias("b")))
                 .where(F.col("a") != F.col("b")).distinct())
        small, _ = _materialize(small)
        # A round that changes nothing is a fixed point: every component is a star on its minimum.
        diff = (small.withColumn("new", F.lit(True))
                .join(e.withColumn("old", F.lit(True)), ["a", "b"], "full_outer")
                .where(F.col("new").isNull() | F.col("old").isNull()).limit(1).count())
        e = small
        if diff == 0:
            converged = True
            break
    labels = (e.select(F.col("b").alias("id"), F.col("a").alias("root"))
              .unionByName(e.select(F.col("a").alias("id"), F.col("a").alias("root")))
              .groupBy("id").agg(F.min("root").alias("root")))
    return labels, rounds, converged


def _size_bin(size: int) -> str:
    if size <= 3:
        return str(size)
    low = 1 << (size.bit_length() - 1)
    return f"{low}-{2 * low - 1}"


def _write_audit(decisions: DataFrame, path: str) -> dict[str, Any]:
    """One row per cluster: (scope, cluster_id = kept id, size, members sorted by id). Best effort:
    an output Spark cannot write to (``s3://`` without hadoop-aws) loses the audit, not the run."""
    clusters = (decisions.groupBy("scope", "cluster_id")
                .agg(F.count(F.lit(1)).alias("size"),
                     F.sort_array(F.collect_list(F.struct("id", "source", "dedup_reason"))).alias("members")))
    try:
        clusters.orderBy("scope", "cluster_id").write.mode("overwrite").parquet(spark_path(path))
    except Exception as exc:  # noqa: BLE001 - reported in the manifest instead
        return {"path": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    return {"path": path, "format": "parquet"}


# --------------------------------------------------------------------------- the stage
def apply(spark: SparkSession, units: DataFrame, cfg: Config) -> tuple[DataFrame, dict[str, Any]]:
    d = cfg.dedup
    good = F.col("reject_reason").isNull() & F.col("drop_reason").isNull()
    if not d.enabled or not (d.exact or d.near):
        out = units.withColumn("cluster_id", F.when(good, F.coalesce("cluster_id", "id")).otherwise(F.col("cluster_id")))
        return out, {"enabled": False}
    if d.near and d.hash == "xxh64" and d.scheme != "affine64":
        raise ConfigError("dedup.hash: 'xxh64' gives 64-bit hashes; use it with dedup.scheme: affine64, "
                          "or use dedup.hash: xxh32 (or sha1) with affine32/legacy")
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(name: str, t0: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - t0, 3)
        return now

    bands, rows = banding(d)
    scope = F.col("kind") if d.scope == "global" else F.concat_ws("\x1f", "kind", "source")
    records = units.where(good)
    parallelism = spark.sparkContext.defaultParallelism
    if records.rdd.getNumPartitions() < parallelism:  # e.g. one big input file: keep every core busy
        records = records.repartition(parallelism)
    t0 = time.monotonic()
    features = (records.select(*_KEY_COLUMNS, "source", scope.alias("scope"),
                               _priority(d.source_priority).alias("priority"))
                .mapInArrow(_features_fn(d, bands, rows), FEATURES))

    # Exact: the best record of each exact group represents it in the near stage.
    if d.exact:
        group = Window.partitionBy("scope", "exact_hash")
        features = (features.withColumn("exact_rep", F.min(_policy()).over(group)["id"])
                    .withColumn("exact_size", F.count(F.lit(1)).over(group)))
    else:
        features = features.withColumn("exact_rep", F.col("id")).withColumn("exact_size", F.lit(1))
    features, n_records = _materialize(features)
    t0 = mark("signatures_exact", t0)

    n_candidates = n_verified = rounds = 0
    converged = True
    labels = None
    if d.near:
        reps = features.where((F.col("id") == F.col("exact_rep")) & (F.col("n_shingles") > 0))
        # One long per (scope, band): a 64-bit collision between two buckets can only add candidates.
        buckets = (reps.select("id", "scope", F.explode("bands").alias("band"))
                   .select("id", F.xxhash64("scope", "band").alias("bucket")))
        in_bucket = Window.partitionBy("bucket")
        candidates, n_candidates = _materialize(
            buckets.withColumn("root", F.min("id").over(in_bucket)).where(F.col("id") != F.col("root"))
            .select(F.col("root").alias("a"), F.col("id").alias("b")).distinct())
        t0 = mark("candidates", t0)
        edges, n_verified = candidates, n_candidates
        if d.verify and n_candidates:
            ends = candidates.select(F.col("a").alias("id")).unionByName(candidates.select(F.col("b").alias("id")))
            keys = (units.join(_maybe_broadcast(ends, 2 * n_candidates), "id", "left_semi").select(*_KEY_COLUMNS)
                    .mapInArrow(_key_text_fn, KEYS))
            keys = keys.localCheckpoint(eager=False)
            key_bytes = keys.agg(F.sum(F.length("key"))).first()[0] or 0
            # Small enough (the usual case: duplicates are a few % of a corpus): no shuffle of texts.
            key_side = F.broadcast(keys) if key_bytes <= _BROADCAST_KEY_BYTES else keys
            pairs = (candidates.join(key_side.select(F.col("id").alias("a"), F.col("key").alias("key_a")), "a")
                     .join(key_side.select(F.col("id").alias("b"), F.col("key").alias("key_b")), "b")
                     .select("a", "b", "key_a", "key_b").sortWithinPartitions("a"))
            scored, _ = _materialize(pairs.mapInArrow(_verify_fn(d), VERIFIED))
            edges = scored.where(F.col("jaccard") >= F.lit(d.threshold)).select("a", "b")
            n_verified = edges.count()
            t0 = mark("verify", t0)
        if n_verified:
            labels, rounds, converged = connected_components(edges, d.max_iterations)
            t0 = mark("components", t0)

    # Members of non-trivial clusters: exact groups of 2+, and exact representatives with an edge.
    members = features.select("id", "source", "scope", "priority", "key_len", "exact_rep", "exact_size")
    if labels is not None:
        members = members.join(labels.withColumnRenamed("id", "exact_rep"), "exact_rep", "left")
    else:
        members = members.withColumn("root", F.lit(None).cast("string"))
    members = (members.where((F.col("exact_size") > 1) | F.col("root").isNotNull())
               .withColumn("component", F.coalesce("root", "exact_rep")))
    cluster = Window.partitionBy("scope", "component")
    decisions, n_decisions = _materialize(
        members.withColumn("kept", F.min(_policy()).over(cluster)["id"])
        .withColumn("size", F.count(F.lit(1)).over(cluster))
        .select("id", "source", "scope", "size", F.col("kept").alias("cluster_id"),
                F.when(F.col("id") != F.col("kept"), F.col("kept")).alias("duplicate_of"),
                F.when(F.col("id") == F.col("kept"), F.lit(None).cast("string"))
                .when(F.col("exact_rep") == F.col("kept"), F.lit(EXACT))
                .otherwise(F.lit(NEAR)).alias("dedup_reason")))

    # Report: only aggregates reach the driver, in one job.
    drops: dict[str, dict[str, int]] = {}
    totals = {EXACT: 0, NEAR: 0}
    by_size: dict[int, int] = defaultdict(int)
    for r in decisions.groupBy("source", "dedup_reason", "size").count().collect():
        if r["dedup_reason"] is None:  # a kept record: one cluster of this size
            by_size[r["size"]] += r["count"]
        else:
            per_source = drops.setdefault(r["source"], {})
            per_source[r["dedup_reason"]] = per_source.get(r["dedup_reason"], 0) + r["count"]
            totals[r["dedup_reason"]] += r["count"]
    sizes = sorted(by_size.items())
    histogram: dict[str, int] = {}
    for size, n in sizes:
        histogram[_size_bin(size)] = histogram.get(_size_bin(size), 0) + n
    audit: dict[str, Any] = {"path": None}
    if n_decisions:
        audit = _write_audit(decisions, join(cfg.output.path, "_work", "dedup_clusters"))
    mark("decisions", t0)

    dec = decisions.select("id", F.col("cluster_id").alias("_cluster"), F.col("duplicate_of").alias("_dup"),
                           F.col("dedup_reason").alias("_reason"))
    out = units.join(_maybe_broadcast(dec, n_decisions), "id", "left")
    out = out.select(*[
        F.when(good, F.coalesce("_cluster", "id")).otherwise(F.col("cluster_id")).alias("cluster_id")
        if c == "cluster_id" else
        F.coalesce(F.col("drop_reason"), F.col("_reason")).alias("drop_reason") if c == "drop_reason" else
        F.when(good, F.coalesce("_dup", "duplicate_of")).otherwise(F.col("duplicate_of")).alias("duplicate_of")
        if c == "duplicate_of" else F.col(c)
        for c in units.columns])
    report = {
        "enabled": True,
        "params": {"exact": d.exact, "near": d.near, "threshold": d.threshold, "num_perm": d.num_perm,
                   "bands": bands, "rows": rows, "min_recall": d.min_recall,
                   "candidate_probability_at_threshold": round(candidate_probability(d.threshold, bands, rows), 4),
                   "seed": d.seed, "scheme": d.scheme, "hash": d.hash, "ngram": d.ngram, "unit": d.unit,
                   "lowercase": d.lowercase, "verify": d.verify, "scope": d.scope,
                   "source_priority": list(d.source_priority)},
        "counts": {"records": n_records, "exact_dropped": totals[EXACT], "near_dropped": totals[NEAR],
                   "kept": n_records - totals[EXACT] - totals[NEAR], "clusters": sum(by_size.values()),
                   "candidate_pairs": n_candidates, "verified_pairs": n_verified,
                   "components_rounds": rounds, "components_converged": converged},
        "cluster_sizes": {str(size): n for size, n in sizes},  # exact: records per cluster -> clusters
        "cluster_size_histogram": histogram,  # the same in power-of-two bins: 2, 3, 4-7, 8-15, ...
        "dropped_by_source": {src: dict(sorted(v.items())) for src, v in sorted(drops.items())},
        "audit": audit,
        "timings_s": {**timings, "total": round(time.monotonic() - started, 3)},
    }
    return out, report

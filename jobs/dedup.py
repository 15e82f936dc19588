"""Stage 4, dedup: exact, then MinHash LSH near-duplicate clustering, one record kept per cluster.

Only good records take part (``reject_reason`` and ``drop_reason`` null); the rest pass through.

1. **Key and signature**: the dedup key per kind (:mod:`udfs.dedup_key`, built by a Spark
   expression, :func:`key_column`), then one Arrow pass (``mapInArrow``) over (id, key): the
   key's exact hash (XXH3-128 of the key whitespace-collapsed and, with ``lowercase``,
   casefolded), and the LSH band hashes of its MinHash, which is bit-identical to datasketch's
   for the same num_perm/seed/scheme/hash (:mod:`udfs.minhash`, :mod:`udfs.lsh`). Every record
   gets a unique 64-bit ``node`` id for the graph steps.
2. **Exact**: records with the same exact hash form a group; all but its best record (keep policy
   below) leave the near stage.
3. **Candidates**: records sharing a band bucket. A bucket of k records gives k-1 edges, each member
   to the bucket's smallest node, so a bucket of 20,000 boilerplate copies stays linear.
4. **Verification** (``verify``): the true Jaccard of the two keys' shingle sets, computed for
   every candidate edge from the distinct shingles of both ends (as 64-bit hashes: see
   :func:`_shingle_sets_fn`); edges below ``threshold`` never enter the graph.
5. **Clusters**: connected components of the verified edges. A graph of up to
   ``local_components_max_edges`` edges (default 2M: ~100 MB in one Python worker) goes to one
   executor task's union-find (:mod:`udfs.components`), one Spark job; a larger one to
   large-star / small-star rounds in Spark, lineage cut every step (``checkpoint`` when the
   SparkContext has a checkpoint directory, e.g. ``spark.checkpoint.dir`` on a cluster;
   ``localCheckpoint`` otherwise: nothing to clean up and no path Spark must be able to write, at
   the price that losing an executor fails the stage, since truncated lineage cannot be
   recomputed). Nothing is collected to the driver but counts and report aggregates; joins
   broadcast their small side (up to 2M rows, or 64 MB of shingle sets), which Spark ships through
   the driver, and shuffle above that. ``candidate_pairs`` in the report counts these star edges,
   not all pairs.
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
from udfs.components import label_components
from udfs.dedup_key import exact_key_hashes, shingle_spans
from udfs.lsh import band_hashes, bands_rows_for_recall, candidate_probability
from udfs.minhash import signatures_from_hashes, span_hashes
from udfs.sha1 import hash_spans

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
_CHUNK_DOCS = 1024  # documents per signature batch: big enough for numpy, small enough for cache
# Up to this many rows, the small side of a join is broadcast so the corpus is never shuffled.
_BROADCAST_ROWS = 2_000_000
_BROADCAST_SET_BYTES = 64 << 20  # shingle-hash sets of candidate ends, for verification

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
SETS = T.StructType([T.StructField("node", T.LongType()), T.StructField("set", T.ArrayType(T.LongType()))])


def banding(d: DedupConfig) -> tuple[int, int]:
    """Explicit ``bands``/``rows``, or the fewest false positives that catch a pair at exactly
    ``threshold`` with probability ``min_recall`` (candidates are then verified)."""
    if d.bands is not None and d.rows is not None:
        return d.bands, d.rows
    return bands_rows_for_recall(min(d.threshold, 0.99), d.num_perm, d.min_recall)


# --------------------------------------------------------------------------- Arrow functions
def key_column() -> Column:
    """:func:`udfs.dedup_key.dedup_key` as a Spark expression, so that only (id, key) cross into
    Python: converting the nested message columns to Arrow costs more than the MinHash itself."""
    empty = F.array().cast("array<string>")

    def nonempty(c: Column) -> Column:
        return F.coalesce(F.length(c), F.lit(0)) > 0

    def turns(messages: Column) -> Column:
        def turn(m: Column) -> Column:
            extra = [F.when(nonempty(m[f]), F.concat(F.lit("\n"), m[f])).otherwise(F.lit(""))
                     for f in ("reasoning", "tool_calls")]
            return F.concat(F.coalesce(F.nullif(m["role"], F.lit("")), F.lit("unknown")), F.lit(": "),
                            F.coalesce(m["content"], F.lit("")), *extra)
        return F.coalesce(F.transform(messages, turn), empty)

    system = F.when(nonempty(F.col("system")), F.array(F.concat(F.lit("system: "), F.col("system")))).otherwise(empty)
    return (F.when(F.col("kind") == "cpt", F.coalesce(F.col("text"), F.lit("")))
            .when(F.col("kind") == "sft", F.array_join(F.concat(system, turns(F.col("messages"))), "\n"))
            .when(F.col("kind") == "preference",
                  F.array_join(F.concat(system, turns(F.col("prompt")), turns(F.col("completion"))), "\n"))
            .otherwise(F.lit("")))


def _features_fn(d: DedupConfig, bands: int, rows: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    width = 64 if d.scheme == "affine64" else 32

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for big in batches:
            for start in range(0, big.num_rows, _CHUNK_DOCS):
                batch = big.slice(start, _CHUNK_DOCS)
                keys = batch.column("key").to_pylist()
                n = len(keys)
                band_values: pa.Array = pa.nulls(n, pa.list_(pa.int64()))
                n_shingles = np.zeros(n, dtype=np.int32)
                if d.near:
                    spans = shingle_spans(keys, d.ngram, d.unit, d.lowercase)
                    counts = spans.counts
                    hashes = span_hashes(spans.buf, spans.starts, spans.ends, d.hash, width)  # type: ignore[arg-type]
                    sig = signatures_from_hashes(hashes, counts, d.num_perm, d.seed, d.scheme)  # type: ignore[arg-type]
                    values = band_hashes(sig, bands, rows).reshape(-1)
                    offsets = pa.array(np.arange(0, n * bands + 1, bands, dtype=np.int32))
                    band_values = pa.ListArray.from_arrays(offsets, pa.array(values), mask=pa.array(counts == 0))
                    n_shingles = counts.astype(np.int32)
                yield pa.RecordBatch.from_arrays([
                    batch.column("id"), batch.column("source"), batch.column("scope"), batch.column("priority"),
                    pa.array([len(k) for k in keys], pa.int32()),
                    pa.array(exact_key_hashes(keys, d.lowercase), pa.string()),
                    pa.array(n_shingles), band_values,
                ], schema=_FEATURES_ARROW)

    return run


def _shingle_sets_fn(d: DedupConfig) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """(node, set): each key's distinct shingles as sorted 64-bit hashes (first 8 bytes of their
    SHA-1), for the Jaccard of candidate pairs. Comparing hashes instead of the shingles themselves
    can only merge two different shingles on a 64-bit collision: for two 1,000-shingle documents
    a chance of about 5e-14."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for big in batches:
            for start in range(0, big.num_rows, _CHUNK_DOCS):
                batch = big.slice(start, _CHUNK_DOCS)
                spans = shingle_spans(batch.column("key").to_pylist(), d.ngram, d.unit, d.lowercase)
                hashes = hash_spans(spans.buf, spans.starts, spans.ends, 64).view(np.int64)
                ends = np.cumsum(spans.counts)
                starts = ends - spans.counts
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                    hashes[a:b].sort()  # per key, in place: ~10x faster than one lexsort
                first = np.ones(len(hashes), dtype=bool)  # first of a run of equal hashes in a key
                first[1:] = hashes[1:] != hashes[:-1]
                first[starts[spans.counts > 0]] = True
                doc = np.repeat(np.arange(len(spans.counts)), spans.counts)
                distinct = np.bincount(doc[first], minlength=len(spans.counts))
                offsets = np.concatenate(([0], np.cumsum(distinct))).astype(np.int32)
                sets = pa.ListArray.from_arrays(pa.array(offsets), pa.array(hashes[first]))
                yield pa.RecordBatch.from_arrays([batch.column("node"), sets], names=["node", "set"])

    return run


# --------------------------------------------------------------------------- Spark helpers
def _materialize(df: DataFrame, *aggregates: Column) -> tuple[Any, ...]:
    """Compute ``df`` once, cut its lineage, and count it (see the module docstring for which
    checkpoint): ``(df, count, *aggregates)``. A local checkpoint is filled by the aggregation
    itself: one job, not two."""
    if df.sparkSession.sparkContext.getCheckpointDir():
        cached = df.persist(StorageLevel.MEMORY_AND_DISK)
        out = cached.checkpoint(eager=True)
        cached.unpersist()
    else:
        out = df.localCheckpoint(eager=False)
    row = out.agg(F.count(F.lit(1)), *aggregates).first()
    return (out, *row)


def _maybe_broadcast(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= _BROADCAST_ROWS else df


def _policy(*extra: str) -> Column:
    """Keep-policy order as a struct; the smallest wins: priority, then longest key, then id
    (unique, so ``extra`` fields only come along)."""
    return F.struct(F.col("priority").alias("priority"), (-F.col("key_len")).alias("neg_len"), F.col("id").alias("id"),
                    *[F.col(c) for c in extra])


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


def _local_components_fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    a: list[Any] = []
    b: list[Any] = []
    kind = None
    for batch in batches:
        kind = batch.schema.field("a").type
        a += batch.column("a").to_pylist()
        b += batch.column("b").to_pylist()
    if a:
        ids, roots = label_components(a, b)
        yield pa.RecordBatch.from_arrays([pa.array(ids, kind), pa.array(roots, kind)], names=["id", "root"])


def local_components(edges: DataFrame) -> DataFrame:
    """:func:`connected_components`' labels from one executor task's union-find
    (:func:`udfs.components.label_components`): for graphs that fit one task, in one job instead of
    a few per round. Nothing reaches the driver."""
    node = edges.schema["a"].dataType
    schema = T.StructType([T.StructField("id", node), T.StructField("root", node)])
    return edges.coalesce(1).mapInArrow(_local_components_fn, schema)


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
    features = (records.select("id", key_column().alias("key"), "source", scope.alias("scope"),
                               _priority(d.source_priority).alias("priority"))
                .mapInArrow(_features_fn(d, bands, rows), FEATURES)
                # The graph works on these unique longs (cheaper to shuffle and compare than ids).
                .withColumn("node", F.monotonically_increasing_id()))

    # Exact: the best record of each exact group represents it in the near stage.
    if d.exact:
        group = Window.partitionBy("scope", "exact_hash")
        best = F.min(_policy("node")).over(group)
        features = (features.withColumn("exact_rep", best["id"]).withColumn("exact_rep_node", best["node"])
                    .withColumn("exact_size", F.count(F.lit(1)).over(group)))
    else:
        features = (features.withColumn("exact_rep", F.col("id")).withColumn("exact_rep_node", F.col("node"))
                    .withColumn("exact_size", F.lit(1)))
    features, n_records, n_shingles = _materialize(features, F.sum("n_shingles"))
    n_shingles = n_shingles or 0
    t0 = mark("signatures_exact", t0)

    n_candidates = n_verified = rounds = 0
    components_method = None
    converged = True
    labels = None
    if d.near:
        reps = features.where((F.col("node") == F.col("exact_rep_node")) & (F.col("n_shingles") > 0))
        # One long per (scope, band): a 64-bit collision between two buckets can only add candidates.
        buckets = (reps.select("node", "scope", F.explode("bands").alias("band"))
                   .select("node", F.xxhash64("scope", "band").alias("bucket")))
        in_bucket = Window.partitionBy("bucket")
        candidates, n_candidates = _materialize(
            buckets.withColumn("root", F.min("node").over(in_bucket)).where(F.col("node") != F.col("root"))
            .select(F.col("root").alias("a"), F.col("node").alias("b")).distinct())
        t0 = mark("candidates", t0)
        edges, n_verified = candidates, n_candidates
        if d.verify and n_candidates:
            # Shingle sets of the candidates' ends only (a few % of a corpus, usually): one Python
            # pass over those records, then the Jaccard of each pair in the JVM.
            ends = candidates.select(F.col("a").alias("node")).unionByName(candidates.select(F.col("b").alias("node")))
            end_ids = features.select("node", "id").join(_maybe_broadcast(ends, 2 * n_candidates), "node", "left_semi")
            sets = (units.join(_maybe_broadcast(end_ids, 2 * n_candidates), "id")
                    .select("node", key_column().alias("key"))
                    .mapInArrow(_shingle_sets_fn(d), SETS))
            # Computed once (both joins read the checkpoint), broadcast when small (8 bytes a shingle).
            sets, _ = _materialize(sets)
            set_bytes = 2 * n_candidates * 8 * (n_shingles / max(n_records, 1))
            side = F.broadcast(sets) if set_bytes <= _BROADCAST_SET_BYTES else sets
            x, y = side.alias("x"), side.alias("y")
            common = F.size(F.array_intersect(F.col("x.set"), F.col("y.set")))
            union = F.size("x.set") + F.size("y.set") - common
            scored = (candidates.join(x, F.col("a") == F.col("x.node")).join(y, F.col("b") == F.col("y.node"))
                      .select("a", "b", F.when(union > 0, common / union).otherwise(F.lit(1.0)).alias("jaccard")))
            edges, n_verified = _materialize(scored.where(F.col("jaccard") >= F.lit(d.threshold)).select("a", "b"))
            t0 = mark("verify", t0)
        if n_verified and n_verified <= d.local_components_max_edges:
            labels, components_method = local_components(edges), "local"
        elif n_verified:
            labels, rounds, converged = connected_components(edges, d.max_iterations)
            components_method = "distributed"
        if n_verified:
            t0 = mark("components", t0)  # the local union-find runs as part of the decisions job

    # Members of non-trivial clusters: exact groups of 2+, and exact representatives with an edge.
    members = features.select("id", "source", "scope", "priority", "key_len", "exact_rep", "exact_rep_node",
                              "exact_size")
    if labels is not None:
        members = members.join(labels.withColumnRenamed("id", "exact_rep_node"), "exact_rep_node", "left")
    else:
        members = members.withColumn("root", F.lit(None).cast("long"))
    members = (members.where((F.col("exact_size") > 1) | F.col("root").isNotNull())
               .withColumn("component", F.coalesce("root", "exact_rep_node")))
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
                   "local_components_max_edges": d.local_components_max_edges,
                   "source_priority": list(d.source_priority)},
        "counts": {"records": n_records, "exact_dropped": totals[EXACT], "near_dropped": totals[NEAR],
                   "kept": n_records - totals[EXACT] - totals[NEAR], "clusters": sum(by_size.values()),
                   "candidate_pairs": n_candidates, "verified_pairs": n_verified,
                   "components_method": components_method, "components_rounds": rounds,
                   "components_converged": converged},
        "cluster_sizes": {str(size): n for size, n in sizes},  # exact: records per cluster -> clusters
        "cluster_size_histogram": histogram,  # the same in power-of-two bins: 2, 3, 4-7, 8-15, ...
        "dropped_by_source": {src: dict(sorted(v.items())) for src, v in sorted(drops.items())},
        "audit": audit,
        "timings_s": {**timings, "total": round(time.monotonic() - started, 3)},
    }
    return out, report

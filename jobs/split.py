"""Stage 6, split: deterministic train/val/test assignment, cluster-aware and stratified by source.

The unit of assignment is a group: ``coalesce(cluster_id, id)`` by default (a record the dedup stage
did not cluster is its own group), or ``split.by`` (a column, or ``meta.<key>`` inside the meta JSON;
records without that key fall back to the default). A group never straddles two splits.

Each group gets a position ``u = xxhash64(seed, key)`` scaled to [0, 1). Within a stratum (the
group's source: the smallest source name among its records when a group spans sources; one stratum
for all with ``stratify: false``) groups are taken in ``u`` order: val first, then test, until the
next group would overshoot the stratum's target; everything else is train. Targets are record
counts: a fraction becomes ``round(fraction x good records)``, a count stays a count, caps
(``max_val``/``max_test``) bound the total, and the total is distributed over strata in proportion to
their size by largest remainder (ties by source name), so per-source shares are exact up to group
granularity. Only candidate groups (the smallest ``u`` per stratum, with a margin) go through the
window that does the counting, so no stratum is sorted in one task.

Only good records (no ``reject_reason``, no ``drop_reason``) get a split; the others keep null.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.common.config import Config, ConfigError, SplitConfig

SPLITS = ("train", "val", "test")
_U_BITS = 53


def allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """``total`` spread over ``sizes`` in proportion, by largest remainder; never above a size."""
    n = sum(sizes.values())
    total = min(total, n)
    if total <= 0 or n == 0:
        return {k: 0 for k in sizes}
    exact = {k: total * v / n for k, v in sizes.items()}
    out = {k: min(sizes[k], math.floor(x)) for k, x in exact.items()}
    order = sorted(sizes, key=lambda k: (-(exact[k] - math.floor(exact[k])), k))
    left = total - sum(out.values())
    while left > 0:
        progressed = False
        for k in order:
            if left and out[k] < sizes[k]:
                out[k] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return out


def split_targets(sp: SplitConfig, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
    """``{stratum: {"val": n, "test": n}}`` for strata of ``sizes`` good records."""
    n = sum(sizes.values())
    wanted = {}
    for name, cap in (("val", sp.max_val), ("test", sp.max_test)):
        value = getattr(sp, name)
        total = round(value * n) if value < 1 else int(value)
        wanted[name] = min(total, cap) if cap is not None else total
    val = allocate(wanted["val"], sizes)
    test = allocate(wanted["test"], {k: sizes[k] - val[k] for k in sizes})
    return {k: {"val": val[k], "test": test[k]} for k in sizes}


def group_key(units: DataFrame, by: str | None) -> Column:
    record = F.col("id")
    if "epoch" in units.columns:  # budget repeats: copy `<id>~<epoch>` belongs with its original
        record = F.when(F.col("epoch").isNotNull(), F.regexp_replace("id", "~[0-9]+$", "")).otherwise(record)
    default = F.coalesce(F.col("cluster_id"), record)
    if not by:
        return default
    if by.startswith("meta."):
        return F.coalesce(F.get_json_object(F.col("meta"), "$." + by[len("meta."):]), default)
    if by not in units.columns:
        raise ConfigError(f"split.by: '{by}' is neither a column ({', '.join(units.columns)}) nor "
                          "meta.<key>; name a column or a key inside the record's meta")
    return F.coalesce(F.col(by).cast("string"), default)


def _position(seed: int, key: Column) -> Column:
    """A uniform position in [0, 1) from the seed and the group key (stable across runs)."""
    h = F.xxhash64(F.lit(str(seed)), key)
    return h.bitwiseAND(F.lit((1 << _U_BITS) - 1)).cast("double") / float(1 << _U_BITS)


def assign_groups(groups: DataFrame, targets: dict[str, dict[str, int]], sizes: dict[str, int]) -> DataFrame:
    """``groups`` (stratum, key, n, u) -> (key, split) for the groups that go to val or test."""
    spark = groups.sparkSession
    need = {k: t["val"] + t["test"] for k, t in targets.items() if t["val"] + t["test"] > 0}
    if not need:
        return spark.createDataFrame([], "key string, split string")
    margin = 1.5
    while True:
        # Candidates: the groups with the smallest positions, enough of them to reach every target.
        cut = {k: min(1.0, need[k] / sizes[k] * margin + 64 / sizes[k]) for k in need}
        cut_map = F.create_map(*[x for k, v in sorted(cut.items()) for x in (F.lit(k), F.lit(v))])
        cand = groups.filter(F.col("u") < F.coalesce(cut_map[F.col("stratum")], F.lit(-1.0)))
        have = {r["stratum"]: r["n"] for r in cand.groupBy("stratum").agg(F.sum("n").alias("n")).collect()}
        if all(have.get(k, 0) >= need[k] or cut[k] >= 1.0 for k in need):
            break
        margin *= 4

    def per_stratum(values: dict[str, int]) -> Column:
        pairs = [x for k, v in sorted(values.items()) for x in (F.lit(k), F.lit(v))]
        return F.coalesce(F.create_map(*pairs)[F.col("stratum")], F.lit(0))

    val_t = per_stratum({k: t["val"] for k, t in targets.items()})
    test_t = per_stratum({k: t["test"] for k, t in targets.items()})
    stratum = Window.partitionBy("stratum")
    # Running record count in position order is monotonic, so "within the target" is a prefix:
    # val is the first groups up to the val target, test the next ones up to the test target. A
    # group that would overshoot closes the split (groups are never cut).
    ranked = cand.withColumn("cum", F.sum("n").over(
        Window.partitionBy("stratum").orderBy("u", "key").rowsBetween(Window.unboundedPreceding, 0)))
    ranked = ranked.withColumn("split", F.when(F.col("cum") <= val_t, F.lit("val")))
    val_count = F.coalesce(F.max(F.when(F.col("split") == "val", F.col("cum"))).over(stratum), F.lit(0))
    ranked = ranked.withColumn("split", F.when(F.col("split").isNotNull(), F.col("split"))
                               .when(F.col("cum") - val_count <= test_t, F.lit("test")))
    return ranked.filter(F.col("split").isNotNull()).select("key", "split")


def with_split(units: DataFrame, sp: SplitConfig) -> tuple[DataFrame, dict[str, Any]]:
    good = F.col("reject_reason").isNull() & F.col("drop_reason").isNull()
    report: dict[str, Any] = {"seed": sp.seed, "by": sp.by or "coalesce(cluster_id, id)", "stratify": sp.stratify}
    if sp.val == 0 and sp.test == 0:  # everything is train: no grouping pass needed
        group_key(units, sp.by)  # still reject a bad split.by
        out = units.withColumn("split", F.when(good, F.lit("train")))
        return out.select(*units.columns), {**report, "targets": {}}
    keyed = units.withColumn("_split_key", F.when(good, group_key(units, sp.by)))
    groups = (keyed.filter(good)
              .groupBy(F.col("_split_key").alias("key"))
              .agg(F.min("source").alias("source"), F.count("*").alias("n")))
    groups = groups.withColumn("stratum", F.col("source") if sp.stratify else F.lit("*"))
    groups = groups.withColumn("u", _position(sp.seed, F.col("key")))
    sizes = {r["stratum"]: r["n"] for r in groups.groupBy("stratum").agg(F.sum("n").alias("n")).collect()}
    targets = split_targets(sp, sizes)
    chosen = assign_groups(groups, targets, sizes) if sizes else None
    if chosen is None:
        out = keyed.withColumn("split", F.lit(None).cast("string"))
    else:
        out = (keyed.drop("split").join(F.broadcast(chosen.withColumnRenamed("key", "_split_key")),
                                        "_split_key", "left")
               .withColumn("split", F.when(good, F.coalesce(F.col("split"), F.lit("train")))))
    out = out.select(*units.columns)
    report["targets"] = {k: targets[k] for k in sorted(targets)}
    return out, report


def apply(spark: SparkSession, units: DataFrame, cfg: Config) -> tuple[DataFrame, dict[str, Any]]:
    """The pipeline transform: fill ``split`` on good records; report counts per split and source."""
    out, report = with_split(units, cfg.split)
    rows = (out.filter(F.col("split").isNotNull()).groupBy("split", "source").count()
            .orderBy("split", "source").collect())
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for r in rows:
        counts[r["split"]][r["source"]] = r["count"]
    report["counts"] = counts
    report["totals"] = {s: sum(v.values()) for s, v in counts.items()}
    return out, report

"""The split stage: cluster-aware, stratified, exact, deterministic train/val/test assignment."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.common.config import ConfigError, SplitConfig, load
from jobs.common.schema import UNIT_STRUCT
from jobs.split import allocate, split_targets, with_split
from udfs.schema import UNIT_SCHEMA


def unit(id_: str, source: str, cluster: str | None = None, **extra) -> dict:
    row = {name: None for name in UNIT_SCHEMA.names}
    row.update(id=id_, kind="cpt", source=source, text=f"text {id_}", cluster_id=cluster, source_index=0, **extra)
    return row


def frame(spark, rows):
    return spark.createDataFrame([tuple(r[n] for n in UNIT_SCHEMA.names) for r in rows], UNIT_STRUCT)


def assigned(df) -> dict[str, str | None]:
    return {r["id"]: r["split"] for r in df.select("id", "split").collect()}


def per_source(df) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for r in df.filter(F.col("split").isNotNull()).select("source", "split").collect():
        out[r["source"]][r["split"]] += 1
    return dict(out)


# --------------------------------------------------------------------------- pure allocation
def test_allocate_by_largest_remainder():
    # 16 over 100/50/10: exact shares 10, 5, 1
    assert allocate(16, {"a": 100, "b": 50, "c": 10}) == {"a": 10, "b": 5, "c": 1}
    # 8 over 100/50/10: 5, 2.5, 0.5 -> floors 5, 2, 0; one left, remainders tie at .5 -> "b" by name
    assert allocate(8, {"a": 100, "b": 50, "c": 10}) == {"a": 5, "b": 3, "c": 0}
    assert allocate(500, {"a": 3, "b": 2}) == {"a": 3, "b": 2}  # never more than a stratum has
    assert allocate(0, {"a": 3}) == {"a": 0}


def test_targets_from_fractions_counts_and_caps():
    sizes = {"a": 100, "b": 50, "c": 10}
    # val = round(0.1 x 160) = 16 -> 10/5/1; test 16 more from what is left (90/45/9) -> 10/5/1
    assert split_targets(SplitConfig(val=0.1, test=16), sizes) == {
        "a": {"val": 10, "test": 10}, "b": {"val": 5, "test": 5}, "c": {"val": 1, "test": 1}}
    assert split_targets(SplitConfig(val=0.5, max_val=8), sizes) == {
        "a": {"val": 5, "test": 0}, "b": {"val": 3, "test": 0}, "c": {"val": 0, "test": 0}}


# --------------------------------------------------------------------------- on Spark
@pytest.fixture(scope="module")
def three_sources(spark):
    """160 singleton records in sources of 100/50/10, plus 2 rejects and 3 drops that keep no split."""
    rows = [unit(f"{s}{i:03d}", s) for s, n in (("a", 100), ("b", 50), ("c", 10)) for i in range(n)]
    rows += [unit(f"r{i}", "a", reject_reason="malformed_json") for i in range(2)]
    rows += [unit(f"d{i}", "b", drop_reason="duplicate") for i in range(3)]
    return frame(spark, rows)


def test_counts_are_exact_per_source(three_sources):
    out, report = with_split(three_sources, SplitConfig(val=16, test=0.1, seed=7))
    assert per_source(out) == {"a": Counter(train=80, val=10, test=10), "b": Counter(train=40, val=5, test=5),
                               "c": Counter(train=8, val=1, test=1)}
    splits = assigned(out)
    assert all(splits[f"r{i}"] is None for i in range(2)) and all(splits[f"d{i}"] is None for i in range(3))
    assert report["targets"]["a"] == {"val": 10, "test": 10}


def test_caps_and_unstratified_totals(three_sources):
    out, _ = with_split(three_sources, SplitConfig(val=0.5, test=0.25, max_val=8, max_test=4, seed=1))
    assert sum(c["val"] for c in per_source(out).values()) == 8
    assert sum(c["test"] for c in per_source(out).values()) == 4
    flat, report = with_split(three_sources, SplitConfig(val=20, test=0, stratify=False))
    assert sum(c["val"] for c in per_source(flat).values()) == 20 and list(report["targets"]) == ["*"]


def test_same_seed_same_assignment_other_seed_other_sample(three_sources):
    cfg = SplitConfig(val=0.1, test=0.1, seed=3)
    first = assigned(with_split(three_sources, cfg)[0])
    again = assigned(with_split(three_sources.repartition(7), cfg)[0])  # partitioning must not matter
    other = assigned(with_split(three_sources, SplitConfig(val=0.1, test=0.1, seed=4))[0])
    assert first == again
    assert {k for k, v in first.items() if v == "val"} != {k for k, v in other.items() if v == "val"}


def test_clusters_never_straddle_splits(spark):
    """600 records in clusters of 1-5 by hand, some spanning two sources: one split per cluster."""
    rows = []
    i = 0
    for c in range(200):
        size = 1 + c % 5
        for k in range(size):
            source = "x" if (c + k) % 3 else "y"
            rows.append(unit(f"id{i:04d}", source, cluster=f"c{c:03d}" if size > 1 else None))
            i += 1
    units = frame(spark, rows)
    out, _ = with_split(units, SplitConfig(val=0.15, test=0.15, seed=11))
    by_cluster: dict[str, set[str]] = defaultdict(set)
    for r in out.select("cluster_id", "split").collect():
        if r["cluster_id"]:
            by_cluster[r["cluster_id"]].add(r["split"])
    assert len(by_cluster) == 160 and all(len(s) == 1 for s in by_cluster.values())
    totals = Counter(r["split"] for r in out.select("split").collect())
    assert totals["val"] > 0 and totals["test"] > 0 and sum(totals.values()) == len(rows)
    # records are never cut from their cluster, so a split can only fall short of its target
    assert totals["val"] <= round(0.15 * len(rows)) and totals["test"] <= round(0.15 * len(rows))


def test_split_by_a_meta_key_keeps_conversations_together(spark):
    rows = [unit(f"m{i:03d}", "s", meta=json.dumps({"conversation": f"conv{i // 4}"})) for i in range(200)]
    out, report = with_split(frame(spark, rows), SplitConfig(val=0.2, test=0.2, by="meta.conversation"))
    per_conv: dict[str, set[str]] = defaultdict(set)
    for r in out.select("meta", "split").collect():
        per_conv[json.loads(r["meta"])["conversation"]].add(r["split"])
    assert len(per_conv) == 50 and all(len(s) == 1 for s in per_conv.values())
    assert Counter(r["split"] for r in out.select("split").collect()) == Counter(train=120, val=40, test=40)
    assert report["by"] == "meta.conversation"
    with pytest.raises(ConfigError, match="split.by: 'nope'"):
        with_split(frame(spark, rows), SplitConfig(val=0.2, by="nope"))


def test_budget_repeats_stay_with_their_original(spark):
    rows = [unit(f"e{i:03d}", "s") for i in range(100)]
    rows += [unit(f"e{i:03d}~2", "s", epoch=2) for i in range(0, 100, 3)]
    out = assigned(with_split(frame(spark, rows), SplitConfig(val=0.2, test=0.2, seed=5))[0])
    assert all(out[k] == out[k.split("~")[0]] for k in out if "~" in k)


# --------------------------------------------------------------------------- with the dedup stage
def _dedup_module():
    try:
        import jobs.dedup as dedup
    except ImportError as exc:
        pytest.skip(f"jobs/dedup.py is not importable yet ({exc}); the dedup stage is built separately, "
                    "so cluster-aware splitting is checked here on hand-made clusters only")
    return dedup


@pytest.mark.shared_data
@pytest.mark.slow
def test_no_dedup_cluster_straddles_splits_on_cnn_dailymail(spark, shared_data):
    """The labeled near-duplicate set: 9 prompt templates x 200 articles, deduped, then split.

    The check runs on every record, the dedup stage's dropped duplicates included (their drop is
    cleared first), so a cluster of 9 has 9 chances to straddle; then on what the pipeline keeps."""
    dedup = _dedup_module()
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize

    files = sorted((shared_data / "self-instruct/cnn_dailymail").glob("*.jsonl"))
    text = "sources:\n" + "".join(f"  - name: {f.stem.replace('cnn_dailymail_3_0_0_', '')}\n    path: {f}\n"
                                  for f in files)
    cfg = load(None, ["split.val=0.1", "split.test=0.1", "output.path=/tmp/unused"], text=text)
    read_units, _ = plan(cfg)
    units = normalize(ingest(spark, cfg, read_units), cfg)
    deduped, _ = dedup.apply(spark, units, cfg)
    deduped = deduped.cache()
    everyone = deduped.withColumn("drop_reason", F.lit(None).cast("string"))
    split_all, _ = with_split(everyone, cfg.split)
    rows = split_all.filter(F.col("reject_reason").isNull()).select("id", "cluster_id", "split").collect()
    clusters: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        clusters[r["cluster_id"] or r["id"]].add(r["split"])
    multi = [c for c in clusters if sum(1 for r in rows if (r["cluster_id"] or r["id"]) == c) > 1]
    assert len(multi) >= 100, "the dedup stage found almost no clusters; the check would prove nothing"
    straddling = [c for c, s in clusters.items() if len(s) > 1]
    assert straddling == []
    assert {"train", "val", "test"} <= set().union(*clusters.values())
    kept, _ = with_split(deduped, cfg.split)
    kept_rows = kept.filter(F.col("split").isNotNull()).select("cluster_id", "id", "split").collect()
    kept_clusters: dict[str, set[str]] = defaultdict(set)
    for r in kept_rows:
        kept_clusters[r["cluster_id"] or r["id"]].add(r["split"])
    assert all(len(s) == 1 for s in kept_clusters.values())
    deduped.unpersist()


def test_split_is_registered_last_before_write():
    from jobs.pipeline import STAGES

    assert STAGES[-2:] == ("split", "write")
    assert Path("jobs/split.py").exists()

"""Dedup benchmark: corpusmill's dedup stage vs datasketch vs Spark ML, same data, same run.

    python -m bench.dedup.run --docs 10000 100000 [--data /tmp/corpusmill-bench-dedup] [--out results.json]

For each size: generate the corpus (bench/dedup/generate.py; cached under --data), then time

(a) corpusmill: ``jobs.dedup.apply`` in local[2] on the units Parquet, from the read to every
    record's decision computed (``write.format("noop")`` of the result), default config
    (sha1, 128 permutations, threshold 0.8, banding for min_recall, verification on), after an
    untimed warm-up on 20,000 of the records and a near copy of each (the first timed run still
    pays some JVM warm-up: a second run of the same stage was 5-15% faster here);
(b) datasketch, one process: ``udfs.minhash.shingles`` (the same shingle sets), ``MinHash``
    (same seed, scheme and hash function: sha1, or xxh32 with ``--set dedup.hash=xxh32``) with
    ``update_batch``, ``MinHashLSH(threshold)``
    insert + query, union-find over the returned candidates; from texts already in memory;
(c) Spark ML in the same local[2] session: RegexTokenizer(\\w+, lower) -> NGram(5) ->
    HashingTF(2^24, binary) -> MinHashLSH(5 tables) -> ``approxSimilarityJoin(1 - threshold)``,
    from the read to the pairs collected; stopped after --sparkml-timeout seconds.

Quality: every method's output is turned into clusters (union-find over its pairs for (b), (c));
the ground truth is the exact Jaccard of the shingle sets, computed for every pair inside a planted
group and for every pair any method put together; true clusters = connected components of the
pairs at J >= threshold. ``precision`` = co-clustered pairs that are truly co-clustered /
co-clustered pairs; ``recall`` = pairs at J >= threshold that the method co-clusters / all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict
from itertools import combinations
from typing import Any

from bench.dedup.generate import doc_id

CORES = 2
_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system, children included) of this process and all its descendants:
    the driver, the Spark JVM and its Python workers. Unlike wall time, this hardly moves when
    other people's jobs share the machine."""
    children: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children[int(fields[1])].append(int(entry))
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in stats:
            f = stats[pid]
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        todo += children.get(pid, [])
    return total / _TICK


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def clusters(self) -> dict[Any, Any]:
        return {x: self.find(x) for x in list(self.parent)}


def cluster_pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for item, label in labels.items():
        groups[label].append(item)
    return {(a, b) for members in groups.values() if len(members) > 1 for a, b in combinations(sorted(members), 2)}


def load(ds: str) -> tuple[list[str], dict[str, Any]]:
    import pyarrow.parquet as pq

    texts = pq.read_table(os.path.join(ds, "units.parquet"), columns=["text"]).column("text").to_pylist()
    with open(os.path.join(ds, "truth.json")) as fh:
        return texts, json.load(fh)


# --------------------------------------------------------------------------- (a) corpusmill
def run_corpusmill(spark: Any, ds: str, threshold: float, extra: list[str]) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from jobs.common.config import load as load_config
    from jobs.dedup import apply

    cfg = load_config(None, [f"output.path={ds}/out", f"dedup.threshold={threshold}", *extra],
                      text=f"sources:\n  - name: synthetic\n    path: {ds}\n")
    path = os.path.join(ds, "units.parquet")
    # Warm-up, not timed: 20,000 records plus a near copy of each, so that every step runs on
    # enough data for the Python workers to start and import and the JVM to compile its hot paths
    # (with 2,000 records the first timed run was still ~25% slower than the next).
    sample = spark.read.parquet(path).limit(20000)
    copies = sample.withColumn("id", F.concat("id", F.lit("w"))).withColumn(
        "text", F.concat("text", F.lit(" with a few more words at the end")))
    apply(spark, sample.unionByName(copies), cfg)[0].write.format("noop").mode("overwrite").save()
    load0 = os.getloadavg()[0]
    cpu0 = tree_cpu_seconds()
    t0 = time.monotonic()
    out, report = apply(spark, spark.read.parquet(path), cfg)
    out.write.format("noop").mode("overwrite").save()
    seconds = time.monotonic() - t0
    cpu = tree_cpu_seconds() - cpu0
    rows = out.where(F.col("cluster_id") != F.col("id")).select("id", "cluster_id").collect()
    labels = {r["id"]: r["cluster_id"] for r in rows}
    labels.update({c: c for c in set(labels.values())})
    return {"seconds": seconds, "cpu": cpu, "labels": labels, "report": report, "load": [load0, os.getloadavg()[0]]}


# --------------------------------------------------------------------------- (b) datasketch
def run_datasketch(texts: list[str], threshold: float, hashname: str = "sha1", num_perm: int = 128) -> dict[str, Any]:
    from datasketch import MinHash, MinHashLSH

    from udfs.minhash import shingles

    hashfunc = None  # datasketch's default, sha1_hash32
    if hashname == "xxh32":
        import xxhash

        hashfunc = xxhash.xxh32_intdigest

    load0 = os.getloadavg()[0]
    cpu0 = time.process_time()
    t0 = time.monotonic()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=1, hashfunc=hashfunc)
        m.update_batch(shingles(text, ngram=5, unit="word"))
        lsh.insert(doc_id(i), m)
        sigs.append(m)
    t_sig = time.monotonic() - t0
    uf = UnionFind()
    candidates = set()
    for i, m in enumerate(sigs):
        me = doc_id(i)
        for other in lsh.query(m):
            if other != me:
                uf.union(me, other)
                candidates.add((min(me, other), max(me, other)))
    seconds = time.monotonic() - t0
    return {"seconds": seconds, "cpu": time.process_time() - cpu0, "signature_seconds": t_sig, "labels": uf.clusters(), "pairs": candidates,
            "params": {"bands": lsh.b, "rows": lsh.r}, "load": [load0, os.getloadavg()[0]]}


# --------------------------------------------------------------------------- (c) Spark ML
def run_sparkml(spark: Any, ds: str, threshold: float, timeout: float) -> dict[str, Any]:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram, RegexTokenizer
    from pyspark.sql import functions as F

    sc = spark.sparkContext
    load0 = os.getloadavg()[0]
    cpu0 = tree_cpu_seconds()
    t0 = time.monotonic()
    df = spark.read.parquet(os.path.join(ds, "units.parquet")).select("id", "text")
    model = Pipeline(stages=[
        RegexTokenizer(inputCol="text", outputCol="tokens", pattern="\\w+", gaps=False, toLowercase=True),
        NGram(n=5, inputCol="tokens", outputCol="ngrams"),
        HashingTF(inputCol="ngrams", outputCol="features", numFeatures=1 << 24, binary=True),
        MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=5, seed=1),
    ]).fit(df)
    hashed = model.transform(df).select("id", "features", "hashes").cache()
    lsh = model.stages[-1]
    sc.setJobGroup("sparkml", "Spark ML approxSimilarityJoin", interruptOnCancel=True)
    timer = threading.Timer(timeout, lambda: sc.cancelJobGroup("sparkml"))
    timer.start()
    try:
        joined = lsh.approxSimilarityJoin(hashed, hashed, 1.0 - threshold + 1e-9, distCol="dist")
        rows = (joined.where(F.col("datasetA.id") < F.col("datasetB.id"))
                .select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b")).collect())
    except Exception as exc:  # noqa: BLE001 - cancelled by the timer
        return {"seconds": None, "error": f"stopped after {timeout:.0f}s ({type(exc).__name__})",
                "load": [load0, os.getloadavg()[0]]}
    finally:
        timer.cancel()
        sc.setLocalProperty("spark.jobGroup.id", None)
        hashed.unpersist()
    seconds = time.monotonic() - t0
    cpu = tree_cpu_seconds() - cpu0
    uf = UnionFind()
    pairs = set()
    for r in rows:
        uf.union(r["a"], r["b"])
        pairs.add((r["a"], r["b"]))
    return {"seconds": seconds, "cpu": cpu, "labels": uf.clusters(), "pairs": pairs,
            "load": [load0, os.getloadavg()[0]]}


# --------------------------------------------------------------------------- quality
def truth_and_scores(texts: list[str], truth: dict[str, Any], results: dict[str, dict[str, Any]],
                     threshold: float) -> dict[str, dict[str, Any]]:
    from udfs.lsh import jaccard
    from udfs.minhash import shingles

    known: dict[tuple[str, str], float] = {(a, b): j for a, b, j in truth["pairs"]}
    claimed: set[tuple[str, str]] = set()
    for res in results.values():
        if res.get("labels"):
            claimed |= cluster_pairs(res["labels"])
        claimed |= res.get("pairs", set())
    index = {doc_id(i): i for i in range(len(texts))}
    cache: dict[str, set[bytes]] = {}

    def sh(d: str) -> set[bytes]:
        if d not in cache:
            cache[d] = set(shingles(texts[index[d]], ngram=5, unit="word"))
        return cache[d]

    for pair in claimed - set(known):
        known[pair] = jaccard(sh(pair[0]), sh(pair[1]))
    true_pairs = {p for p, j in known.items() if j >= threshold}
    uf = UnionFind()
    for a, b in true_pairs:
        uf.union(a, b)
    truth_cluster_pairs = cluster_pairs(uf.clusters())
    scores = {}
    for name, res in results.items():
        if res.get("seconds") is None:
            scores[name] = {}
            continue
        found = cluster_pairs(res["labels"])
        precision = len(found & truth_cluster_pairs) / len(found) if found else 1.0
        recall = len(found & true_pairs) / len(true_pairs) if true_pairs else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        entry = {"precision": precision, "recall": recall, "f1": f1, "found_pairs": len(found)}
        if res.get("pairs") is not None:  # the method's own (unverified for datasketch) pairs
            entry["reported_pairs"] = len(res["pairs"])
            entry["reported_pair_precision"] = (sum(known[p] >= threshold for p in res["pairs"]) / len(res["pairs"])
                                                if res["pairs"] else 1.0)
        scores[name] = entry
    scores["_truth"] = {"true_pairs": len(true_pairs), "truth_cluster_pairs": len(truth_cluster_pairs),
                        "pairs_checked": len(known)}
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--data", default="/tmp/corpusmill-bench-dedup")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--sparkml-timeout", type=float, default=900)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["corpusmill", "datasketch", "sparkml"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="dedup.KEY=VALUE")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    from bench.dedup.generate import main as generate
    from jobs.common.session import get_session

    spark = get_session(f"local[{CORES}]", "bench-dedup", {
        "spark.sql.shuffle.partitions": "8", "spark.driver.memory": "6g",
        # 4 MB splits: one task per 8,192-row group of the Parquet file, both cores busy to the end
        "spark.sql.files.maxPartitionBytes": str(4 << 20)})
    table = []
    for n in args.docs:
        ds = os.path.join(args.data, str(n))
        if not os.path.exists(os.path.join(ds, "truth.json")):
            generate(["--docs", str(n), "--out", ds])
        texts, truth = load(ds)
        mb = truth["bytes"] / 1e6
        results: dict[str, dict[str, Any]] = {}
        if "corpusmill" not in args.skip:
            results["corpusmill"] = run_corpusmill(spark, ds, args.threshold, args.overrides)
            print(f"[{n}] corpusmill {results['corpusmill']['seconds']:.1f}s", file=sys.stderr)
        if "datasketch" not in args.skip:
            hashname = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("dedup.hash=")), "sha1")
            results["datasketch"] = run_datasketch(texts, args.threshold, hashname)
            print(f"[{n}] datasketch {results['datasketch']['seconds']:.1f}s", file=sys.stderr)
        if "sparkml" not in args.skip:
            results["sparkml"] = run_sparkml(spark, ds, args.threshold, args.sparkml_timeout)
            print(f"[{n}] sparkml {results['sparkml'].get('seconds')}", file=sys.stderr)
        scores = truth_and_scores(texts, truth, results, args.threshold)
        base = results.get("datasketch", {}).get("seconds")
        for name, res in results.items():
            cores = 1 if name == "datasketch" else CORES
            sec = res.get("seconds")
            row = {"docs": n, "mb": round(mb, 1), "method": name, "cores": cores,
                   "seconds": round(sec, 2) if sec else None,
                   "docs_per_s": round(n / sec) if sec else None,
                   "mb_per_s_per_core": round(mb / sec / cores, 2) if sec else None,
                   "speed_vs_datasketch": round(base / sec, 2) if sec and base else None,
                   "cpu_seconds": round(res["cpu"], 1) if res.get("cpu") else None,
                   "docs_per_cpu_s": round(n / res["cpu"]) if res.get("cpu") else None,
                   "load_1min": [round(x, 1) for x in res["load"]],
                   **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.get(name, {}).items()}}
            if name == "corpusmill":
                rep = res["report"]
                row["params"] = {k: rep["params"][k] for k in ("bands", "rows", "hash", "verify")}
                row["counts"] = rep["counts"]
                row["stage_timings_s"] = rep["timings_s"]
            if name == "datasketch":
                row["params"] = res["params"]
                row["signature_seconds"] = round(res["signature_seconds"], 2)
            if res.get("error"):
                row["error"] = res["error"]
            table.append(row)
        table.append({"docs": n, "truth": scores["_truth"]})
        print(json.dumps([r for r in table if r["docs"] == n], indent=1))
    print_table(table)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(table, fh, indent=1)
    return 0


def _cell(row: dict[str, Any], key: str, fmt: str = "{}") -> str:
    return fmt.format(row[key]) if row.get(key) is not None else "-"


def print_table(table: list[dict[str, Any]]) -> None:
    head = ("| docs | method | s | docs/s | MB/s/core | x datasketch | CPU s | docs/CPU-s | precision | recall | F1 "
            "| load |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in table:
        if "method" not in r:
            continue
        print(f"| {r['docs']:,} | {r['method']} | {_cell(r, 'seconds', '{:.1f}')} | {_cell(r, 'docs_per_s', '{:,}')} | "
              f"{_cell(r, 'mb_per_s_per_core', '{:.2f}')} | {_cell(r, 'speed_vs_datasketch', '{:.2f}')} | "
              f"{_cell(r, 'cpu_seconds', '{:.1f}')} | {_cell(r, 'docs_per_cpu_s', '{:,}')} | "
              f"{_cell(r, 'precision', '{:.4f}')} | {_cell(r, 'recall', '{:.4f}')} | {_cell(r, 'f1', '{:.4f}')} | "
              f"{r['load_1min'][0]}-{r['load_1min'][1]} |")


if __name__ == "__main__":
    raise SystemExit(main())

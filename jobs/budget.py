"""Stage 5, budget: select records to a token budget with per-source mixture weights.

``budget.model_params x budget.tokens_per_param`` (or ``budget.tokens``) tokens of the kinds in
``budget.kinds`` (default cpt), split across sources by ``budget.weights`` (default: each source's
share of the available tokens). Records are taken in a seeded hash order, so a re-run selects the
same ones; the rest are dropped as ``over_budget``. A source smaller than its share is kept whole,
its shortfall and the epochs it would need are reported, and with ``repeat: true`` it is repeated
up to ``max_epochs`` (extra copies carry ``epoch`` 2, 3, ... and ids ``<id>~<epoch>``).
``kind_budgets`` gives sft/preference their own ``{tokens: N}`` or ``{records: N}`` budget.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.common.config import Config, parse_count
from udfs.budget import SourcePlan, fill_range, greedy_fill, plan_source, shares, total_target

_HASH = "_budget_hash"


def _good(kinds: list[str]) -> Column:
    return F.col("reject_reason").isNull() & F.col("drop_reason").isNull() & F.col("kind").isin(kinds)


def _select(units: DataFrame, kinds: list[str], measure: Column, target: float, weights: dict[str, float],
            seed: int, repeat: bool, max_epochs: float, unit_name: str) -> tuple[DataFrame, dict[str, Any]]:
    eligible = _good(kinds)
    # Order key: a seeded 64-bit hash of the id, compared as unsigned; bucket = its top 12 bits.
    scored = (units.withColumn(_HASH, F.when(eligible, F.xxhash64(F.lit(seed), F.col("id"))))
              .withColumn("_measure", F.when(eligible, measure).cast("long"))
              .withColumn("_bucket", F.shiftrightunsigned(F.col(_HASH), 64 - 12).cast("int")))
    rows = (scored.filter(eligible).groupBy("source", "_bucket")
            .agg(F.sum("_measure").alias("n"), F.count("*").alias("records")).collect())
    tokens: dict[str, dict[int, int]] = {}
    counts: dict[str, dict[int, int]] = {}
    for r in rows:
        tokens.setdefault(r["source"], {})[r["_bucket"]] = int(r["n"] or 0)
        counts.setdefault(r["source"], {})[r["_bucket"]] = int(r["records"])
    available = {s: sum(b.values()) for s, b in tokens.items()}
    share = shares(available, {s: w for s, w in weights.items() if s in available} if weights else {})
    plans = {s: plan_source(s, tokens[s], target * share[s], repeat, max_epochs) for s in tokens}

    # The driver finishes each cut on the few buckets around it (a bounded number of records).
    ranges = {s: (p.full_buckets, fill_range(counts[s], p.full_buckets)) for s, p in plans.items()}
    in_range = F.lit(False)
    for s, (lo, hi) in ranges.items():
        in_range = in_range | ((F.col("source") == s) & F.col("_bucket").between(lo, hi - 1))
    near = (scored.filter(eligible & in_range)
            .select("source", F.shiftrightunsigned(F.col(_HASH), 1).alias("k"), "id", "_measure").collect())
    by_source: dict[str, list[tuple[int, str, int]]] = {}
    for r in near:
        by_source.setdefault(r["source"], []).append((r["k"], r["id"], int(r["_measure"] or 0)))
    taken: list[tuple[str]] = []
    # What a source cannot fill (its records are too coarse for the last gap) goes to the source
    # with the most records (the finest grain), processed last, so the total lands within one small
    # record of the target.
    carry = 0.0
    absorbed: dict[str, Any] = {}
    n_records = {s: sum(c.values()) for s, c in counts.items()}
    order = sorted(plans.items(), key=lambda kv: (not kv[1].select_all, kv[1].target > 0, n_records[kv[0]], kv[0]))
    for i, (s, p) in enumerate(order):
        if p.full_buckets < 0:
            continue
        # what the whole buckets below the cut leave to reach the target (or the partial copy's size)
        last = i == len(order) - 1 and not p.select_all
        goal = p.boundary_tokens + (carry if last else 0.0)
        ids = greedy_fill(by_source.get(s, []), goal)
        taken += [(rid,) for rid in ids]
        if not p.select_all:
            lengths = {rid: n for _k, rid, n in by_source.get(s, [])}
            if last:
                absorbed = {"source": s, "carried": round(carry, 1)}
            else:
                carry += goal - sum(lengths[rid] for rid in ids)

    spark = units.sparkSession
    picked = spark.createDataFrame(taken or [("",)], "id string").withColumn("_picked", F.lit(True))
    full = F.lit(-1)
    select_all = F.lit(False)
    repeats = F.lit(0)
    for s, p in plans.items():
        is_s = F.col("source") == s
        full = F.when(is_s, F.lit(p.full_buckets)).otherwise(full)
        select_all = F.when(is_s, F.lit(p.select_all)).otherwise(select_all)
        repeats = F.when(is_s, F.lit(p.repeats)).otherwise(repeats)
    marked = scored.join(F.broadcast(picked), on="id", how="left")
    in_prefix = eligible & ((F.col("_bucket") < full) | F.coalesce(F.col("_picked"), F.lit(False)))
    keep = select_all | in_prefix
    marked = marked.withColumn("drop_reason", F.when(eligible & ~keep, F.lit("over_budget"))
                               .otherwise(F.col("drop_reason")))
    copies = F.when(eligible & select_all, repeats + in_prefix.cast("int")).otherwise(F.lit(0))
    marked = marked.withColumn("_copies", copies)
    extra = (marked.filter(F.col("_copies") > 0)
             .withColumn("epoch", F.explode(F.sequence(F.lit(2), F.col("_copies") + 1).cast("array<int>")))
             .withColumn("id", F.concat(F.col("id"), F.lit("~"), F.col("epoch").cast("string"))))
    columns = units.columns
    result = marked.select(columns).unionByName(extra.select(columns))

    selected = (result.filter(_good(kinds)).groupBy("source")
                .agg(F.sum(measure).alias("n"), F.count("*").alias("records")).collect())
    got = {r["source"]: (int(r["n"] or 0), r["records"]) for r in selected}
    sources = {s: _source_report(p, share[s], *got.get(s, (0, 0))) for s, p in sorted(plans.items())}
    report = {"unit": unit_name, "kinds": kinds, "target": target, "achieved": sum(v[0] for v in got.values()),
              "seed": seed, "repeat": repeat, "max_epochs": max_epochs, "sources": sources,
              "weights_for_absent_sources": [s for s in weights if s not in available and weights[s] > 0],
              "slack_absorbed_by": absorbed}
    return result, report


def _source_report(p: SourcePlan, share: float, selected: int, records: int) -> dict[str, Any]:
    return {"share": round(share, 6), "available": p.available, "target": round(p.target, 1),
            "selected": selected, "records": records,
            "error_pct": round(100.0 * (selected - p.target) / p.target, 3) if p.target else None,
            "epochs_needed": round(p.epochs_needed, 4) if p.epochs_needed != float("inf") else None,
            "shortfall": max(0, round(p.target - p.available, 1)) if p.epochs_needed > 1 else 0,
            "extra_copies": p.repeats, "short": p.epochs_needed > 1}


def apply(spark: SparkSession, units: DataFrame, cfg: Config) -> tuple[DataFrame, dict[str, Any]]:
    b = cfg.budget
    target = total_target(parse_count(b.model_params, "budget.model_params"), b.tokens_per_param,
                          parse_count(b.tokens, "budget.tokens"))
    report: dict[str, Any] = {"enabled": target is not None or bool(b.kind_budgets)}
    if target is not None:
        units, report["tokens"] = _select(units, list(b.kinds), F.col("n_tokens"), target, b.weights, b.seed,
                                          b.repeat, b.max_epochs, "tokens")
        report["tokens"]["model_params"] = parse_count(b.model_params, "budget.model_params")
        report["tokens"]["tokens_per_param"] = b.tokens_per_param
    for kind, spec in b.kind_budgets.items():
        unit_name, amount = next(iter(spec.items()))
        measure = F.col("n_tokens") if unit_name == "tokens" else F.lit(1)
        units, report[kind] = _select(units, [kind], measure, float(parse_count(amount, f"budget.kind_budgets.{kind}")),
                                      {}, b.seed, False, 1.0, unit_name)
    return units, report

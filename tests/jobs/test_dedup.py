"""The dedup stage on the session SparkSession: hand-made cases, skew, accounting, real data.

Expected values come from hand construction, from the exact Jaccard of shingle sets computed here
with plain Python sets, from datasketch, or from the ground-truth labels of the real data sets.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from datasketch import MinHash

from jobs.common.config import Config, load
from jobs.common.schema import UNIT_STRUCT
from jobs.dedup import apply, banding, key_column
from udfs.dedup_key import dedup_key
from udfs.lsh import band_hashes, jaccard
from udfs.minhash import shingles
from udfs.schema import UNIT_SCHEMA

WORDS = [f"{a}{b}{c}" for a in "bcdfglmnprst" for b in "aeiou" for c in ("", "n", "r", "st", "x")]


def unit(uid: str, text: str | None = None, source: str = "web", kind: str = "cpt", **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in UNIT_SCHEMA.names}
    row.update(id=uid, kind=kind, source=source, text=text, **fields)
    return row


def msg(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_calls": None, "name": None, "reasoning": None}


def config(tmp_path: Path, sources: tuple[str, ...] = ("web", "books"), **dedup: Any) -> Config:
    text = "sources:\n" + "".join(f"  - name: {s}\n    path: {tmp_path}\n" for s in sources)
    overrides = [f"output.path={tmp_path / 'out'}"] + [f"dedup.{k}={json.dumps(v)}" for k, v in dedup.items()]
    return load(None, overrides, text=text)


def dedup(spark, rows: list[dict[str, Any]], cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    out, report = apply(spark, spark.createDataFrame(rows, UNIT_STRUCT), cfg)
    result = {r["id"]: r.asDict() for r in out.collect()}
    assert len(result) == len(rows)
    return result, report


def prose(seed: int, n_words: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def variant(text: str, target: float, seed: int) -> str:
    """Replace words so that about 1 - (2J/(1+J))^(1/5) of them change (see bench/dedup/generate.py)."""
    rng = random.Random(seed)
    words = text.split()
    p = 1 - (2 * target / (1 + target)) ** (1 / 5)
    return " ".join(rng.choice(WORDS) if rng.random() < p else w for w in words)


def true_jaccard(a: str, b: str) -> float:
    return jaccard(shingles(a, ngram=5), shingles(b, ngram=5))


# --- hand-made cases -------------------------------------------------------------------------------

def _keys_equal_reference(df) -> int:
    """key_column() (Spark) against udfs.dedup_key.dedup_key (Python) on every row of ``df``."""
    cols = ["kind", "text", "system", "messages", "prompt", "completion"]
    rows = df.select("id", key_column().alias("key"), *cols).collect()
    for r in rows:
        as_dicts = [[m.asDict() for m in r[c]] if r[c] is not None else None for c in cols[3:]]
        assert r["key"] == dedup_key(r["kind"], r["text"], r["system"], *as_dicts), r["id"]
    return len(rows)


def test_key_column_equals_the_python_dedup_key(spark):
    def m(role: str | None, content: str | None, tool_calls: str | None = None, reasoning: str | None = None):
        return {"role": role, "content": content, "tool_calls": tool_calls, "name": None, "reasoning": reasoning}

    call = '[{"name": "f", "arguments": {"x": 1}}]'
    rows = [
        unit("c1", "Some text.\nMore."), unit("c2", None), unit("c3", ""),
        unit("s1", kind="sft", system="Be brief.", messages=[m("user", "Hi"), m("assistant", "Hello")]),
        unit("s2", kind="sft", system="", messages=[m(None, None), m("", "x"), m("assistant", "", tool_calls=call)]),
        unit("s3", kind="sft", messages=[m("assistant", "Sure.", reasoning="think"), m("tool", "ok", reasoning="")]),
        unit("s4", kind="sft", messages=None), unit("s5", kind="sft", messages=[]),
        unit("p1", kind="preference", system="Poet.", prompt=[m("user", "Haiku?")],
             chosen=[m("assistant", "a")], rejected=[m("assistant", "b")]),
        unit("p2", kind="preference", prompt=[m("user", "Sky green?")], completion=[m("assistant", "No.")]),
        unit("p3", kind="preference", prompt=None, completion=None),
        unit("x1", kind=None, text="not a known kind"),  # type: ignore[arg-type]
    ]
    assert _keys_equal_reference(spark.createDataFrame(rows, UNIT_STRUCT)) == len(rows)


@pytest.mark.shared_data
def test_key_column_equals_the_python_dedup_key_on_real_data(spark, tmp_path, shared_data):
    """Tool calls, reasoning, multimodal turns, HH-RLHF and KTO prompts, as normalize writes them."""
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize

    files = ["llamafactory/glaive_toolcall_en_demo.json", "llamafactory/reason_tool_use_demo_50.jsonl",
             "llamafactory/mllm_demo.json", "llamafactory/kto_en_demo.json", "llamafactory/dpo_zh_demo.json",
             "hh-rlhf/harmless-base/test.jsonl.gz", "llamafactory/c4_demo.jsonl", "fastchat/data/dummy_conversation.json"]
    text = "sources:\n" + "".join(f"  - name: s{i}\n    path: {shared_data / f}\n" for i, f in enumerate(files))
    cfg = load(None, [f"output.path={tmp_path / 'out'}"], text=text)
    units, _ = plan(cfg)
    df = normalize(ingest(spark, cfg, units), cfg).where("reject_reason is null")
    assert _keys_equal_reference(df) > 4000


def test_exact_duplicates_keep_the_longest_then_the_smallest_id(spark, tmp_path):
    text = prose(1, 60)
    rows = [unit("c", text), unit("a", text.upper()), unit("b", "  " + text.replace(" ", "\n", 3)),
            unit("d", prose(2, 60)), unit("e", text)]
    got, report = dedup(spark, rows, config(tmp_path))
    # b is longest (extra spaces count in the raw key); a, c, e are equal in length: smallest id wins ties
    assert got["b"]["drop_reason"] is None and got["b"]["cluster_id"] == "b"
    for uid in "ace":
        assert (got[uid]["drop_reason"], got[uid]["duplicate_of"], got[uid]["cluster_id"]) == ("exact_duplicate", "b", "b")
    assert (got["d"]["drop_reason"], got["d"]["cluster_id"], got["d"]["duplicate_of"]) == (None, "d", None)
    assert report["counts"]["exact_dropped"] == 3 and report["counts"]["near_dropped"] == 0
    assert report["cluster_sizes"] == {"4": 1} and report["cluster_size_histogram"] == {"4-7": 1}
    assert report["dropped_by_source"] == {"web": {"exact_duplicate": 3}}

    rows = [unit("a", text), unit("b", text), unit("c", text)]
    got, _ = dedup(spark, rows, config(tmp_path))
    assert [got[u]["drop_reason"] for u in "abc"] == [None, "exact_duplicate", "exact_duplicate"]


def test_near_duplicate_at_0_9_is_removed_at_0_3_kept(spark, tmp_path):
    base = prose(10)
    close, far = variant(base, 0.9, 11), variant(base, 0.3, 12)
    assert 0.85 <= true_jaccard(base, close) <= 0.95
    assert 0.2 <= true_jaccard(base, far) <= 0.4
    assert true_jaccard(close, far) < 0.8
    long_close = close + " " + " ".join(base.split()[:10])  # the longer key: kept
    assert true_jaccard(base, long_close) >= 0.8 and len(long_close) > len(base)
    rows = [unit("a", base), unit("b", long_close), unit("c", far)]
    got, report = dedup(spark, rows, config(tmp_path))
    assert (got["a"]["drop_reason"], got["a"]["duplicate_of"], got["a"]["cluster_id"]) == ("near_duplicate", "b", "b")
    assert (got["b"]["drop_reason"], got["b"]["cluster_id"]) == (None, "b")
    assert (got["c"]["drop_reason"], got["c"]["cluster_id"]) == (None, "c")
    assert report["counts"]["near_dropped"] == 1 and report["counts"]["verified_pairs"] == 1
    assert report["params"]["bands"] * report["params"]["rows"] <= 128


def test_verification_is_what_enforces_the_threshold(spark, tmp_path):
    base = prose(20)
    other = variant(base, 0.6, 21)
    assert 0.5 <= true_jaccard(base, other) <= 0.7
    rows = [unit("a", base), unit("b", other)]
    # 64 bands of 2 rows: a pair at J=0.6 shares a band with probability 1 - (1 - 0.36)^64 ~ 1
    got, report = dedup(spark, rows, config(tmp_path, bands=64, rows=2))
    assert report["counts"]["candidate_pairs"] == 1 and report["counts"]["verified_pairs"] == 0
    assert got["b"]["drop_reason"] is None
    got, report = dedup(spark, rows, config(tmp_path, bands=64, rows=2, verify=False))
    assert report["counts"]["verified_pairs"] == 1 and got["b"]["drop_reason"] == "near_duplicate"


@pytest.mark.parametrize("local_max", [2_000_000, 0], ids=["local", "distributed"])
def test_clusters_are_transitive_and_keep_one(spark, tmp_path, local_max):
    chain = [prose(30, 500)]
    for i in range(4):
        chain.append(variant(chain[-1], 0.93, 31 + i))
    assert all(true_jaccard(x, y) >= 0.85 for x, y in zip(chain, chain[1:], strict=False))
    assert true_jaccard(chain[0], chain[-1]) < 0.8  # the ends are no duplicates: only the chain links them
    rows = [unit(f"n{i}", t) for i, t in enumerate(chain)]
    got, report = dedup(spark, rows, config(tmp_path, local_components_max_edges=local_max))
    kept = [r for r in got.values() if r["drop_reason"] is None]
    assert len(kept) == 1
    assert {r["cluster_id"] for r in got.values()} == {kept[0]["id"]}
    assert report["cluster_sizes"] == {"5": 1} and report["counts"]["components_converged"] is True
    assert report["counts"]["components_method"] == ("local" if local_max else "distributed")


def test_local_and_distributed_components_label_alike(spark):
    """A random graph with long paths and stars: one executor's union-find == large/small-star
    rounds == a breadth-first search written here."""
    from jobs.dedup import connected_components, local_components
    from tests.udfs.test_components import bfs_minimum

    rng = random.Random(7)
    n = 400
    edges = {tuple(sorted((rng.randrange(n), rng.randrange(n)))) for _ in range(300)}
    edges |= {(i, i + 1) for i in range(100, 160)}  # a path: the many-rounds case
    edges = {(x, y) for x, y in edges if x != y}
    name = [f"r{i:04d}" for i in range(n)]  # zero-padded: string order == number order
    df = spark.createDataFrame([(name[x], name[y]) for x, y in sorted(edges)], "a string, b string")
    expected = bfs_minimum(sorted(edges), n)
    want = {name[i]: name[expected[i]] for x_y in edges for i in x_y}
    local = {r["id"]: r["root"] for r in local_components(df).collect()}
    labels, rounds, converged = connected_components(df, 30)
    distributed = {r["id"]: r["root"] for r in labels.collect()}
    assert local == want
    assert distributed == want and converged and rounds > 1


def test_preference_pairs_on_the_same_prompt_are_duplicates(spark, tmp_path):
    prompt = [msg("user", "Explain why the sky is blue in two sentences.")]
    rows = [
        unit("p1", kind="preference", source="web", prompt=prompt, chosen=[msg("assistant", "Rayleigh scattering.")],
             rejected=[msg("assistant", "Because it is.")]),
        unit("p2", kind="preference", source="web", prompt=prompt, chosen=[msg("assistant", "Short waves scatter.")],
             rejected=[msg("assistant", "Magic.")]),
        unit("p3", kind="preference", source="web", prompt=[msg("user", "Why is grass green?")],
             chosen=[msg("assistant", "Chlorophyll.")], rejected=[msg("assistant", "Paint.")]),
        # unpaired feedback on one prompt: different completions are different examples
        unit("k1", kind="preference", source="web", prompt=prompt, completion=[msg("assistant", "Rayleigh scattering of sunlight by the air molecules.")], label=True),
        unit("k2", kind="preference", source="web", prompt=prompt, completion=[msg("assistant", "It is magic, nothing else to it.")], label=False),
        # sft conversations that share a question but answer differently are not duplicates
        unit("s1", kind="sft", source="web", messages=[*prompt, msg("assistant", "Rayleigh scattering makes it so.")]),
        unit("s2", kind="sft", source="web", messages=[*prompt, msg("assistant", "Light from the sun scatters.")]),
        # a cpt document with the same words as a conversation key: another kind, never compared
        unit("t1", "user: Explain why the sky is blue in two sentences."),
    ]
    got, report = dedup(spark, rows, config(tmp_path))
    dropped = {u: (r["drop_reason"], r["duplicate_of"]) for u, r in got.items() if r["drop_reason"]}
    assert dropped == {"p2": ("exact_duplicate", "p1")}
    assert report["counts"]["exact_dropped"] == 1


def test_scope_per_source_and_source_priority(spark, tmp_path):
    text = prose(40)
    near = variant(text, 0.92, 41) + " and a few more words here"
    rows = [unit("a", text, source="web"), unit("b", text, source="books"), unit("c", text, source="books"),
            unit("z", near, source="books")]
    got, _ = dedup(spark, rows, config(tmp_path))  # global: one survivor, the longest (z)
    assert [got[u]["drop_reason"] is None for u in "abcz"] == [False, False, False, True]
    assert got["a"]["drop_reason"] == got["b"]["drop_reason"] == "near_duplicate"

    got, _ = dedup(spark, rows, config(tmp_path, scope="per_source"))
    assert got["a"]["drop_reason"] is None and got["a"]["cluster_id"] == "a"  # alone in its source
    assert got["z"]["drop_reason"] is None
    assert (got["b"]["drop_reason"], got["b"]["duplicate_of"]) == ("near_duplicate", "z")

    # priority beats length: web is listed first, so its (shorter) copy is kept
    got, report = dedup(spark, rows, config(tmp_path, source_priority=["web", "books"]))
    assert got["a"]["drop_reason"] is None
    assert {u: got[u]["drop_reason"] for u in "bcz"} == {"b": "exact_duplicate", "c": "exact_duplicate",
                                                         "z": "near_duplicate"}
    assert all(got[u]["duplicate_of"] == "a" for u in "bcz")
    assert report["dropped_by_source"] == {"books": {"exact_duplicate": 2, "near_duplicate": 1}}


def test_rejected_and_dropped_records_pass_through_unchanged(spark, tmp_path):
    text = prose(50)
    rows = [unit("a", text), unit("b", text, drop_reason="too_short"), unit("c", text, reject_reason="bad"),
            unit("d", text), unit("e", "!!! ???"), unit("f", "!!!   ???")]
    got, _ = dedup(spark, rows, config(tmp_path))
    assert (got["b"]["drop_reason"], got["b"]["cluster_id"], got["b"]["duplicate_of"]) == ("too_short", None, None)
    assert (got["c"]["reject_reason"], got["c"]["drop_reason"], got["c"]["cluster_id"]) == ("bad", None, None)
    assert got["d"]["drop_reason"] == "exact_duplicate" and got["a"]["drop_reason"] is None
    # no shingles (punctuation only): exact dedup only, never near-matched to each other
    assert got["e"]["drop_reason"] == "exact_duplicate" and got["e"]["duplicate_of"] == "f"  # f is longer
    assert got["f"]["drop_reason"] is None


def test_disabled_stage_only_sets_cluster_ids(spark, tmp_path):
    text = prose(60)
    got, report = dedup(spark, [unit("a", text), unit("b", text)], config(tmp_path, enabled=False))
    assert report == {"enabled": False}
    assert [(got[u]["drop_reason"], got[u]["cluster_id"]) for u in "ab"] == [(None, "a"), (None, "b")]


@pytest.mark.parametrize("hashname", ["sha1", "xxh32"])
def test_band_hashes_from_the_stage_equal_datasketch_signatures(spark, tmp_path, hashname):
    """The Spark features pass gives the band keys of datasketch's own MinHash of each key."""
    import xxhash
    from pyspark.sql import functions as F

    from jobs.dedup import FEATURES, _features_fn

    texts = [prose(70 + i, 40 + 30 * i) for i in range(6)] + ["你好，请问你是谁？今天天气很好，我们去公园散步吧。", "short"]
    cfg = config(tmp_path, hash=hashname)
    bands, rows = banding(cfg.dedup)
    df = spark.createDataFrame([unit(f"t{i}", t) for i, t in enumerate(texts)], UNIT_STRUCT)
    df = df.select("id", key_column().alias("key"), "source", F.col("kind").alias("scope"), F.lit(0).alias("priority"))
    got = {r["id"]: r["bands"] for r in df.mapInArrow(_features_fn(cfg.dedup, bands, rows), FEATURES).collect()}
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128, seed=1, hashfunc=xxhash.xxh32_intdigest if hashname == "xxh32" else None)
        for s in shingles(t, ngram=5, unit="auto"):
            m.update(s)
        assert got[f"t{i}"] == band_hashes(m.hashvalues[None, :], bands, rows)[0].tolist()


def test_a_hash_that_does_not_fit_the_scheme_fails_before_spark_work(spark, tmp_path):
    from jobs.common.config import ConfigError

    with pytest.raises(ConfigError, match="affine64"):
        apply(spark, spark.createDataFrame([unit("a", "x")], UNIT_STRUCT), config(tmp_path, hash="xxh64"))


# --- skew --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exact", [True, False])
def test_20000_identical_records_keep_exactly_one(spark, tmp_path, exact):
    boilerplate = "Cookie notice: we use cookies to improve your experience. Accept all cookies to continue."
    rows = [unit(f"r{i:05d}", boilerplate + ("" if i % 2 else "  ")) for i in range(20_000)]
    rows += [unit("other", prose(80))]
    started = time.monotonic()
    out, report = apply(spark, spark.createDataFrame(rows, UNIT_STRUCT), config(tmp_path, exact=exact))
    kept = out.where("drop_reason is null").select("id").collect()
    elapsed = time.monotonic() - started
    assert sorted(r["id"] for r in kept) == ["other", "r00000"]
    assert out.where("cluster_id = 'r00000'").count() == 20_000
    c = report["counts"]
    if exact:
        assert (c["exact_dropped"], c["near_dropped"], c["candidate_pairs"]) == (19_999, 0, 0)
    else:  # one bucket of 20,000 per band: 19,999 edges to the smallest id, not 2e8 pairs
        assert (c["exact_dropped"], c["near_dropped"], c["candidate_pairs"]) == (0, 19_999, 19_999)
    assert report["cluster_sizes"] == {"20000": 1} and report["cluster_size_histogram"] == {"16384-32767": 1}
    assert elapsed < 120, f"20,000 identical records took {elapsed:.0f}s"


# --- accounting through the whole pipeline ---------------------------------------------------------

def test_pipeline_counts_dedup_drops_per_source_and_balances(spark, tmp_path):
    from jobs.pipeline import TRANSFORMS, run

    order = list(TRANSFORMS)
    assert [name for name in order if name in ("filter", "dedup", "budget", "split")] == [
        name for name in ("filter", "dedup", "budget", "split") if name in order]
    web, forum = prose(90), prose(91)
    near = " ".join(variant(web, 0.92, 92).split()[:-20])  # shorter than web: web is kept
    assert len(near) < len(web) and true_jaccard(web, near) >= 0.8
    (tmp_path / "web.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in [web, web, near, prose(93)]))
    (tmp_path / "forum.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in
                                                  [web.upper(), forum, forum + " !"]))
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"prompt": "What is 2+2?", "completion": "4"}, {"prompt": "What is 2+2?", "completion": "4"},
        {"prompt": "What is 3+3?", "completion": "6"}]))
    text = (f"sources:\n  - name: web\n    path: {tmp_path / 'web.jsonl'}\n"
            f"  - name: forum\n    path: {tmp_path / 'forum.jsonl'}\n"
            f"  - name: chat\n    path: {tmp_path / 'chat.jsonl'}\n"
            f"output:\n  path: {tmp_path / 'out'}\nfilter:\n  enabled: false\n"
            "dedup:\n  source_priority: [web]\n")
    manifest = run(load(None, [], text=text), log=lambda _m: None)
    assert manifest is not None and manifest["balanced"] is True
    # web: its repeat (exact) and the shortened variant (near) -> the first web record.
    # forum: the upper-cased web text (exact, same normalized key as the kept web record) and
    # `forum` itself, whose words equal `forum !` (near: punctuation is not a word; the longer kept).
    # chat: the repeated conversation (exact).
    assert manifest["counts"]["dropped"] == {"exact_duplicate": 3, "near_duplicate": 2}
    per_source = {name: manifest["sources"][name]["counts"]["dropped"] for name in ("web", "forum", "chat")}
    assert per_source == {"web": {"exact_duplicate": 1, "near_duplicate": 1},
                          "forum": {"exact_duplicate": 1, "near_duplicate": 1}, "chat": {"exact_duplicate": 1}}
    stage = manifest["stages"]["dedup"]
    assert stage["counts"]["exact_dropped"] == 3 and stage["counts"]["near_dropped"] == 2
    assert stage["dropped_by_source"] == {"chat": {"exact_duplicate": 1},
                                          "forum": {"exact_duplicate": 1, "near_duplicate": 1},
                                          "web": {"exact_duplicate": 1, "near_duplicate": 1}}


# --- real data ---------------------------------------------------------------------------------------

def _line_index(path: str) -> dict[int, int]:
    """byte offset of each line -> its index, read with plain Python."""
    offsets, pos = {}, 0
    with open(path.removeprefix("file://"), "rb") as fh:
        for i, line in enumerate(fh):
            offsets[pos] = i
            pos += len(line)
    return offsets


def _dedup_source(spark, tmp_path: Path, path: Path, extra: list[str] | None = None):
    from jobs.ingest import ingest, plan
    from jobs.normalize import normalize

    cfg = load(None, [f"output.path={tmp_path / 'out'}", *(extra or [])],
               text=f"sources:\n  - name: data\n    path: {path}\n")
    units, files = plan(cfg)
    out, report = apply(spark, normalize(ingest(spark, cfg, units), cfg), cfg)
    rows = out.select("source_file", "source_offset", "cluster_id", "drop_reason", "reject_reason").collect()
    assert all(r["reject_reason"] is None for r in rows)
    lines = {f: _line_index(f) for f in {r["source_file"] for r in rows}}
    return [(r["source_file"], lines[r["source_file"]][r["source_offset"]], r["cluster_id"], r["drop_reason"])
            for r in rows], report


def _pairs(labels: dict[Any, Any]) -> set[tuple[Any, Any]]:
    groups = defaultdict(list)
    for item, label in labels.items():
        groups[label].append(item)
    return {tuple(sorted(p)) for members in groups.values() for p in combinations(members, 2)}


def _prf(found: set, truth: set) -> tuple[float, float, float]:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


CNN = "self-instruct/cnn_dailymail"
# Lines whose article (prompt and completion) is repeated inside every file, found by reading the
# files: these line clusters are one cluster in the ground truth.
CNN_REPEATS = {120: 36, 56: 50, 152: 54, 160: 59, 137: 75}


@pytest.mark.shared_data
def test_cnn_dailymail_pair_precision_recall_at_the_defaults(spark, tmp_path, shared_data):
    root = shared_data / CNN
    files = sorted(root.glob("*.jsonl"))
    assert len(files) == 9
    # the repeats, checked from the raw files rather than trusted
    first = [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]
    seen: dict[tuple[str, str], int] = {}
    repeats = {}
    for i, r in enumerate(first):
        key = (r["prompt"], r["completion"])
        if key in seen:
            repeats[i] = seen[key]
        seen.setdefault(key, i)
    assert repeats == CNN_REPEATS

    rows, report = _dedup_source(spark, tmp_path, root)
    assert len(rows) == 1800
    truth = _pairs({(f, i): CNN_REPEATS.get(i, i) for f, i, _, _ in rows})
    found = _pairs({(f, i): cluster for f, i, cluster, _ in rows})
    precision, recall, f1 = _prf(found, truth)
    assert len(truth) == 190 * 36 + 5 * 153
    # Measured: 1.0 / 1.0 / 1.0 (all 7,605 true pairs, nothing else); 195 records kept. Only 2 of the
    # 7,200 same-article pairs are below J = 0.8 (0.794, 0.798: short articles, where the template
    # words weigh most); the cluster links them through the other files.
    assert precision >= 0.995 and recall >= 0.995 and f1 >= 0.995, (precision, recall, f1)
    kept = [r for r in rows if r[3] is None]
    assert 194 <= len(kept) <= 196
    # The 5 repeats of the kept record's own file are exact duplicates of it; the other 8 files'
    # copies of a repeated article are near duplicates of it (templates differ).
    assert report["counts"]["exact_dropped"] == 5 and report["counts"]["near_dropped"] == 1600
    assert report["cluster_sizes"] == {"9": 190, "18": 5}


@pytest.mark.shared_data
def test_chinese_and_english_near_duplicates_of_the_data_juicer_demo(spark, tmp_path, shared_data):
    path = shared_data / "data-juicer/demos/data/demo-dataset-deduplication.jsonl"
    rows, report = _dedup_source(spark, tmp_path, path)
    found = _pairs({i: cluster for _, i, cluster, _ in rows})
    # By eye: 6/11 identical; 7/8 and 9/10 the Smithfield article with plant(s)/pig(s) edits (7/9
    # differ in length, J~0.5); 12/13 the Chinese meeting notice, one line with "时间：" added.
    assert found == {(6, 11), (7, 8), (9, 10), (12, 13)}
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert jaccard(shingles(texts[12], unit="char"), shingles(texts[13], unit="char")) > 0.98
    reasons = {i: reason for _, i, _, reason in rows if reason}
    assert sorted(reasons.values()) == ["exact_duplicate", "near_duplicate", "near_duplicate", "near_duplicate"]
    assert report["counts"]["verified_pairs"] >= 3


def test_size_bins():
    from jobs.dedup import _size_bin

    assert [_size_bin(n) for n in (2, 3, 4, 7, 8, 15, 16, 20000)] == ["2", "3", "4-7", "4-7", "8-15", "8-15",
                                                                       "16-31", "16384-32767"]
    cfg = load(None, ["dedup.bands=20", "dedup.rows=5"], text="sources:\n  - name: a\n    path: /\n")
    assert banding(cfg.dedup) == (20, 5)

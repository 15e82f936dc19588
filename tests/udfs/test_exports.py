"""Export profiles (pure): LLaMA-Factory rows and their checks, OpenAI chat/DPO rows, dataset card."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.udfs.helpers import one, units
from udfs.exports import (
    LLAMAFACTORY_ENTRIES,
    ExportSkip,
    check_llamafactory,
    dataset_card,
    llamafactory_dataset_info,
    llamafactory_row,
    openai_row,
    unified_row,
)
from udfs.text import clean_text

TOOLS = json.dumps([{"name": "get_weather", "description": "weather", "parameters": {"type": "object"}}])
WEATHER = {"conversations": [
    {"from": "human", "value": "Weather in Paris?"},
    {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
    {"from": "observation", "value": "18C"},
    {"from": "gpt", "value": "It is 18C."}], "tools": TOOLS, "system": "Be brief."}


def lf(record):
    dataset, row = llamafactory_row(record)
    assert check_llamafactory(row, LLAMAFACTORY_ENTRIES[dataset]) is None, row
    return dataset, row


def skip_reason(convert, record) -> str:
    with pytest.raises(ExportSkip) as info:
        convert(record)
    return info.value.reason


def test_single_exchange_is_alpaca():
    dataset, row = lf(one({"instruction": "Add", "input": "1+1", "output": "2", "system": "math"}))
    assert dataset == "sft_alpaca"
    assert row == {"instruction": "Add\n1+1", "input": "", "output": "2", "system": "math"}


def test_tools_and_multi_turn_are_sharegpt():
    dataset, row = lf(one(WEATHER))
    assert dataset == "sft_sharegpt"
    assert [t["from"] for t in row["conversations"]] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(row["conversations"][1]["value"]) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert row["tools"] == TOOLS and row["system"] == "Be brief."
    dataset, _ = lf(one({"instruction": "q2", "output": "a2", "history": [["q1", "a1"]]}))
    assert dataset == "sft_sharegpt"  # multi-turn: history is not flattened into an alpaca prompt


def test_parallel_calls_become_a_json_list_and_reasoning_a_think_block():
    record = one({"messages": [
        {"role": "user", "content": "both"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"type": "function", "function": {"name": "b", "arguments": "{}"}}]},
        {"role": "tool", "content": "[1, 2]"},
        {"role": "assistant", "content": "done", "reasoning": "add them"}]})
    _, row = lf(record)
    assert [c["name"] for c in json.loads(row["conversations"][1]["value"])] == ["a", "b"]
    assert row["conversations"][3]["value"] == "<think>add them</think>\n\ndone"


def test_what_llamafactory_cannot_express_is_skipped_with_a_reason():
    mid_system = one({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                                   {"role": "system", "content": "now formal"}, {"role": "user", "content": "q2"},
                                   {"role": "assistant", "content": "a2"}]})
    assert skip_reason(llamafactory_row, mid_system) == "system_turn_mid_conversation"
    scored = one({"Input": "A plain scored text.", "Reward": "0.5"})
    assert scored["shape"] == "scored"
    assert skip_reason(llamafactory_row, scored) == "no_label"


def test_preference_ranking_and_kto():
    dataset, row = lf(one({"prompt": "q", "response_a": "good", "response_b": "bad", "label": 0}))
    assert dataset == "preference_ranking"
    assert row["conversations"] == [{"from": "human", "value": "q"}]
    assert row["chosen"] == {"from": "gpt", "value": "good"} and row["rejected"] == {"from": "gpt", "value": "bad"}
    dataset, row = lf(one({"prompt": "q", "completion": "a", "label": False}))
    assert dataset == "preference_kto"
    assert row["kto_tag"] is False and [t["from"] for t in row["conversations"]] == ["human", "gpt"]


def test_cpt_is_text():
    assert lf(one({"text": "a document of words"})) == ("cpt", {"text": "a document of words"})


@pytest.mark.parametrize("example,entry,problem", [
    ({"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]},
     LLAMAFACTORY_ENTRIES["sft_sharegpt"], "turn 0"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"},
                        {"from": "human", "value": "q2"}]}, LLAMAFACTORY_ENTRIES["sft_sharegpt"], "3 turns"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
      "chosen": {"from": "gpt", "value": "x"}, "rejected": {"from": "gpt", "value": "y"}},
     LLAMAFACTORY_ENTRIES["preference_ranking"], "ranking prompt ends on a user"),
    ({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "human", "value": "x"},
      "rejected": {"from": "gpt", "value": "y"}}, LLAMAFACTORY_ENTRIES["preference_ranking"], "chosen"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "kto_tag": "yes"},
     LLAMAFACTORY_ENTRIES["preference_kto"], "kto_tag"),
])
def test_check_llamafactory_finds_what_its_converter_rejects(example, entry, problem):
    assert problem in (check_llamafactory(example, entry) or "")


def _turn(t: dict, tags: dict | None = None) -> tuple[str, object]:
    """(LLaMA-Factory default role name, content) of a turn written with ``tags`` (default: ours)."""
    tags = tags or {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
    role = {tags["user_tag"]: "human", tags["assistant_tag"]: "gpt"}.get(t[tags["role_tag"]], t[tags["role_tag"]])
    value = t[tags["content_tag"]]
    return role, json.loads(value) if role == "function_call" else clean_text(value)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["glaive_toolcall_en_demo", "dpo_en_demo", "kto_en_demo", "alpaca_en_demo"])
def test_llamafactory_demo_sets_round_trip(shared_data, name):
    """LLaMA-Factory's own demo files pass the check, and normalize -> export gives them back."""
    info = json.loads((shared_data / "llamafactory/dataset_info.json").read_text())
    entry = info[name]
    rows = json.loads((shared_data / "llamafactory" / entry["file_name"]).read_text())
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            **entry.get("tags", {})}
    for original in rows:
        assert check_llamafactory(original, entry) is None
        unit = units(original, columns=entry.get("columns", {}), tags=entry.get("tags", {}))[0]
        assert unit["reject_reason"] is None
        _, row = lf(unit)
        if name.startswith("alpaca"):
            prompt = "\n".join(p for p in (original["instruction"], original["input"]) if p)
            assert (row["instruction"], row["output"]) == (clean_text(prompt), clean_text(original["output"]))
            continue
        turns = original[entry["columns"]["messages"]]
        if turns[0][tags["role_tag"]] == "system":
            assert row["system"] == clean_text(turns[0][tags["content_tag"]])
            turns = turns[1:]
        assert [_turn(t) for t in row["conversations"]] == [_turn(t, tags) for t in turns]
        if "chosen" in original:
            assert _turn(row["chosen"]) == _turn(original["chosen"], tags)
        if "kto_tag" in entry["columns"]:
            assert row["kto_tag"] is original[entry["columns"]["kto_tag"]]


def test_dataset_info_entries_name_their_folders():
    info = llamafactory_dataset_info({"sft_alpaca": {"train": 3, "val": 0}, "cpt": {"test": 1}})
    assert info == {"corpusmill_cpt_test": {"file_name": "cpt/test", "columns": {"prompt": "text"}},
                    "corpusmill_sft_alpaca_train": {"file_name": "sft_alpaca/train",
                                                    **LLAMAFACTORY_ENTRIES["sft_alpaca"]}}


def test_openai_chat_with_tools():
    _, row = openai_row(one(WEATHER))
    assert row["messages"][0] == {"role": "system", "content": "Be brief."}
    call = row["messages"][2]
    assert call["role"] == "assistant" and "content" not in call
    assert call["tool_calls"] == [{"id": "call_1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert row["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert row["tools"] == [{"type": "function", "function": json.loads(TOOLS)[0]}]


def test_openai_preference_and_what_it_skips():
    dataset, row = openai_row(one({"prompt": "q", "response_a": "good", "response_b": "bad", "label": 0, "system": "s"}))
    assert dataset == "preference"
    assert row == {"input": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
                   "preferred_output": [{"role": "assistant", "content": "good"}],
                   "non_preferred_output": [{"role": "assistant", "content": "bad"}]}
    assert skip_reason(openai_row, one({"prompt": "q", "completion": "a", "label": True})) == "unpaired_preference"
    assert skip_reason(openai_row, one({"text": "plain document words"})) == "no_openai_format_for_cpt"


def test_unified_row_keeps_the_kind_columns_without_nulls():
    row = unified_row(one({"instruction": "q", "output": "a"}))
    assert row["kind"] == "sft" and "text" not in row and "tools" not in row
    assert row["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_dataset_card_header_names_every_split():
    card = dataset_card({"sft": {"train": {"rows": 5, "tokens": 50}, "validation": {"rows": 1, "tokens": 9},
                                 "test": {"rows": 1, "tokens": 8}}}, "0.1.0", "ab" * 32)
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"] == [{"config_name": "sft", "data_files": [
        {"split": "train", "path": "sft/train-*.parquet"}, {"split": "validation", "path": "sft/validation-*.parquet"},
        {"split": "test", "path": "sft/test-*.parquet"}]}]
    assert "| sft | validation | 1 | 9 |" in card

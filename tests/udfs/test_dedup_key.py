"""udfs.dedup_key: the dedup key per kind, the exact hash, and the batch shingler (== shingles)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from udfs.dedup_key import (
    conversation_text,
    dedup_key,
    exact_key_hash,
    exact_key_hashes,
    normalized_key,
    shingle_batch,
)
from udfs.minhash import hash_shingles, shingles, signatures_from_hashes


def msg(role: str, content: str, **extra: str) -> dict[str, str | None]:
    return {"role": role, "content": content, "tool_calls": extra.get("tool_calls"), "name": None,
            "reasoning": extra.get("reasoning")}


def test_cpt_key_is_the_text() -> None:
    assert dedup_key("cpt", text="Some text.\nMore.") == "Some text.\nMore."
    assert dedup_key("cpt", text=None) == ""


def test_sft_key_is_the_whole_conversation_role_tagged() -> None:
    messages = [msg("user", "What is 2+2?"), msg("assistant", "4")]
    assert dedup_key("sft", system="Be brief.", messages=messages) == (
        "system: Be brief.\nuser: What is 2+2?\nassistant: 4")
    assert dedup_key("sft", messages=messages) == "user: What is 2+2?\nassistant: 4"
    # a different answer is a different conversation
    assert dedup_key("sft", messages=[msg("user", "What is 2+2?"), msg("assistant", "four")]) != dedup_key(
        "sft", messages=messages)


def test_tool_calls_and_reasoning_belong_to_their_turn() -> None:
    call = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
    messages = [msg("user", "Weather?"), msg("assistant", "", tool_calls=call), msg("tool", "sunny"),
                msg("assistant", "Sunny.", reasoning="The tool said sunny.")]
    assert conversation_text(None, messages) == (
        f"user: Weather?\nassistant: \n{call}\ntool: sunny\nassistant: Sunny.\nThe tool said sunny.")


def test_preference_key_is_the_prompt_so_pairs_on_one_prompt_collide() -> None:
    prompt = [msg("user", "Write a haiku about rain.")]
    a = dedup_key("preference", system="Poet.", prompt=prompt)
    b = dedup_key("preference", system="Poet.", prompt=prompt)
    assert a == b == "system: Poet.\nuser: Write a haiku about rain."
    assert dedup_key("preference", prompt=prompt) != a  # the system prompt is part of the context


def test_unpaired_feedback_key_adds_the_completion() -> None:
    prompt = [msg("user", "Is the sky green?")]
    good = dedup_key("preference", prompt=prompt, completion=[msg("assistant", "No, it is blue.")])
    bad = dedup_key("preference", prompt=prompt, completion=[msg("assistant", "Yes.")])
    assert good == "user: Is the sky green?\nassistant: No, it is blue."
    assert good != bad


def test_unknown_kind_has_an_empty_key() -> None:
    assert dedup_key(None, text="x") == ""


@pytest.mark.parametrize("lowercase", [True, False])
def test_batch_exact_hashes_equal_one_by_one(lowercase: bool) -> None:
    """The compiled ASCII path vs exact_key_hash, on texts full of the whitespace str.split() knows."""
    rng = random.Random(3)
    alphabet = ["a", "B", "z", "Q", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", ",", "@", "[",
                "`", "{", "_", "é", "ß", "\u3000", "\xa0"]
    keys = HAND + [""] * 3 + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    assert exact_key_hashes(keys, lowercase) == [exact_key_hash(k, lowercase) for k in keys]
    assert exact_key_hashes([], lowercase) == []


def test_exact_hash_ignores_case_and_spacing_only() -> None:
    assert normalized_key("  Hello,\n\tWORLD  again ") == "hello, world again"
    assert normalized_key("Straße") == "strasse"
    assert exact_key_hash("Hello,  World") == exact_key_hash("hello,\nworld ")
    assert exact_key_hash("Hello, World") != exact_key_hash("Hello World")  # punctuation counts
    assert exact_key_hash("Hello", lowercase=False) != exact_key_hash("hello", lowercase=False)
    assert exact_key_hash("Hello", lowercase=False) == exact_key_hash(" Hello\n", lowercase=False)
    assert len(exact_key_hash("x")) == 32


HAND = ["", "   ", "!!! ...", "a", "a b", "one two three four five", "one two three four five six",
        "The quick brown fox, jumps over THE lazy dog!", "Straße CAFÉ naïve -- ok_ok 42",
        "你好  世界\n\n再见，朋友们。今天天气很好", "我喜欢用Python和Spark写数据处理程序", "今日はいい天気ですね",
        "안녕하세요 세계 여러분 반갑습니다 오늘", "An English sentence with the word 中 in it.",
        "tabs\tand\nnewlines\r\nand  double  spaces", "x" * 3, "émigré café " * 7, "_ _ __ a_b"]


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("unit", ["word", "char", "auto"])
@pytest.mark.parametrize("ngram", [1, 2, 5])
@pytest.mark.parametrize("lowercase", [True, False])
def test_shingle_batch_equals_shingles(unit: str, ngram: int, lowercase: bool, kernel: bool) -> None:
    flat, counts = shingle_batch(HAND, ngram, unit, lowercase, kernel)
    expected = [shingles(t, ngram=ngram, unit=unit, lowercase=lowercase) for t in HAND]  # type: ignore[arg-type]
    assert counts.tolist() == [len(e) for e in expected]
    assert flat == [s for e in expected for s in e]


def test_shingle_batch_edge_cases() -> None:
    flat, counts = shingle_batch([])
    assert flat == [] and counts.tolist() == []
    flat, counts = shingle_batch(["", "!!!"])
    assert flat == [] and counts.tolist() == [0, 0]
    with pytest.raises(ValueError, match="unit"):
        shingle_batch(["x"], unit="sentence")
    with pytest.raises(ValueError, match="ngram"):
        shingle_batch(["x"], ngram=0)


# --- real documents -------------------------------------------------------------------------------

def _shared(relative: str) -> Path:
    root = os.environ.get("CORPUSMILL_SHARED_DATA")
    if not root or not (Path(root) / relative).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared data is missing: {relative}")
        pytest.skip(f"{relative} not available: set CORPUSMILL_SHARED_DATA")
    return Path(root) / relative


def _real_keys() -> list[str]:
    """sft keys of one CNN/DailyMail prompt file and the data-juicer dedup demo texts (en + zh)."""
    keys = []
    cnn = _shared("self-instruct/cnn_dailymail/cnn_dailymail_3_0_0_news_summary.jsonl")
    for line in cnn.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        keys.append(conversation_text(None, [msg("user", row["prompt"]), msg("assistant", row["completion"])]))
    demo = _shared("data-juicer/demos/data/demo-dataset-deduplication.jsonl")
    keys += [json.loads(line)["text"] for line in demo.read_text(encoding="utf-8").splitlines()]
    return keys


@pytest.mark.shared_data
@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("unit", ["word", "auto"])
def test_shingle_batch_equals_shingles_on_real_documents(unit: str, kernel: bool) -> None:
    keys = _real_keys()
    flat, counts = shingle_batch(keys, 5, unit, kernel=kernel)
    expected = [shingles(k, ngram=5, unit=unit) for k in keys]  # type: ignore[arg-type]
    assert counts.tolist() == [len(e) for e in expected]
    assert flat == [s for e in expected for s in e]


@pytest.mark.shared_data
@pytest.mark.parametrize(("scheme", "hashname"), [("affine32", "sha1"), ("legacy", "sha1"), ("affine32", "xxh32")])
def test_batch_signatures_equal_datasketch_on_real_documents(scheme: str, hashname: str) -> None:
    """The stage's path (shingle_batch -> hash_shingles -> signatures_from_hashes) vs MinHash."""
    import xxhash

    keys = _real_keys()
    flat, counts = shingle_batch(keys, 5, "auto")
    ours = signatures_from_hashes(hash_shingles(flat, hashname), counts, 128, 1, scheme)  # type: ignore[arg-type]
    hashfunc = xxhash.xxh32_intdigest if hashname == "xxh32" else None
    for key, row in zip(keys, ours, strict=True):
        m = MinHash(num_perm=128, seed=1, scheme=scheme, hashfunc=hashfunc)
        for s in shingles(key, ngram=5, unit="auto"):
            m.update(s)
        assert np.array_equal(row, m.hashvalues)


@pytest.mark.parametrize("kernel", [True, False], ids=["numba", "numpy"])
def test_many_texts_without_separators_between_them(kernel: bool) -> None:
    """Texts that start and end with a word character: the batch buffer needs a space between
    every two of them (a buffer sized to the input alone would overflow)."""
    texts = ["a", "b", "Cd", "e f", "G"] * 500
    flat, counts = shingle_batch(texts, 1, "word", kernel=kernel)
    assert counts.tolist() == [1, 1, 1, 2, 1] * 500
    assert flat == [b"a", b"b", b"cd", b"e", b"f", b"g"] * 500

"""The embedded sample data set: small files in every supported shape, written by corpusmill.

``conf/local.yaml`` reads the copy committed under ``conf/samples/``; ``corpusmill samples DIR``
writes the same files anywhere (tests use it for fixtures). Content is generated from a fixed seed
so the files are the same on every machine. Some records are broken on purpose, so that a run on
the sample shows rejects with reasons.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
from collections.abc import Callable

WORDS = ("data model train token corpus spark river mountain history science music garden city "
         "language market energy water light window paper number system network memory planet "
         "story teacher student kitchen recipe weather ocean forest engine question answer").split()
ZH = "数据模型训练语料山河历史科学音乐花园城市语言市场能源水光窗纸数字系统网络记忆星球故事老师学生厨房天气海洋森林"


def _sentence(rng: random.Random, n: int = 12) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int = 6) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(sentences))


def _zh(rng: random.Random, n: int = 60) -> str:
    return "".join(rng.choice(ZH) for _ in range(n)) + "。"


def _jsonl(records: list[object]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as fh:  # mtime 0: same bytes every run
        fh.write(data)
    return buf.getvalue()


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _parquet(records: list[dict[str, object]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buf, compression="zstd")
    return buf.getvalue()


def _files(rng: random.Random) -> dict[str, Callable[[], bytes]]:
    redpajama = [{"text": _paragraph(rng, rng.randint(3, 8)),
                  "meta": {"source": "sample_web", "url": f"https://example.org/{i}", "language": "en"}}
                 for i in range(40)]
    redpajama.append(redpajama[3])  # an exact duplicate, as real crawls have
    arxiv = [{"text": "\\section{Introduction}\n" + _paragraph(rng, 5),
              "meta": {"arxiv_id": f"2401.{i:05d}", "yymm": "2401"}} for i in range(15)]
    content = [{"content": _paragraph(rng, 3), "src": "forum", "date": f"2024-01-0{i % 9 + 1}"}
               for i in range(10)] + [{"content": _zh(rng), "src": "zh_web"} for _ in range(5)]
    books = "\n".join(_paragraph(rng, 4) for _ in range(20)) + "\n"
    table = [{"text": _paragraph(rng, 4), "url": f"https://example.com/p{i}", "score": round(rng.random(), 3)}
             for i in range(20)]
    alpaca = [{"instruction": _sentence(rng), "input": "" if i % 3 else _sentence(rng),
               "output": _paragraph(rng, 2)} for i in range(30)]
    alpaca[5]["output"] = ""  # nothing to learn from: rejected as empty_turn
    alpaca.append({"instruction": _sentence(rng), "output": _paragraph(rng, 1), "system": "Answer briefly.",
                   "history": [[_sentence(rng), _sentence(rng)]]})
    sharegpt = []
    for i in range(20):
        turns = [{"from": "human", "value": _sentence(rng)}, {"from": "gpt", "value": _paragraph(rng, 2)}]
        if i % 4 == 0:
            turns += [{"from": "human", "value": "What is the weather in Paris?"},
                      {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
                      {"from": "observation", "value": json.dumps({"temp_c": 18, "sky": "clear"})},
                      {"from": "gpt", "value": "It is 18 degrees and clear in Paris."}]
        rec = {"id": f"conv_{i}", "conversations": turns}
        if i % 4 == 0:
            rec["tools"] = json.dumps([{"name": "get_weather", "description": "Current weather",
                                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])
        sharegpt.append(rec)
    sharegpt.append({"id": "broken", "conversations": [{"from": "human", "value": "hi"},
                                                       {"from": "human", "value": "anyone?"}]})
    openai_msgs = [{"messages": [{"role": "system", "content": "You are concise."},
                                 {"role": "user", "content": [{"type": "text", "text": _sentence(rng)}]},
                                 {"role": "assistant", "content": _paragraph(rng, 1)}]} for _ in range(15)]
    prompt_completion = [{"prompt": _sentence(rng), "completion": _paragraph(rng, 2) + "<|endoftext|>"}
                         for _ in range(15)]
    dpo = []
    for _ in range(15):
        prompt = _sentence(rng)
        chosen, rejected = _paragraph(rng, 2), _paragraph(rng, 1)
        dpo.append({"chosen": f"\n\nHuman: {prompt}\n\nAssistant: {chosen}",
                    "rejected": f"\n\nHuman: {prompt}\n\nAssistant: {rejected}"})
    dpo.append({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: hello"})
    pairwise = [{"prompt": _sentence(rng), "response_a": _paragraph(rng, 1), "response_b": _paragraph(rng, 1),
                 "label": i % 2} for i in range(12)]
    ranked = [{"prompt": _sentence(rng), "responses": [_paragraph(rng, 1) for _ in range(3)], "label": i % 3}
              for i in range(6)]
    kto = [{"messages": [{"role": "user", "content": _sentence(rng)},
                         {"role": "assistant", "content": _paragraph(rng, 1)}], "label": i % 2 == 0}
           for i in range(12)]
    csv_label = "Input,Label\n" + "".join(f"\"{_sentence(rng)}\",{rng.choice(['positive', 'negative'])}\n"
                                          for _ in range(12)) + "\"a row with, too many\",fields,here\n"
    tsv_reward = "Input\tReward\n" + "".join(f"{_paragraph(rng, 1)}\t{rng.randint(0, 10) / 10}\n" for _ in range(10))
    messy = (_jsonl([{"text": _paragraph(rng, 2)} for _ in range(5)])
             + b'{"text": "a line cut short by a crash\n'
             + b'{"text": "bytes that are not UTF-8: \xff\xfe"}\n'
             + b'["not", "an", "object"]\n'
             + _jsonl([{"text": "   \n\t "}, {"text": "Control\x07 characters\r\nand CRLF line ends.\u00a0"}]))
    return {
        "cpt/redpajama_web.jsonl.gz": lambda: _gzip(_jsonl(redpajama)),
        "cpt/arxiv.jsonl.zst": lambda: _zstd(_jsonl(arxiv)),
        "cpt/forum_content.jsonl": lambda: _jsonl(content),
        "cpt/books.txt": lambda: books.encode(),
        "cpt/web_table.parquet": lambda: _parquet(table),
        "cpt/messy.jsonl": lambda: messy,
        "sft/alpaca.json": lambda: json.dumps(alpaca, ensure_ascii=False, indent=2).encode(),
        "sft/sharegpt_tools.jsonl": lambda: _jsonl(sharegpt),
        "sft/openai_messages.jsonl": lambda: _jsonl(openai_msgs),
        "sft/prompt_completion.jsonl": lambda: _jsonl(prompt_completion),
        "sft/classification.csv": lambda: csv_label.encode(),
        "preference/hh_transcripts.jsonl.gz": lambda: _gzip(_jsonl(dpo)),
        "preference/pairwise.jsonl": lambda: _jsonl(pairwise),
        "preference/ranked.jsonl": lambda: _jsonl(ranked),
        "preference/kto.json": lambda: json.dumps(kto, ensure_ascii=False, indent=2).encode(),
        "preference/rewards.tsv": lambda: tsv_reward.encode(),
    }


def write_samples(directory: str, seed: int = 7) -> list[str]:
    """Write the sample files under ``directory``; returns their paths."""
    written = []
    for rel, make in _files(random.Random(seed)).items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(make())
        written.append(path)
    return written

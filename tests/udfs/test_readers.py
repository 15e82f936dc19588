"""File formats: sniffing, every layout, byte-range splits, bad bytes. No Spark."""

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from udfs.readers import ReadOptions, iter_file, iter_jsonl, records_of_json, sniff_format

OPTS = ReadOptions()


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def texts(rows):
    return [json.loads(r["raw"]).get("text") for r in rows if not r["error"]]


@pytest.mark.parametrize("name,head,expected", [
    ("a.jsonl", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
    ("a.jsonl", b'[\n  {"a": 1}\n]', "json"),  # a pretty-printed array named .jsonl
    ("a.json", b'{\n  "conversations": []\n}', "json"),
    ("a.json", b'{"a": 1}\n{"a": 2}\n', "jsonl"),  # JSONL named .json
    ("a.bin", b"PAR1....", "parquet"),
    ("a.csv", b"Input,Label\n", "csv"),
    ("a.tsv", b"Input\tReward\n", "tsv"),
    ("a.txt", b"plain words\n", "txt"),
    ("noext", b"plain words\n", "txt"),
])
def test_sniff_format(name, head, expected):
    assert sniff_format(name, head) == expected


def test_jsonl_plain_gzip_zstd_same_records(tmp_path):
    lines = b"".join(json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(50))
    plain = list(iter_file(write(tmp_path, "a.jsonl", lines), "auto", OPTS))
    gz = list(iter_file(write(tmp_path, "a.jsonl.gz", gzip.compress(lines)), "auto", OPTS))
    zst = list(iter_file(write(tmp_path, "a.jsonl.zst", zstandard.ZstdCompressor().compress(lines)), "auto", OPTS))
    assert texts(plain) == texts(gz) == texts(zst) == [f"doc {i}" for i in range(50)]
    assert plain[1]["source_offset"] == len(json.dumps({"text": "doc 0"})) + 1  # byte offset of line 2


@pytest.mark.parametrize("split", [1, 7, 64, 100, 1000])
def test_jsonl_byte_ranges_cover_every_line_once(split):
    data = b"".join(json.dumps({"text": "x" * (i % 13), "i": i}).encode() + b"\n" for i in range(40))
    whole = [r["source_offset"] for r in iter_jsonl(io.BytesIO(data))]
    parts = []
    for start in range(0, len(data), split):
        parts += [r["source_offset"] for r in iter_jsonl(io.BytesIO(data), start, min(start + split, len(data)))]
    assert parts == whole and len(whole) == 40


def test_jsonl_bad_lines_become_errors_and_reading_goes_on(tmp_path):
    data = b'{"text": "ok"}\n{"text": "bad \xff"}\n\n   \n{"text": "after"}\n'
    rows = list(iter_file(write(tmp_path, "a.jsonl", data), "auto", OPTS))
    assert [r["error"] for r in rows] == [None, "invalid_utf8", None]
    assert rows[1]["raw"] == '{"text": "bad \\xff"}'
    assert texts(rows) == ["ok", "after"]


def test_json_layouts():
    assert [r for _, r, _ in records_of_json([{"a": 1}, {"a": 2}])] == [{"a": 1}, {"a": 2}]
    columnar = {"chosen": ["c1", "c2"], "rejected": ["r1", "r2"]}
    assert [r for _, r, _ in records_of_json(columnar)] == [{"chosen": "c1", "rejected": "r1"},
                                                             {"chosen": "c2", "rejected": "r2"}]
    keyed = {"d-1": {"log": []}, "d-2": {"log": [1]}}
    assert [r for _, r, _ in records_of_json(keyed)] == [{"log": [], "_key": "d-1"}, {"log": [1], "_key": "d-2"}]
    single = {"conversations": [{"from": "human", "value": "x"}]}
    assert [r for _, r, _ in records_of_json(single)] == [single]
    # a single preference record whose values are objects is not a dict of records
    pair = {"chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}
    assert [r for _, r, _ in records_of_json(pair)] == [pair]


def test_whole_json_file_that_is_not_json(tmp_path):
    rows = list(iter_file(write(tmp_path, "a.json", b'[{"a": 1}, {"a": '), "auto", OPTS))
    assert len(rows) == 1 and rows[0]["error"] == "malformed_json"


def test_csv_and_tsv(tmp_path):
    csv_data = b'\xef\xbb\xbfInput,Label\n"a, quoted",pos\nplain,neg\nshort\n"x",y,z\n'
    rows = list(iter_file(write(tmp_path, "a.csv", csv_data), "auto", OPTS))
    assert [r["error"] for r in rows] == [None, None, "malformed_csv", "malformed_csv"]
    assert json.loads(rows[0]["raw"]) == {"Input": "a, quoted", "Label": "pos"}
    rows = list(iter_file(write(tmp_path, "a.tsv", b"Input\tReward\nhello\t0.5\n"), "auto", OPTS))
    assert json.loads(rows[0]["raw"]) == {"Input": "hello", "Reward": "0.5"}


def test_txt_line_and_file_units(tmp_path):
    path = write(tmp_path, "a.txt", b"first doc\n\nsecond doc\r\n")
    assert texts(iter_file(path, "auto", OPTS)) == ["first doc", "second doc"]
    assert texts(iter_file(path, "auto", ReadOptions(txt_unit="file"))) == ["first doc\n\nsecond doc\r\n"]


def test_parquet(tmp_path):
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["a", "b"], "n": [1, 2], "blob": [b"\x00\x01", b"ok"]}), buf)
    rows = list(iter_file(write(tmp_path, "t.parquet", buf.getvalue()), "auto", OPTS))
    assert [json.loads(r["raw"]) for r in rows] == [{"text": "a", "n": 1, "blob": "\x00\x01"},
                                                     {"text": "b", "n": 2, "blob": "ok"}]


def test_truncated_gzip_keeps_what_was_read_and_rejects_the_rest(tmp_path):
    data = gzip.compress(b"".join(json.dumps({"text": f"d{i}"}).encode() + b"\n" for i in range(2000)))
    rows = list(iter_file(write(tmp_path, "cut.jsonl.gz", data[: len(data) // 2]), "auto", OPTS))
    assert rows[-1]["error"] == "unreadable_file"
    assert 0 < len(rows) - 1 < 2000 and all(r["error"] is None for r in rows[:-1])

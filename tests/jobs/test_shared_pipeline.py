"""Every real data file in ../shared/data through the Spark pipeline under format: auto."""

from __future__ import annotations

import gzip
import json
import os
import re

import pytest

from jobs.common.config import load
from jobs.pipeline import run

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def data_files(root):
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if not name.endswith((".md", ".yaml")):
                files.append(os.path.join(dirpath, name))
    return sorted(files)


def source_name(root, path):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.relpath(path, root))


def count_raw_records(path):
    """Records in a file, counted with plain json/gzip (independent of corpusmill's readers)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    try:
        obj = json.loads(text)
    except ValueError:
        return sum(1 for line in text.splitlines() if line.strip())
    if isinstance(obj, list):
        return len(obj)
    values = list(obj.values())
    if len(values) > 1 and all(isinstance(v, list) for v in values):
        return len(values[0])  # columnar
    if all(isinstance(v, dict) for v in values) and "chosen" not in obj:
        return len(values)  # dict of records
    return 1


@pytest.fixture(scope="module")
def shared_run(spark, shared_data, tmp_path_factory):
    files = data_files(shared_data)
    lines = ["sources:"]
    for path in files:
        lines += [f"  - name: {source_name(shared_data, path)}", f"    path: '{path}'"]
    out = tmp_path_factory.mktemp("shared") / "out"
    # ingest + normalize accounting only: later stages' drops are tested elsewhere
    cfg = load(None, [f"output.path={out}", "filter.enabled=false", "dedup.enabled=false"],
               text="\n".join(lines) + "\n")
    return files, run(cfg, log=lambda _m: None)


def test_every_file_is_read_and_accounted_for(shared_run, shared_data):
    files, manifest = shared_run
    assert manifest["balanced"] and len(manifest["sources"]) == len(files) >= 60
    for path in files:
        c = manifest["sources"][source_name(shared_data, path)]["counts"]
        assert c["raw_records"] == count_raw_records(path), path
        assert "unmappable" not in c["rejected"] and "unreadable_file" not in c["rejected"], (path, c["rejected"])


@pytest.mark.parametrize("rel,outputs,rejected", [
    ("llamafactory/alpaca_en_demo.json", {"sft": 999}, {}),
    ("llamafactory/alpaca_zh_demo.json", {"sft": 1000}, {}),
    ("llamafactory/dpo_en_demo.json", {"preference": 300}, {}),
    ("llamafactory/kto_en_demo.json", {"preference": 300}, {}),
    ("llamafactory/glaive_toolcall_en_demo.json", {"sft": 300}, {}),
    ("llamafactory/c4_demo.jsonl", {"cpt": 300}, {}),
    ("llamafactory/wiki_demo.txt", {"cpt": 30}, {}),
    ("hh-rlhf/harmless-base/test.jsonl.gz", {"preference": 2304}, {"bad_role_order": 4, "empty_response": 4}),
    ("self-instruct/seed_tasks.jsonl", {"sft": 175}, {}),
    ("axolotl/tests/fixtures/conversation.missingturns.json", {}, {"empty_turn": 1}),
    ("data-juicer/demos/data_visualization_diversity/data/demo-dataset.jsonl", {"sft": 29}, {}),
    ("fastchat/data/dummy_conversation.json", {"sft": 500}, {}),
    ("firefly/data/dummy_dpo.jsonl", {"preference": 16}, {}),
])
def test_per_file_counts(shared_run, shared_data, rel, outputs, rejected):
    _, manifest = shared_run
    c = manifest["sources"][source_name(shared_data, str(shared_data / rel))]["counts"]
    assert (c["output_by_kind"], c["rejected"], c["dropped"]) == (outputs, rejected, {})

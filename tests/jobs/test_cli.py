"""The corpusmill command line: inspect, validate, config errors, samples."""

from __future__ import annotations

import filecmp
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.samples import write_samples


def test_inspect_json_lines(capsys, samples_dir):
    assert main(["inspect", str(samples_dir / "sft/sharegpt_tools.jsonl"), "--limit", "4", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and all(r["kind"] == "sft" and r["shape"] == "sharegpt" for r in lines)
    assert [m["role"] for m in lines[0]["messages"]] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert json.loads(lines[0]["messages"][3]["tool_calls"]) == [{"name": "get_weather", "arguments": {"city": "Paris"}}]


def test_inspect_rejects_are_shown_on_request(capsys, samples_dir):
    assert main(["inspect", str(samples_dir / "cpt/messy.jsonl"), "--limit", "20", "--json", "--rejects"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["reject_reason"] for r in rows if "reject_reason" in r) == [
        "empty_text", "invalid_utf8", "malformed_json", "not_an_object"]


def test_inspect_kind_override(capsys, samples_dir):
    assert main(["inspect", str(samples_dir / "sft/alpaca.json"), "--kind", "preference", "--json",
                 "--limit", "2", "--rejects"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["reject_reason"] for r in rows} == {"unknown_shape"}


def test_validate_reports_detection(capsys):
    assert main(["validate", "conf/local.yaml", "--sample", "50"]) == 0
    out = capsys.readouterr().out
    assert "config OK: 16 sources" in out
    row = next(line for line in out.splitlines() if line.startswith("hh_transcripts"))
    assert "jsonl 16" in row and "chosen_rejected 16" in row and "identical_responses 1" in row


def test_config_error_exits_2_with_the_fix(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - name: a\n    path: conf/local.yaml\n    fromat: json\n")
    assert main(["validate", str(bad)]) == 2
    assert "unknown key 'fromat'; did you mean 'format'?" in capsys.readouterr().err


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "validate", "inspect", "samples"):
        assert command in out


def test_committed_samples_match_the_generator(tmp_path):
    """conf/samples is generator output; regenerate with `corpusmill samples conf/samples`."""
    write_samples(str(tmp_path))
    committed = Path("conf/samples")
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    for rel in generated:
        a, b = tmp_path / rel, committed / rel
        if rel.suffix == ".gz":
            assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes()), rel
        elif rel.suffix != ".parquet":  # parquet bytes embed the writer version
            assert filecmp.cmp(a, b, shallow=False), rel
        else:
            import pyarrow.parquet as pq

            assert pq.read_table(a).equals(pq.read_table(b))


@pytest.mark.parametrize("path", ["conf/local.yaml"])
def test_shipped_config_paths_exist(path):
    from jobs.common.config import load

    load(path)

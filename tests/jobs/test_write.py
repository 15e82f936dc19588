"""The write stage: sharded layout, manifest, verify, atomic publish, byte-identical re-runs, exports.

One output is built stage by stage in a module fixture (``<out>/_work`` keeps every stage's result),
so the tests that re-run or break the write stage only pay for the write stage.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import xxhash

import jobs.write
from jobs.cli import main
from jobs.common import commit
from jobs.pipeline import STAGES, run
from tests.jobs.test_pipeline import EXPECTED, sample_config
from udfs.exports import check_llamafactory

SETTINGS = ["split.val=0.1", "split.test=0.1", "output.shard_rows=20",
            "output.export=[unified, llamafactory, openai, hf]"]
SHARD = re.compile(r"part-(\d{5})-of-(\d{5})\.jsonl\.gz$")
KINDS = ("cpt", "sft", "preference")


def quiet(_m: str) -> None:
    pass


def files_of(root: Path) -> dict[str, bytes]:
    """Every file the write stage publishes but the manifest -> its bytes (a report module's files
    beside them belong to the report stage)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (p.relative_to(root).parts[0] in jobs.write.OWNED or p == root / "_SUCCESS")}


def manifest_of(root: Path) -> dict:
    """The manifest without what describes the run rather than the data: timings (``timings_s`` at
    the top and in any stage report) and ``progress`` (elapsed times of the stages this process ran)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("timings_s", "progress")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip(json.loads((root / "manifest.json").read_text()))


def jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def staged(spark, samples_dir, tmp_path_factory):
    """The samples through every stage one at a time; ``write`` publishes; a snapshot is kept."""
    out = tmp_path_factory.mktemp("write") / "out"
    cfg = sample_config(samples_dir, out, SETTINGS)
    for stage in STAGES:
        run(cfg, stage=stage, log=quiet)
    snapshot = tmp_path_factory.mktemp("snapshot") / "out"
    shutil.copytree(out, snapshot, ignore=shutil.ignore_patterns("_work"))
    return out, cfg, snapshot


def with_work(staged, tmp_path: Path, extra: list[str] | None = None, samples_dir=None):
    """A new output path holding a copy of the fixture's stage results, and its config."""
    out, _, _ = staged
    new = tmp_path / "out"
    shutil.copytree(out / "_work", new / "_work")
    return new, sample_config(samples_dir, new, SETTINGS + (extra or []))


# --------------------------------------------------------------------------- layout and manifest
def test_layout_shards_of_twenty_rows(staged):
    out, _, _ = staged
    for kind in KINDS:
        assert sorted(p.name for p in (out / kind).iterdir()) == ["test", "train", "val"]
        for split_dir in (out / kind).iterdir():
            names = sorted(p.name for p in split_dir.iterdir())
            found = [SHARD.match(n) for n in names]
            assert all(found), names
            total = int(found[0].group(2))
            assert [int(m.group(1)) for m in found] == list(range(total))
            rows = sum(len(jsonl(p)) for p in split_dir.iterdir())
            assert total == max(1, math.ceil(rows / 20)), (kind, split_dir.name)
    assert [p.name for p in (out / "rejected").iterdir()] == ["part-00000-of-00001.jsonl.gz"]
    assert (out / "_SUCCESS").exists() and not (out / "_staging").exists()


def test_shards_are_sorted_by_id_and_assigned_by_its_hash(staged):
    """Shard = Spark's xxhash64(id) (seed 42) mod N, recomputed here with the xxhash package."""
    out, _, _ = staged
    for path in sorted(out.glob("*/*/part-*.jsonl.gz")):
        index, total = (int(x) for x in SHARD.search(path.name).groups())
        ids = [r["id"] for r in jsonl(path)]
        assert ids == sorted(ids), path
        for id_ in ids:
            h = xxhash.xxh64_intdigest(id_.encode(), seed=42)
            assert (h - (1 << 64) if h >= 1 << 63 else h) % total == index


def test_gzip_headers_carry_no_time_or_name(staged):
    out, _, _ = staged
    for path in out.rglob("*.gz"):
        head = path.read_bytes()[:10]
        assert head[3] & 0x08 == 0 and head[4:8] == b"\0\0\0\0", path  # no FNAME flag, mtime 0


def test_manifest_lists_every_file_with_rows_bytes_and_sha256(staged):
    out, cfg, _ = staged
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"corpusmill_version", "config_sha256", "config", "counts", "sources", "stages", "splits",
            "outputs", "shards", "files", "balanced", "timings_s"} <= set(manifest)
    assert manifest["config_sha256"] == cfg.digest() and manifest["balanced"] is True
    listed = {e["path"]: e for e in manifest["shards"] + manifest["files"]}
    assert set(listed) == set(files_of(out)) - {"_SUCCESS"}
    for rel, entry in listed.items():
        data = (out / rel).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"]), rel
        if rel.endswith(".jsonl.gz") or rel.endswith(".jsonl"):
            lines = (gzip.decompress(data) if rel.endswith(".gz") else data).count(b"\n")
            assert lines == entry["rows"], rel


def test_counts_tokens_and_splits_come_from_the_files(staged):
    """Counts in the manifest equal what the files hold (whatever the filter/dedup stages decided)."""
    out, _, _ = staged
    manifest = json.loads((out / "manifest.json").read_text())
    rows: dict[str, Counter] = defaultdict(Counter)
    tokens: dict[str, Counter] = defaultdict(Counter)
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for path in out.glob("*/*/part-*.jsonl.gz"):
        for r in jsonl(path):
            assert r["split"] == path.parent.name and r["kind"] == path.parent.parent.name
            rows[r["split"]][r["source"]] += 1
            tokens[r["split"]][r["source"]] += r.get("n_tokens") or 0
            by_kind[r["source"]][r["kind"]] += 1
    rejected = Counter((r["source"], r["reason"]) for p in out.glob("rejected/*.gz") for r in jsonl(p))
    dropped = Counter((r["source"], r["reason"]) for p in out.glob("dropped/*.gz") for r in jsonl(p))
    for name, (_, rejects) in EXPECTED.items():
        c = manifest["sources"][name]["counts"]
        assert c["output_by_kind"] == dict(by_kind[name]), name
        assert c["rejected"] == rejects == {k[1]: n for k, n in rejected.items() if k[0] == name}, name
        assert c["dropped"] == {k[1]: n for k, n in dropped.items() if k[0] == name}, name
        assert c["input"] == c["output"] + sum(c["rejected"].values()) + sum(c["dropped"].values())
    for split, entry in manifest["splits"].items():
        assert {s: v["rows"] for s, v in entry["sources"].items()} == dict(rows[split])
        assert entry["tokens"] == sum(tokens[split].values())
    total = manifest["counts"]
    assert total["output_by_split"] == {s: sum(rows[s].values()) for s in ("train", "val", "test")}
    assert sum(total["output_by_split"].values()) == total["output"]
    # 10% of the output each, every source contributing in proportion (largest remainder)
    assert total["output_by_split"]["val"] == total["output_by_split"]["test"] == round(0.1 * total["output"])
    assert manifest["stages"]["split"]["totals"] == total["output_by_split"]


def test_manifest_holds_no_credentials(staged, samples_dir, tmp_path):
    out, cfg = with_work(staged, tmp_path, ["output.storage_options.secret=hunter2",
                                            "output.storage_options.endpoint_url=http://10.1.2.3:9000"],
                         samples_dir)
    run(cfg, stage="write", log=quiet)
    text = (out / "manifest.json").read_text()
    assert "hunter2" not in text and "10.1.2.3" not in text
    assert json.loads(text)["config"]["output"]["storage_options"] == {"endpoint_url": "***", "secret": "***"}


# --------------------------------------------------------------------------- verify
def test_verify_passes_then_names_each_broken_shard(staged, tmp_path, capsys):
    _, _, snapshot = staged
    copy = tmp_path / "copy"
    shutil.copytree(snapshot, copy)
    assert main(["verify", str(copy)]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    victim = sorted(copy.glob("sft/train/part-*.jsonl.gz"))[1]
    rows = gzip.decompress(victim.read_bytes()).splitlines(keepends=True)
    victim.write_bytes(gzip.compress(b"".join(rows[:-1]), mtime=0))  # one record lost
    missing = sorted(copy.glob("hf/cpt/train-*.parquet"))[0]
    missing.unlink()
    (copy / "cpt/val/part-00007-of-00009.jsonl.gz").write_bytes(b"")
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    rel = str(victim.relative_to(copy))
    assert f"{rel}: {len(rows) - 1} rows, manifest says {len(rows)}" in err and f"{rel}: sha256" in err
    assert f"{missing.relative_to(copy)}: missing" in err
    assert "cpt/val/part-00007-of-00009.jsonl.gz: not in the manifest" in err


# --------------------------------------------------------------------------- idempotence and atomicity
@pytest.mark.slow
def test_whole_rerun_is_byte_identical(spark, staged):
    """A whole run over the same output (stages in one application this time) changes no byte."""
    out, cfg, snapshot = staged
    run(cfg, log=quiet)
    assert files_of(out) == files_of(snapshot)
    assert manifest_of(out) == manifest_of(snapshot)


def test_failure_inside_the_writers_publishes_nothing(spark, staged, samples_dir, tmp_path, monkeypatch):
    out, cfg = with_work(staged, tmp_path, samples_dir=samples_dir)
    original = jobs.write._partition_writer

    def failing(*args, **kwargs):
        inner = original(*args, **kwargs)

        def run_then_fail(batches):
            for result in inner(batches):
                yield result
                raise RuntimeError("injected failure after the first shard")

        return run_then_fail

    monkeypatch.setattr(jobs.write, "_partition_writer", failing)
    with pytest.raises(Exception, match="injected failure"):
        run(cfg, stage="write", log=quiet)
    left = {p.name for p in out.iterdir()}
    # no _SUCCESS, no manifest, no shard published (a task Spark is still cancelling may leave a
    # file under _staging, which the next run removes)
    assert left <= {"_work", "_staging"}, left
    monkeypatch.undo()
    run(cfg, stage="write", log=quiet)
    _, _, snapshot = staged
    expected = {k: v for k, v in files_of(snapshot).items() if k != "hf/README.md"}  # README names the config hash
    assert {k: v for k, v in files_of(out).items() if k != "hf/README.md"} == expected


def test_failure_while_publishing_then_rerun_equals_an_uninterrupted_run(spark, staged, monkeypatch):
    out, cfg, snapshot = staged
    original = commit.publish

    def half(staging, dest, entries, files, storage_options=None):
        first = entries[0]
        original(staging, dest, [first], [f for f in files if f.startswith(first + "/")], storage_options)
        raise OSError("injected failure mid-publish")

    monkeypatch.setattr(commit, "publish", half)
    with pytest.raises(OSError, match="mid-publish"):
        run(cfg, stage="write", log=quiet)
    assert not (out / "_SUCCESS").exists() and not (out / "manifest.json").exists()
    assert not (out / "_staging").exists()
    assert main(["verify", str(out)]) == 1
    monkeypatch.undo()
    run(cfg, stage="write", log=quiet)
    assert files_of(out) == files_of(snapshot)
    assert manifest_of(out) == manifest_of(snapshot)


@pytest.mark.parametrize("settings,suffix", [(["output.compression=zstd"], ".jsonl.zst"),
                                             (["output.compression=none"], ".jsonl"),
                                             (["output.format=parquet"], ".parquet")])
def test_other_formats_hold_the_same_records(spark, staged, samples_dir, tmp_path, settings, suffix):
    out, cfg = with_work(staged, tmp_path, settings, samples_dir)
    run(cfg, stage="write", log=quiet)
    assert main(["verify", str(out)]) == 0
    _, _, snapshot = staged
    for kind in KINDS:
        shards = sorted((out / kind / "train").iterdir())
        assert shards and all(p.name.endswith(suffix) for p in shards)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            ids = [i for p in shards for i in pq.read_table(p).column("id").to_pylist()]
        else:
            import zstandard

            ids = []
            for p in shards:
                data = zstandard.ZstdDecompressor().stream_reader(p.open("rb")).read() if suffix == ".jsonl.zst" \
                    else p.read_bytes()
                ids += [json.loads(line)["id"] for line in data.decode().splitlines()]
        expected = [r["id"] for p in sorted((snapshot / kind / "train").iterdir()) for r in jsonl(p)]
        assert ids == expected


# --------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def hf_datasets(tmp_path_factory):
    datasets = pytest.importorskip("datasets", reason="the export tests load files with `datasets` "
                                   "(pip install datasets)")
    datasets.disable_progress_bars()
    return datasets, str(tmp_path_factory.mktemp("hf-cache"))


def test_llamafactory_export_loads_with_datasets_and_passes_role_rules(staged, hf_datasets):
    datasets, cache = hf_datasets
    out, _, _ = staged
    root = out / "llamafactory"
    info = json.loads((root / "dataset_info.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())["outputs"]["llamafactory"]
    assert set(info) == {f"corpusmill_{d}_{s}" for d, per in manifest["datasets"].items() for s, n in per.items() if n}
    assert {"corpusmill_cpt_train", "corpusmill_sft_alpaca_train", "corpusmill_sft_sharegpt_train",
            "corpusmill_preference_ranking_train", "corpusmill_preference_kto_train"} <= set(info)
    loaded = 0
    for name, entry in info.items():
        folder = root / entry["file_name"]
        files = sorted(str(p) for p in folder.iterdir())
        assert {Path(f).suffix for f in files} == {".jsonl"}  # LLaMA-Factory wants one file type per folder
        ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=cache)
        assert set(entry.get("columns", {}).values()) <= set(ds.column_names), name
        dataset, split = entry["file_name"].split("/")
        assert len(ds) == manifest["datasets"][dataset][split]
        for example in ds:
            assert check_llamafactory(example, entry) is None, (name, example)
        loaded += len(ds)
    written = json.loads((out / "manifest.json").read_text())["counts"]["output"]
    assert loaded + sum(manifest["skipped"].values()) == written
    scored = sum(1 for p in out.glob("preference/*/*.gz") for r in jsonl(p) if r["shape"] == "scored")
    assert scored and manifest["skipped"] == {"no_label": scored}  # reward-regression texts have no LF format


def test_openai_export_shapes(staged):
    out, _, _ = staged
    chat = [r for p in sorted((out / "openai/sft").rglob("*.jsonl")) for r in jsonl(p)]
    assert len(chat) == sum(len(jsonl(p)) for p in out.glob("sft/*/*.gz"))
    for r in chat:
        roles = [m["role"] for m in r["messages"] if m["role"] != "system"]
        assert roles[0] == "user" and roles[-1] == "assistant"
    tool_turns = [m for r in chat for m in r["messages"] if m["role"] == "tool"]
    assert tool_turns and all(m["tool_call_id"].startswith("call_") for m in tool_turns)
    pref = [r for p in sorted((out / "openai/preference").rglob("*.jsonl")) for r in jsonl(p)]
    assert pref and all(set(r) == {"input", "preferred_output", "non_preferred_output"} for r in pref)
    assert all(r["input"]["messages"][-1]["role"] == "user" for r in pref)


def test_hf_export_loads_with_three_splits(staged, hf_datasets):
    datasets, cache = hf_datasets
    out, _, _ = staged
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    for kind in KINDS:
        files = {s: sorted(str(p) for p in (out / "hf" / kind).glob(f"{s}-*.parquet"))
                 for s in ("train", "validation", "test")}
        ds = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
        assert sorted(ds) == ["test", "train", "validation"]
        assert {s: len(ds[s]) for s in ds} == outputs["hf"]["datasets"][kind]
        assert {s: len(ds[s]) for s in ds} == {"train": outputs[kind]["splits"]["train"]["rows"],
                                                "validation": outputs[kind]["splits"]["val"]["rows"],
                                                "test": outputs[kind]["splits"]["test"]["rows"]}
    card = datasets.load_dataset(str(out / "hf"), "sft", cache_dir=cache)  # the README's configs
    assert sorted(card) == ["test", "train", "validation"] and card["validation"][0]["split"] == "val"


# --------------------------------------------------------------------------- shard files (no Spark)
def test_shard_count_from_rows_or_bytes():
    from jobs.common.shards import shard_count

    mib = 1 << 20
    assert shard_count(0, 0, None, mib) == 1  # an empty split still gets its one (empty) shard
    assert shard_count(45, 0, 20, mib) == 3
    assert shard_count(1000, 5 * mib + 1, None, mib) == 6
    assert shard_count(3, 10 * mib, None, mib) == 3  # never more shards than rows


@pytest.mark.parametrize("fmt,compression", [("jsonl", "gzip"), ("jsonl", "zstd"), ("jsonl", "none"),
                                             ("parquet", "zstd")])
def test_shard_bytes_do_not_depend_on_how_rows_arrive(tmp_path, monkeypatch, fmt, compression):
    import pyarrow as pa

    from jobs.common import shards

    monkeypatch.setattr(shards, "PARQUET_ROW_GROUP", 64)
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    rows = [{"id": f"{i:04d}", "text": "word " * (i % 17)} for i in range(500)]
    digests = []
    ext = shards.extension(fmt, compression)
    for name, pieces in ((f"one.{ext}", [rows]), (f"many.{ext}", [rows[i:i + 37] for i in range(0, 500, 37)])):
        writer = shards.ShardWriter(str(tmp_path / name), fmt, compression, schema)
        for piece in pieces:
            if fmt == "parquet":
                writer.write_table(pa.Table.from_pylist(piece, schema=schema))
            else:
                writer.write_rows(piece)
        done = writer.close()
        data = (tmp_path / name).read_bytes()
        assert done == {"rows": 500, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert shards.count_rows(str(tmp_path / name)) == 500
        digests.append(done["sha256"])
    assert digests[0] == digests[1]

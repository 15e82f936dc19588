"""End to end against a real S3 API: moto's server on loopback, sources read from and output written to
``s3://`` through fsspec/s3fs inside the executors, then ``corpusmill verify`` on the bucket.

The Spark session is shared by the whole test run and its Python workers keep the environment they
started with, so the pipeline gets the endpoint and keys through ``storage_options``; the driver-side
``verify`` gets them from the standard AWS environment variables instead, so both paths are covered.
"""

from __future__ import annotations

import json
import socket

import pytest

from jobs.cli import main
from jobs.common.config import load
from jobs.pipeline import run

BUCKET = "corpusmill-test"
SAMPLES = ["cpt/redpajama_web.jsonl.gz", "cpt/arxiv.jsonl.zst", "cpt/messy.jsonl", "sft/alpaca.json",
           "sft/sharegpt_tools.jsonl", "preference/pairwise.jsonl", "preference/kto.json"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3(samples_dir):
    pytest.importorskip("moto.server", reason="needs moto[server] (pip install -e '.[dev]')")
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {"key": "moto-key-id", "secret": "moto-secret-value", "endpoint_url": endpoint}
    fs = S3FileSystem(skip_instance_cache=True, **options)
    fs.mkdir(BUCKET)
    for rel in SAMPLES:
        fs.put_file(str(samples_dir / rel), f"{BUCKET}/in/{rel}")
    yield endpoint, options, fs
    server.stop()


@pytest.fixture(scope="module")
def s3_run(spark, s3):
    endpoint, options, fs = s3
    opts = json.dumps(options)
    text = f"""
sources:
  - {{name: web, path: "s3://{BUCKET}/in/cpt/*.jsonl*", storage_options: {opts}}}
  - {{name: alpaca, path: "s3://{BUCKET}/in/sft/alpaca.json", storage_options: {opts}}}
  - {{name: sharegpt, path: "s3://{BUCKET}/in/sft/sharegpt_tools.jsonl", storage_options: {opts}}}
  - {{name: prefs, path: "s3://{BUCKET}/in/preference/", storage_options: {opts}}}
output:
  path: s3://{BUCKET}/out
  shard_rows: 10
  export: [unified, llamafactory, hf]
  storage_options: {opts}
split: {{val: 0.2, test: 0.2}}
spark: {{master: "local[2]"}}
"""
    cfg = load(None, [], text=text)
    manifest = run(cfg, log=lambda _m: None)
    return cfg, manifest


def test_sources_listed_and_read_from_s3(s3_run):
    _, manifest = s3_run
    sources = manifest["sources"]
    assert sources["web"]["files"] == 3  # the glob matched .jsonl.gz, .jsonl.zst and .jsonl
    assert sources["prefs"]["files"] == 2  # a "directory" prefix: every data file below it
    assert sources["web"]["counts"]["rejected"] == {"empty_text": 1, "invalid_utf8": 1, "malformed_json": 1,
                                                    "not_an_object": 1}
    assert manifest["balanced"] and manifest["counts"]["input"] == 41 + 15 + 10 + 31 + 21 + 12 + 12


def test_output_published_on_s3_and_verified_with_the_aws_environment(s3, s3_run, monkeypatch, capsys):
    endpoint, options, fs = s3
    _, manifest = s3_run
    assert fs.exists(f"{BUCKET}/out/_SUCCESS") and fs.exists(f"{BUCKET}/out/manifest.json")
    assert not fs.exists(f"{BUCKET}/out/_staging") or not fs.find(f"{BUCKET}/out/_staging")
    published = {p[len(f"{BUCKET}/out/"):] for p in fs.find(f"{BUCKET}/out")}
    assert {s["path"] for s in manifest["shards"]} <= published
    assert "llamafactory/dataset_info.json" in published and "hf/README.md" in published
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["verify", f"s3://{BUCKET}/out"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"OK: {len(manifest['shards']) + len(manifest['files'])} files")


def test_verify_catches_a_changed_object(s3, s3_run, monkeypatch, capsys):
    endpoint, options, fs = s3
    _, manifest = s3_run
    victim = next(s["path"] for s in manifest["shards"] if s["path"].startswith("sft/train/") and s["rows"])
    original = fs.cat_file(f"{BUCKET}/out/{victim}")
    fs.pipe_file(f"{BUCKET}/out/{victim}", original[:-1])
    try:
        for name, value in (("AWS_ENDPOINT_URL", endpoint), ("AWS_ACCESS_KEY_ID", options["key"]),
                            ("AWS_SECRET_ACCESS_KEY", options["secret"]), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        assert main(["verify", f"s3://{BUCKET}/out"]) == 1
        assert f"MISMATCH {victim}:" in capsys.readouterr().err
    finally:
        fs.pipe_file(f"{BUCKET}/out/{victim}", original)


def test_no_credentials_or_endpoint_in_the_manifest(s3, s3_run):
    endpoint, options, fs = s3
    text = fs.cat_file(f"{BUCKET}/out/manifest.json").decode()
    for secret in (options["secret"], options["key"], endpoint, endpoint.split("//")[1]):
        assert secret not in text
    assert json.loads(text)["config"]["output"]["storage_options"] == {k: "***" for k in sorted(options)}

"""Config validation happens before Spark and names the fix."""

import pytest

from jobs.common.config import ConfigError, load

BASE = """
sources:
  - name: a
    path: {path}
output:
  path: /tmp/out
"""


def cfg_text(tmp_path, extra=""):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "x"}\n')
    return BASE.format(path=data) + extra


def test_minimal_config_defaults(tmp_path):
    cfg = load(None, text=cfg_text(tmp_path))
    src = cfg.sources[0]
    assert (src.format, src.kind, src.shape, src.txt_unit) == ("auto", "auto", "auto", "line")
    assert cfg.spark.master == "local[*]" and cfg.output.format == "jsonl"


@pytest.mark.parametrize("extra,message", [
    ("spark:\n  mastr: local\n", "config.spark: unknown key 'mastr'; did you mean 'master'?"),
    ("outptu:\n  path: x\n", "did you mean 'output'?"),
    ("ingest:\n  split_bytes: 10\n", "ingest.split_bytes: must be at least 1048576"),
    ("output:\n  path: /tmp/o\n  format: csv\n", "output.format: 'csv' is not one of jsonl, parquet"),
])
def test_bad_top_level_keys_and_values(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        load(None, text=cfg_text(tmp_path, extra))


@pytest.mark.parametrize("override,message", [
    ("sources.0.format=jsn", r"sources\[0\] \(a\).format: 'jsn' is not one of .* \(did you mean 'json'\?\)"),
    ("sources.0.kind=chat", r"'chat' is not one of auto, cpt, sft, preference"),
    ("sources.0.shape=alpacca", r"did you mean 'alpaca'"),
    ("sources.0.columns={promt: q}", r"columns: unknown key 'promt'; did you mean 'prompt'"),
    ("sources.0.tags={role_tag: from}", r"tags describe sharegpt turns; also set columns.messages"),
    ("sources.0.path=/no/such/file.jsonl", r"matches no file \(relative paths resolve against"),
    ("sources.0.name=bad name", r"name: use letters"),
    ("sources.0.txt_unit=3", r"txt_unit: expected str, got int"),
    ("sources.5.name=x", r"'5' is not an index of a 1-item list"),
    ("nokey", r"expected dotted.key=value"),
    ("dedup.local_components_max_edges=-1", r"local_components_max_edges >= 0 \(0 = always the distributed rounds\)"),
    ("dedup.max_iterations=0", r"dedup.max_iterations must be >= 1"),
])
def test_set_overrides_are_validated(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load(None, [override], text=cfg_text(tmp_path))


def test_set_overrides_apply(tmp_path):
    cfg = load(None, ["output.path=/tmp/elsewhere", "spark.conf.spark.sql.shuffle.partitions=3",
                      "sources.0.kind=cpt"], text=cfg_text(tmp_path))
    assert cfg.output.path == "/tmp/elsewhere" and cfg.sources[0].kind == "cpt"
    assert cfg.spark.conf == {"spark.sql.shuffle.partitions": 3}


def test_duplicate_names_and_empty_sources(tmp_path):
    text = cfg_text(tmp_path).replace("sources:\n", "sources:\n  - name: a\n    path: /tmp\n")
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load(None, text=text)
    with pytest.raises(ConfigError, match="the list is empty"):
        load(None, text="sources: []\n")
    with pytest.raises(ConfigError, match="missing 'sources'"):
        load(None, text="output: {path: x}\n")


def test_credentials_never_reach_the_manifest(tmp_path):
    cfg = load(None, ["sources.0.storage_options={key: AKIA, secret: s3cr3t, endpoint_url: http://x}"],
               text=cfg_text(tmp_path))
    public = cfg.public_dict()["sources"][0]["storage_options"]
    assert public == {"key": "***", "secret": "***", "endpoint_url": "http://x"}
    assert "s3cr3t" not in str(cfg.public_dict()) and len(cfg.digest()) == 64


def test_shipped_configs_validate():
    cfg = load("conf/local.yaml")
    assert len(cfg.sources) == 16 and cfg.spark.master == "local[2]"

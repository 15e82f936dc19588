"""Typed, validated configuration (YAML), checked on the driver before Spark starts.

Unknown keys, wrong types and impossible values raise ``ConfigError`` with a message that names the
key and the fix. ``--set dotted.key=value`` overrides go through the same validation.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from udfs.readers import FORMATS
from udfs.shapes import SHAPES

KIND_CHOICES = ("auto", "cpt", "sft", "preference")
COLUMN_NAMES = ("prompt", "query", "response", "history", "messages", "system", "tools", "chosen",
                "rejected", "kto_tag", "images", "videos", "audios")
TAG_NAMES = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag",
             "function_tag", "system_tag")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A configuration problem, reported before any Spark work."""


@dataclass
class SourceConfig:
    name: str  # unique; used in ids, counts and output lineage
    path: Any  # file, directory, glob or fsspec URL; or a list of them
    format: str = "auto"  # auto | jsonl | json | parquet | csv | tsv | txt
    kind: str = "auto"  # auto | cpt | sft | preference
    shape: str = "auto"  # auto, or pin one shape (alpaca, sharegpt, chosen_rejected, ...)
    text_field: str | None = None  # cpt: the key holding the document text
    columns: dict[str, str] = field(default_factory=dict)  # LLaMA-Factory `columns`
    tags: dict[str, str] = field(default_factory=dict)  # LLaMA-Factory `tags`
    formatting: str | None = None  # LLaMA-Factory `formatting`: alpaca | sharegpt (inferred)
    txt_unit: str = "line"  # txt: one document per line, or per file
    csv_delimiter: str | None = None  # csv/tsv: default "," / tab
    storage_options: dict[str, Any] = field(default_factory=dict)  # fsspec options for this source

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


@dataclass
class OutputConfig:
    path: str = "out/corpusmill"  # local path or fsspec URL
    format: str = "jsonl"  # jsonl (gzip) | parquet (zstd)
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestConfig:
    split_bytes: int = 128 * 1024 * 1024  # uncompressed JSONL/txt files larger than this are split


@dataclass
class SparkConfig:
    master: str = "local[*]"  # ignored under spark-submit, where --master decides
    app_name: str = "corpusmill"
    conf: dict[str, Any] = field(default_factory=dict)  # any spark.* setting


@dataclass
class Config:
    sources: list[SourceConfig]
    output: OutputConfig = field(default_factory=OutputConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def public_dict(self) -> dict[str, Any]:
        """The config as written to the manifest: no credentials."""
        data = self.to_dict()
        for src in data["sources"]:
            src["storage_options"] = _redact(src["storage_options"])
        data["output"]["storage_options"] = _redact(data["output"]["storage_options"])
        return data

    def digest(self) -> str:
        text = json.dumps(self.public_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _redact(options: dict[str, Any]) -> dict[str, Any]:
    secret = re.compile(r"secret|token|password|key", re.I)
    return {k: ("***" if secret.search(k) else v) for k, v in options.items()}


# --------------------------------------------------------------------------- building and checking
def _fail_unknown(where: str, key: str, allowed: list[str]) -> None:
    near = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise ConfigError(f"{where}: unknown key '{key}'; {hint}allowed keys: {', '.join(sorted(allowed))}")


def _check_type(where: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin is None and isinstance(hint, type):
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} ({value!r:.60})")
        return value
    if type(None) in args:  # Optional[...]
        if value is None:
            return None
        return _check_type(where, value, next(a for a in args if a is not type(None)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return list(value)
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            _fail_unknown(where, str(key), names)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key '{f.name}'")
            continue
        value = data[f.name]
        sub = f"{where}.{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, value, sub)
        elif get_origin(hint) is list and dataclasses.is_dataclass(get_args(hint)[0]):
            if not isinstance(value, list):
                raise ConfigError(f"{sub}: expected a list")
            kwargs[f.name] = [_build(get_args(hint)[0], item, f"{sub}[{i}]") for i, item in enumerate(value)]
        else:
            kwargs[f.name] = _check_type(sub, value, hint)
    return cls(**kwargs)


def _choice(where: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        near = difflib.get_close_matches(value, list(choices), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"{where}: '{value}' is not one of {', '.join(choices)}{hint}")


def validate(cfg: Config, check_paths: bool = True) -> Config:
    if not cfg.sources:
        raise ConfigError("sources: the list is empty; add at least one source with a name and a path")
    seen: set[str] = set()
    for i, src in enumerate(cfg.sources):
        where = f"sources[{i}] ({src.name})"
        if not _NAME.match(src.name):
            raise ConfigError(f"{where}.name: use letters, digits, '_', '-' or '.', starting with a letter or digit")
        if src.name in seen:
            raise ConfigError(f"{where}.name: '{src.name}' is used twice; source names must be unique")
        seen.add(src.name)
        if not src.paths or not all(isinstance(p, str) and p for p in src.paths):
            raise ConfigError(f"{where}.path: give a path, glob or URL (or a list of them)")
        _choice(f"{where}.format", src.format, FORMATS)
        _choice(f"{where}.kind", src.kind, KIND_CHOICES)
        _choice(f"{where}.shape", src.shape, ("auto",) + SHAPES)
        _choice(f"{where}.txt_unit", src.txt_unit, ("line", "file"))
        if src.formatting is not None:
            _choice(f"{where}.formatting", src.formatting, ("alpaca", "sharegpt"))
        for key in src.columns:
            if key not in COLUMN_NAMES:
                _fail_unknown(f"{where}.columns", key, list(COLUMN_NAMES))
        for key in src.tags:
            if key not in TAG_NAMES:
                _fail_unknown(f"{where}.tags", key, list(TAG_NAMES))
        if src.tags and not (src.columns.get("messages") or src.formatting == "sharegpt"):
            raise ConfigError(f"{where}.tags: tags describe sharegpt turns; also set columns.messages "
                              "(the key holding the turns) or formatting: sharegpt")
        if src.formatting == "sharegpt" and not src.columns.get("messages"):
            src.columns = {**src.columns, "messages": "conversations"}
        if check_paths:
            for path in src.paths:
                _check_local_path(f"{where}.path", path)
    _choice("output.format", cfg.output.format, ("jsonl", "parquet"))
    if cfg.ingest.split_bytes < 1 << 20:
        raise ConfigError("ingest.split_bytes: must be at least 1048576 (1 MiB)")
    return cfg


def _check_local_path(where: str, path: str) -> None:
    if "://" in path and not path.startswith("file://"):
        return  # remote paths are listed (and reported) when the job starts
    local = path[len("file://"):] if path.startswith("file://") else path
    if not glob.glob(local) and not os.path.exists(local):
        raise ConfigError(f"{where}: '{path}' matches no file (relative paths resolve against the "
                          f"current directory, {os.getcwd()}); fix the path or run from the right directory")


# --------------------------------------------------------------------------- loading
def apply_override(data: dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` (value parsed as YAML; list items by index: ``sources.0.path=...``)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    dotted, raw_value = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw_value) if raw_value != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {dotted}: value is not valid YAML: {exc}") from exc
    keys = dotted.split(".")
    if keys[:2] == ["spark", "conf"] and len(keys) > 2:  # spark settings are dotted names themselves
        keys = ["spark", "conf", ".".join(keys[2:])]
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"--set {dotted}: '{key}' is not an index of a {len(node)}-item list")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{'.'.join(keys[:i])}' is not a mapping")
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def load(path: str | None, overrides: list[str] | None = None, check_paths: bool = True,
         text: str | None = None) -> Config:
    if text is None:
        if path is None:
            raise ConfigError("no config given")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with a 'sources' key")
    for assignment in overrides or []:
        apply_override(data, assignment)
    if "sources" not in data:
        raise ConfigError(f"{path}: missing 'sources' (a list of {{name, path}} entries)")
    cfg = _build(Config, data, "config")
    return validate(cfg, check_paths=check_paths)

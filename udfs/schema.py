"""The unified record: one wide schema shared by every kind, defined once in Arrow.

Every normalized unit (an output record or a reject) is a row of ``UNIT_SCHEMA``. Kind-specific
columns are null for the other kinds. The Spark schema is derived from this one
(``jobs.common.schema``), so the pure core and the Spark jobs can never disagree.
"""

from __future__ import annotations

import pyarrow as pa

KINDS = ("cpt", "sft", "preference")

MESSAGE = pa.struct(
    [
        ("role", pa.string()),  # user | assistant | tool | system
        ("content", pa.string()),
        ("tool_calls", pa.string()),  # JSON list of {"name", "arguments"}; null when none
        ("name", pa.string()),  # tool name on tool results, when the source gave one
        ("reasoning", pa.string()),  # reasoning / thinking text kept apart from content
    ]
)
MESSAGES = pa.list_(MESSAGE)

# Columns of a normalized record, in output order.
RECORD_FIELDS: list[tuple[str, pa.DataType]] = [
    ("id", pa.string()),
    ("kind", pa.string()),
    ("source", pa.string()),
    ("shape", pa.string()),  # detected input shape: alpaca, sharegpt, hh_transcript, ...
    # cpt
    ("text", pa.string()),
    # sft and preference
    ("system", pa.string()),
    ("messages", MESSAGES),  # sft conversation (system kept apart in `system`)
    ("tools", pa.string()),  # JSON string of tool definitions
    # preference (paired: prompt + chosen + rejected; unpaired/KTO: prompt + completion + label)
    ("prompt", MESSAGES),
    ("chosen", MESSAGES),
    ("rejected", MESSAGES),
    ("completion", MESSAGES),
    ("label", pa.bool_()),
    ("score_chosen", pa.float64()),
    ("score_rejected", pa.float64()),
    ("score", pa.float64()),
    # filled by later stages (null until then)
    ("lang", pa.string()),  # filter: normalized ISO 639-1 code, "und" when undetermined
    ("lang_score", pa.float64()),
    ("n_tokens", pa.int64()),  # filter: tokens a trainer sees (sft/preference: whole conversation)
    ("cluster_id", pa.string()),  # dedup: id of the near-duplicate cluster (the kept record's id)
    ("split", pa.string()),  # split: train | val | test
    ("drop_reason", pa.string()),  # filter/dedup/budget: why a good record was left out
    ("duplicate_of", pa.string()),  # dedup: the id of the record kept instead
    ("epoch", pa.int32()),  # budget: 2, 3, ... on extra copies of a repeated record (null = original)
    # original extra fields, as a JSON object string
    ("meta", pa.string()),
    # lineage
    ("source_file", pa.string()),
    ("source_offset", pa.int64()),  # byte offset of the line, or index of the record in the file
    ("source_index", pa.int32()),  # index of the unit inside its raw record (expanded instances/pairs)
    ("source_format", pa.string()),  # the format the file was read as
    ("content_hash", pa.string()),  # hash of source + canonical content; `id` derives from it
]

REJECT_FIELDS: list[tuple[str, pa.DataType]] = [
    ("reject_reason", pa.string()),  # stable snake_case reason; null for a good record
    ("reject_detail", pa.string()),  # human-readable detail
    ("raw", pa.string()),  # the raw record as read, kept for rejects only
]

UNIT_SCHEMA = pa.schema(RECORD_FIELDS + REJECT_FIELDS)
RECORD_COLUMNS = [name for name, _ in RECORD_FIELDS]

# Columns that matter for each kind (the rest are null); used by writers and `inspect`.
COMMON_COLUMNS = ["id", "kind", "source", "shape", "lang", "lang_score", "n_tokens", "cluster_id", "split",
                  "meta", "source_file", "source_offset", "source_index", "source_format"]
KIND_COLUMNS = {
    "cpt": ["text"],
    "sft": ["system", "messages", "tools"],
    "preference": ["system", "tools", "prompt", "chosen", "rejected", "completion", "label",
                   "score_chosen", "score_rejected", "score"],
}


def columns_for(kind: str) -> list[str]:
    """Output columns of one kind, common columns first."""
    return COMMON_COLUMNS[:4] + KIND_COLUMNS[kind] + COMMON_COLUMNS[4:]


# The raw record as ingest emits it (one row per record found in an input file).
RAW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_offset", pa.int64()),
        ("format", pa.string()),  # the format the file was read as (jsonl, json, csv, ...)
        ("raw", pa.string()),  # JSON text of the record (or of the row, for csv/parquet/txt)
        ("error", pa.string()),  # read-level problem: malformed_json, invalid_utf8, ...
        ("error_detail", pa.string()),
    ]
)

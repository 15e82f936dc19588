"""Export profiles: a unified record -> the row a trainer reads (pure Python, no Spark).

- ``unified_row``: the record itself, the kind's columns in schema order, nulls left out.
- LLaMA-Factory (``llamafactory_row``): every record goes to one of these datasets, each with its
  ``dataset_info.json`` entry (``LLAMAFACTORY_ENTRIES``):

  ============================  ================================================================
  ``cpt``                       ``{"text"}``; ``columns: {prompt: text}``
  ``sft_alpaca``                one user turn + one assistant turn, no tools, no tool calls
  ``sft_sharegpt``              everything else: multi-turn, tools, function_call / observation
  ``preference_ranking``        sharegpt ``conversations`` (the prompt) + ``chosen`` / ``rejected``
  ``preference_kto``            sharegpt ``conversations`` (prompt + completion) + ``kto_tag``
  ============================  ================================================================

  Reasoning kept apart in the unified record goes back into the response as
  ``<think>...</think>\\n\\n`` (LLaMA-Factory's convention). What LLaMA-Factory cannot express is
  skipped with a stable reason (``ExportSkip``), never silently changed: a system turn in the middle
  of a conversation, an assistant turn with both text and a tool call, a multi-turn preference
  response, and scored texts without a label.
- OpenAI (``openai_row``): chat fine-tuning ``{"messages": [...], "tools": [...]}``; preference
  (DPO) ``{"input": {"messages": [...]}, "preferred_output": [...], "non_preferred_output": [...]}``.
  No OpenAI format exists for pretraining text or unpaired (KTO / scored) feedback: skipped.

``check_llamafactory`` re-reads an exported row the way LLaMA-Factory's converters do (odd positions
user/observation, even positions assistant/function; an sft or kto conversation has an even number
of turns, a ranking prompt an odd one) and returns what is wrong, or None.
"""

from __future__ import annotations

import json
from typing import Any

from udfs.schema import columns_for


class ExportSkip(Exception):
    """A record this export cannot express; ``reason`` is a stable snake_case name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- unified
def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def unified_row(record: dict[str, Any]) -> dict[str, Any]:
    return drop_nulls({c: record.get(c) for c in columns_for(record["kind"])})


# --------------------------------------------------------------------------- LLaMA-Factory
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
LLAMAFACTORY_ENTRIES: dict[str, dict[str, Any]] = {
    "cpt": {"columns": {"prompt": "text"}},
    "sft_alpaca": {"formatting": "alpaca",
                   "columns": {"prompt": "instruction", "query": "input", "response": "output",
                               "system": "system"}},
    "sft_sharegpt": {"formatting": "sharegpt",
                     "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                     "tags": SHAREGPT_TAGS},
    "preference_ranking": {"formatting": "sharegpt", "ranking": True,
                           "columns": {"messages": "conversations", "chosen": "chosen",
                                       "rejected": "rejected", "system": "system", "tools": "tools"},
                           "tags": SHAREGPT_TAGS},
    "preference_kto": {"formatting": "sharegpt",
                       "columns": {"messages": "conversations", "kto_tag": "kto_tag", "system": "system",
                                   "tools": "tools"},
                       "tags": SHAREGPT_TAGS},
}
_LF_ROLE = {"user": "human", "assistant": "gpt", "tool": "observation"}


def _with_reasoning(m: dict[str, Any]) -> str:
    content = m.get("content") or ""
    if m.get("reasoning"):
        return f"<think>{m['reasoning']}</think>\n\n{content}"
    return content


def _lf_tool_call(calls_json: str) -> str:
    calls = json.loads(calls_json)
    value = calls[0] if len(calls) == 1 else calls  # one call as an object (glaive), several as a list
    return json.dumps(value, ensure_ascii=False)


def _lf_turn(m: dict[str, Any]) -> dict[str, str]:
    role = m["role"]
    if role == "system":
        raise ExportSkip("system_turn_mid_conversation")
    if role == "assistant" and m.get("tool_calls"):
        if m.get("content"):
            raise ExportSkip("tool_call_with_text")
        return {"from": "function_call", "value": _lf_tool_call(m["tool_calls"])}
    return {"from": _LF_ROLE[role], "value": _with_reasoning(m) if role == "assistant" else m.get("content") or ""}


def _is_plain_exchange(record: dict[str, Any]) -> bool:
    msgs = record.get("messages") or []
    return (len(msgs) == 2 and [m["role"] for m in msgs] == ["user", "assistant"]
            and not any(m.get("tool_calls") for m in msgs) and not record.get("tools"))


def llamafactory_row(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(dataset name, row) of one good unified record; raises ``ExportSkip``."""
    kind = record["kind"]
    system = record.get("system") or ""
    tools = record.get("tools") or ""
    if kind == "cpt":
        return "cpt", {"text": record["text"]}
    if kind == "sft":
        msgs = record.get("messages") or []
        if _is_plain_exchange(record):
            user, assistant = msgs
            return "sft_alpaca", {"instruction": user["content"], "input": "",
                                  "output": _with_reasoning(assistant), "system": system}
        return "sft_sharegpt", {"conversations": [_lf_turn(m) for m in msgs], "system": system, "tools": tools}
    if not record.get("chosen") and record.get("label") is None:
        raise ExportSkip("no_label")  # scored texts (reward regression): no LLaMA-Factory format
    prompt = [_lf_turn(m) for m in record.get("prompt") or []]
    if not prompt:
        raise ExportSkip("no_prompt")
    if record.get("chosen"):
        chosen, rejected = record["chosen"], record.get("rejected") or []
        if len(chosen) != 1 or len(rejected) != 1:
            raise ExportSkip("multi_turn_response")
        return "preference_ranking", {"conversations": prompt, "chosen": _lf_turn(chosen[0]),
                                      "rejected": _lf_turn(rejected[0]), "system": system, "tools": tools}
    completion = [_lf_turn(m) for m in record.get("completion") or []]
    return "preference_kto", {"conversations": prompt + completion, "kto_tag": bool(record["label"]),
                              "system": system, "tools": tools}


def check_llamafactory(example: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """What LLaMA-Factory's converter would reject in ``example`` (a row read back), or None."""
    columns = entry.get("columns", {})
    if entry.get("formatting", "alpaca") == "alpaca":
        prompt = example.get(columns.get("prompt", "instruction"))
        if not isinstance(prompt, str) or not prompt:
            return "alpaca row without a prompt"
        if entry.get("ranking"):
            return None
        if "response" in columns and not isinstance(example.get(columns["response"]), str):
            return "alpaca row without a response"
        return None
    tags = {**SHAREGPT_TAGS, **entry.get("tags", {})}
    odd = (tags["user_tag"], tags["observation_tag"])
    even = (tags["assistant_tag"], tags["function_tag"])
    messages = example.get(columns.get("messages", "conversations")) or []
    if messages and messages[0].get(tags["role_tag"]) == tags["system_tag"]:
        messages = messages[1:]
    for i, m in enumerate(messages):
        if m.get(tags["role_tag"]) not in (odd, even)[i % 2]:
            return f"turn {i} has role {m.get(tags['role_tag'])!r}: odd positions take {odd}, even {even}"
    ranking = bool(entry.get("ranking"))
    if not messages or (not ranking and len(messages) % 2) or (ranking and len(messages) % 2 == 0):
        return f"{len(messages)} turns: " + ("a ranking prompt ends on a user/observation turn" if ranking
                                              else "a conversation ends on an assistant/function turn")
    if ranking:
        for side in ("chosen", "rejected"):
            value = example.get(columns.get(side, side))
            if not isinstance(value, dict) or value.get(tags["role_tag"]) not in even:
                return f"{side} is not one {even} turn"
    if "kto_tag" in columns and not isinstance(example.get(columns["kto_tag"]), bool):
        return "kto_tag is not a boolean"
    return None


def llamafactory_dataset_info(datasets: dict[str, dict[str, int]], prefix: str = "corpusmill"
                              ) -> dict[str, Any]:
    """``dataset_info.json`` for ``{dataset: {split: rows}}``: one entry per dataset and split with
    rows, named ``<prefix>_<dataset>_<split>``, whose ``file_name`` is the folder of its shards."""
    info: dict[str, Any] = {}
    for name in sorted(datasets):
        for split, rows in sorted(datasets[name].items()):
            if rows:
                info[f"{prefix}_{name}_{split}"] = {"file_name": f"{name}/{split}", **LLAMAFACTORY_ENTRIES[name]}
    return info


# --------------------------------------------------------------------------- OpenAI
def _oa_tools(tools: str | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    try:
        parsed = json.loads(tools)
    except json.JSONDecodeError as exc:
        raise ExportSkip("malformed_tools") from exc
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(t, dict) for t in parsed):
        raise ExportSkip("malformed_tools")
    return [t if t.get("type") == "function" and "function" in t else {"type": "function", "function": t}
            for t in parsed]


def _oa_messages(msgs: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending: str | None = None  # id of the call the next tool turn answers
    for i, m in enumerate(msgs, start):
        role = m["role"]
        if role == "assistant" and m.get("tool_calls"):
            calls = json.loads(m["tool_calls"])
            if len(calls) != 1:
                raise ExportSkip("parallel_tool_calls")  # one tool turn cannot answer several calls
            pending = f"call_{i}"
            args = calls[0].get("arguments")
            out.append({"role": "assistant", "content": m.get("content") or None, "tool_calls": [
                {"id": pending, "type": "function",
                 "function": {"name": calls[0]["name"],
                              "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}}]})
        elif role == "tool":
            if pending is None:
                raise ExportSkip("tool_result_without_call")
            out.append({"role": "tool", "tool_call_id": pending, "content": m.get("content") or ""})
            pending = None
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    return [{k: v for k, v in m.items() if v is not None} for m in out]


def openai_row(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(dataset name, row) of one good unified record; raises ``ExportSkip``."""
    kind = record["kind"]
    if kind == "cpt":
        raise ExportSkip("no_openai_format_for_cpt")
    system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    tools = _oa_tools(record.get("tools"))
    extra = {"tools": tools} if tools else {}
    if kind == "sft":
        return "sft", {"messages": system + _oa_messages(record.get("messages") or []), **extra}
    if not record.get("chosen"):
        raise ExportSkip("unpaired_preference")
    prompt = record.get("prompt") or []
    if not prompt or prompt[-1]["role"] != "user":
        raise ExportSkip("prompt_not_ending_on_user")
    return "preference", {"input": {"messages": system + _oa_messages(prompt), **extra},
                          "preferred_output": _oa_messages(record["chosen"], len(prompt)),
                          "non_preferred_output": _oa_messages(record["rejected"] or [], len(prompt))}


# --------------------------------------------------------------------------- Hugging Face
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def dataset_card(counts: dict[str, dict[str, dict[str, int]]], version: str, config_sha256: str) -> str:
    """README.md for the ``hf`` export: a ``configs`` header ``datasets`` reads, and the counts.

    ``counts``: ``{kind: {hf_split: {"rows": n, "tokens": t}}}``.
    """
    lines = ["---", "configs:"]
    for kind in sorted(counts):
        lines += [f"- config_name: {kind}", "  data_files:"]
        for split in sorted(counts[kind], key=list(HF_SPLITS.values()).index):
            lines += [f"  - split: {split}", f"    path: {kind}/{split}-*.parquet"]
    lines += ["---", "", "# corpusmill export", "",
              f"Written by corpusmill {version} (config sha256 `{config_sha256[:16]}`). One config per kind; "
              "columns are corpusmill's unified schema (`messages`, `prompt`, `chosen`, ... as lists of "
              "`{role, content, tool_calls, name, reasoning}`).", "",
              "```python", "from datasets import load_dataset",
              f"ds = load_dataset(\"parquet\", data_files={{\"train\": \"{sorted(counts)[0] if counts else 'sft'}"
              "/train-*.parquet\", ...})", "```", "",
              "| config | split | rows | tokens |", "|---|---|---:|---:|"]
    for kind in sorted(counts):
        for split in sorted(counts[kind], key=list(HF_SPLITS.values()).index):
            c = counts[kind][split]
            lines.append(f"| {kind} | {split} | {c['rows']} | {c.get('tokens', 0)} |")
    return "\n".join(lines) + "\n"

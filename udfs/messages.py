"""Conversations: parse message lists in their published forms, map roles, validate order.

A unified message is ``{"role", "content", "tool_calls", "name", "reasoning"}`` with role one of
``user``, ``assistant``, ``tool``, ``system``. Tool calls (sharegpt ``function_call`` turns,
OpenAI ``tool_calls``, LLaMA-Factory v1 ``tool_call`` parts) become an assistant message whose
``tool_calls`` is a JSON list of ``{"name", "arguments"}``; tool results become role ``tool``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from udfs.text import clean_text


class Reject(Exception):
    """A record that cannot be mapped; ``reason`` is a stable snake_case name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Lower-cased role names seen in published data -> unified role.
DEFAULT_ROLES: dict[str, str] = {
    "user": "user", "human": "user", "prompter": "user", "question": "user", "usr": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    "chatgpt": "assistant", "bard": "assistant", "claude": "assistant", "answer": "assistant",
    "system": "system", "developer": "system",
    "function_call": "function_call", "function": "function_call", "tool_call": "function_call",
    "observation": "tool", "tool": "tool", "function_response": "tool", "ipython": "tool",
    "tool_response": "tool",
}

MEDIA_PLACEHOLDER = {"image": "<image>", "image_url": "<image>", "video": "<video>",
                     "video_url": "<video>", "audio": "<audio>", "audio_url": "<audio>",
                     "input_audio": "<audio>"}


@dataclass(frozen=True)
class Tags:
    """LLaMA-Factory ``tags`` vocabulary: how a source names roles and fields in its turns."""

    role_tag: str | None = None
    content_tag: str | None = None
    user_tag: str | None = None
    assistant_tag: str | None = None
    observation_tag: str | None = None
    function_tag: str | None = None
    system_tag: str | None = None
    roles: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, tags: Mapping[str, str] | None) -> Tags:
        tags = dict(tags or {})
        roles = {}
        for key, unified in (("user_tag", "user"), ("assistant_tag", "assistant"),
                             ("observation_tag", "tool"), ("function_tag", "function_call"),
                             ("system_tag", "system")):
            if tags.get(key):
                roles[str(tags[key]).lower()] = unified
        return cls(**{k: tags.get(k) for k in (
            "role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag",
            "function_tag", "system_tag")}, roles=roles)

    def role(self, name: Any) -> str:
        key = str(name).strip().lower()
        unified = self.roles.get(key) or DEFAULT_ROLES.get(key)
        if unified is None:
            raise Reject("unknown_role", f"role {name!r} is not a known role name; map it with tags")
        return unified


NO_TAGS = Tags()


def message(role: str, content: str, tool_calls: str | None = None, name: str | None = None,
            reasoning: str | None = None) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_calls": tool_calls, "name": name,
            "reasoning": reasoning}


def normalize_tool_calls(value: Any) -> str:
    """One tool call or a list of them (JSON string, dict, OpenAI form) -> canonical JSON list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise Reject("malformed_tool_call", f"tool call is not JSON: {value[:80]!r}") from exc
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        if not isinstance(call, dict):
            raise Reject("malformed_tool_call", f"tool call is not an object: {call!r:.80}")
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        name = fn.get("name")
        if not name:
            raise Reject("malformed_tool_call", "tool call has no name")
        args = fn.get("arguments", fn.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass  # keep non-JSON argument strings as they are
        out.append({"name": name, "arguments": args})
    return json.dumps(out, ensure_ascii=False, sort_keys=True)


def content_to_text(content: Any, media: dict[str, list[str]]) -> tuple[str, str | None, str | None]:
    """Message content -> (text, reasoning, tool_calls JSON).

    Accepts a string or a list of parts ``{"type", "text"|"value"|...}`` (OpenAI and LLaMA-Factory
    v1). Media parts become ``<image>``/``<video>``/``<audio>`` placeholders in the text (the
    LLaMA-Factory convention) and their paths are collected into ``media``.
    """
    if content is None:
        return "", None, None
    if isinstance(content, str):
        return content, None, None
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return str(content), None, None
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[Any] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise Reject("malformed_content", f"content part is not an object: {part!r:.80}")
        ptype = str(part.get("type", "text"))
        value = part.get("value", part.get("text", part.get(ptype)))
        if ptype == "text":
            texts.append("" if value is None else str(value))
        elif ptype in ("reasoning", "thinking"):
            reasoning.append(str(value or ""))
        elif ptype == "tool_call":
            calls.append(json.loads(value) if isinstance(value, str) else value)
        elif ptype in MEDIA_PLACEHOLDER:
            if isinstance(value, dict):  # OpenAI {"type": "image_url", "image_url": {"url": ...}}
                value = value.get("url") or value.get("path") or json.dumps(value)
            kind = MEDIA_PLACEHOLDER[ptype].strip("<>") + "s"
            media.setdefault(kind, []).append(str(value))
            texts.append(MEDIA_PLACEHOLDER[ptype])
        else:
            raise Reject("malformed_content", f"unknown content part type {ptype!r}")
    tool_calls = normalize_tool_calls(calls) if calls else None
    return "".join(texts), ("\n".join(reasoning) if reasoning else None), tool_calls


def parse_messages(turns: Any, tags: Tags = NO_TAGS, media: dict[str, list[str]] | None = None
                   ) -> list[dict[str, Any]]:
    """A published list of turns -> unified messages (not yet validated for order)."""
    if not isinstance(turns, list):
        raise Reject("malformed_messages", f"expected a list of turns, got {type(turns).__name__}")
    media = {} if media is None else media
    out: list[dict[str, Any]] = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise Reject("malformed_messages", f"turn is not an object: {turn!r:.80}")
        role_key = tags.role_tag or ("role" if "role" in turn else "from")
        content_key = tags.content_tag or ("content" if "content" in turn else "value")
        if role_key not in turn:
            raise Reject("malformed_messages", f"turn has no {role_key!r} field: keys {sorted(turn)}")
        role = tags.role(turn[role_key])
        text, reasoning, calls = content_to_text(turn.get(content_key), media)
        for key in ("reasoning_content", "reasoning", "thinking"):
            if isinstance(turn.get(key), str) and turn[key]:
                reasoning = turn[key]
        if turn.get("tool_calls"):
            calls = normalize_tool_calls(turn["tool_calls"])
        if role == "function_call":  # sharegpt: the turn's value is the call itself
            calls = normalize_tool_calls(text)
            role, text = "assistant", ""
        name = turn.get("name") if isinstance(turn.get("name"), str) else None
        out.append(message(role, clean_text(text), calls, name,
                           clean_text(reasoning) if reasoning else None))
    return out


def split_system(messages: list[dict[str, Any]], system: str | None = None
                 ) -> tuple[str | None, list[dict[str, Any]]]:
    """Move leading system messages into the ``system`` field."""
    parts = [system] if system else []
    i = 0
    while i < len(messages) and messages[i]["role"] == "system":
        parts.append(messages[i]["content"])
        i += 1
    joined = "\n\n".join(p for p in parts if p)
    return (joined or None), messages[i:]


def _slot_ok(role: str, index: int) -> bool:
    # LLaMA-Factory's rule: user/observation on odd positions (1-based), assistant/function on even.
    return role in ("user", "tool") if index % 2 == 0 else role == "assistant"


def validate_conversation(messages: list[dict[str, Any]], *, must_end_with: str) -> None:
    """Role order check; ``must_end_with`` is ``assistant`` (sft) or ``user`` (preference prompt)."""
    if not messages:
        raise Reject("empty_conversation", "no turns left after the system prompt")
    turns = [m for m in messages if m["role"] != "system"]
    for i, m in enumerate(turns):
        if not _slot_ok(m["role"], i):
            order = ",".join(t["role"] for t in turns)
            raise Reject("bad_role_order", f"turn {i} is {m['role']}; roles must alternate "
                         f"user/tool then assistant, got [{order}]")
        if not m["content"] and not m["tool_calls"]:
            raise Reject("empty_turn", f"turn {i} ({m['role']}) is empty")
    if must_end_with == "assistant" and turns[-1]["role"] != "assistant":
        raise Reject("ends_without_response", "the last turn is not an assistant response")
    if must_end_with == "user" and turns[-1]["role"] == "assistant":
        raise Reject("bad_role_order", "a preference prompt must end on a user turn")


def validate_response(messages: list[dict[str, Any]], side: str) -> None:
    """A preference response: one or more turns starting and ending with the assistant."""
    if not messages:
        raise Reject("empty_response", f"{side} response is empty")
    for i, m in enumerate(messages):
        if not _slot_ok(m["role"], i + 1):
            raise Reject("bad_role_order", f"{side} turn {i} is {m['role']}")
        if not m["content"] and not m["tool_calls"]:
            raise Reject("empty_response", f"{side} turn {i} is empty")
    if messages[-1]["role"] != "assistant":
        raise Reject("bad_role_order", f"{side} response must end on an assistant turn")

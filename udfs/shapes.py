"""Published record shapes -> unified units: detection and mapping (pure Python).

``detect_shape`` names the shape of one parsed record; ``MAPPERS[shape]`` turns it into one or
more partial units (``kind`` + content fields). Detection is per record, in a fixed order, and can
be pinned per source (``shape:``/``kind:``) or steered with LLaMA-Factory ``columns``/``tags``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from udfs.messages import (
    NO_TAGS,
    Reject,
    Tags,
    message,
    parse_messages,
    split_system,
    validate_conversation,
    validate_response,
)
from udfs.text import clean_text
from udfs.transcript import looks_like_transcript, parse_transcript, split_pair

END_MARKERS = ("<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "<|eot_id|>", "</s>")
TEXT_KEYS = ("text", "content", "raw_content", "document", "contents")


class Fields:
    """A parsed record with key lookup that tolerates case (CSV headers) and tracks what was used."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self._lower = {}
        for key in obj:
            self._lower.setdefault(str(key).lower(), key)
        self.used: set[str] = set()

    def key(self, *names: str) -> str | None:
        for name in names:
            if name in self.obj:
                return name
            if name.lower() in self._lower:
                return self._lower[name.lower()]
        return None

    def has(self, *names: str) -> bool:
        key = self.key(*names)
        return key is not None and self.obj[key] is not None

    def get(self, *names: str, default: Any = None) -> Any:
        key = self.key(*names)
        if key is None or self.obj[key] is None:
            return default
        self.used.add(key)
        return self.obj[key]

    def leftover(self) -> dict[str, Any]:
        return {k: v for k, v in self.obj.items() if k not in self.used}


def strip_end_marker(text: str) -> str:
    text = text.rstrip()
    for marker in END_MARKERS:
        if text.endswith(marker):
            return text[: -len(marker)].rstrip()
    return text


def as_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise Reject("wrong_type", f"{field} must be a string, got {type(value).__name__}")


def as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise Reject("bad_label", f"{field} must be a boolean, got {value!r:.40}")


def as_float(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise Reject("bad_score", f"{field} is not a number: {value!r:.40}") from exc
    if out != out:  # NaN
        raise Reject("bad_score", f"{field} is NaN")
    return out


def tools_json(value: Any) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def _user_text(f: Fields, *keys: str) -> str:
    return clean_text(as_text(f.get(*keys), keys[0]))


# --------------------------------------------------------------------------- mappers
Unit = dict[str, Any]


def map_text(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    keys = (text_field,) if text_field else TEXT_KEYS
    if not f.has(*keys):
        raise Reject("missing_field", f"no text field ({', '.join(keys)}); set text_field")
    text = clean_text(as_text(f.get(*keys), keys[0]))
    if not text:
        raise Reject("empty_text", "text is empty after cleaning")
    return [{"kind": "cpt", "text": text}]


def _sft(system: str | None, messages: list[dict[str, Any]], tools: Any = None) -> Unit:
    system, messages = split_system(messages, clean_text(system) if system else None)
    validate_conversation(messages, must_end_with="assistant")
    return {"kind": "sft", "system": system, "messages": messages, "tools": tools_json(tools)}


def _history(f: Fields) -> list[dict[str, Any]]:
    history = f.get("history", default=[])
    out = []
    if not isinstance(history, list):
        raise Reject("malformed_history", "history must be a list of [query, response] pairs")
    for pair in history:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise Reject("malformed_history", f"history item is not a [query, response] pair: {pair!r:.60}")
        out += [message("user", clean_text(as_text(pair[0], "history"))),
                message("assistant", clean_text(as_text(pair[1], "history")))]
    return out


def _alpaca_query(f: Fields, instruction_keys: tuple[str, ...]) -> str:
    instruction = as_text(f.get(*instruction_keys, default=""), instruction_keys[0])
    query = as_text(f.get("input", default=""), "input")
    # LLaMA-Factory joins instruction and input with a newline.
    return clean_text("\n".join(p for p in (instruction, query) if p))


def map_alpaca(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    instruction_keys = ("instruction",) if f.has("instruction") else ("text",)
    query = _alpaca_query(f, instruction_keys)
    output = clean_text(strip_end_marker(as_text(f.get("output", "response"), "output")))
    messages = _history(f) + [message("user", query), message("assistant", output)]
    return [_sft(f.get("system"), messages, f.get("tools"))]


def map_instances(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    instruction = as_text(f.get("instruction"), "instruction")
    instances = f.get("instances")
    if not isinstance(instances, list) or not instances:
        raise Reject("malformed_instances", "instances must be a non-empty list")
    units = []
    for inst in instances:
        if not isinstance(inst, dict) or "output" not in inst:
            raise Reject("malformed_instances", f"instance without output: {inst!r:.60}")
        query = clean_text("\n".join(p for p in (instruction, as_text(inst.get("input") or "", "input")) if p))
        output = clean_text(as_text(inst["output"], "output"))
        units.append(_sft(f.get("system"), [message("user", query), message("assistant", output)]))
    return units


def map_sharegpt(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    media: dict[str, list[str]] = {}
    messages = parse_messages(f.get("conversations"), tags, media)
    unit = _sft(f.get("system"), messages, f.get("tools"))
    return [_with_media(unit, media)]


def map_openai(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    media: dict[str, list[str]] = {}
    messages = parse_messages(f.get("messages"), tags, media)
    unit = _sft(f.get("system"), messages, f.get("tools"))
    return [_with_media(unit, media)]


def _with_media(unit: Unit, media: dict[str, list[str]]) -> Unit:
    if media:
        unit["_media"] = media
    return unit


def map_pair_list(f: Fields, key: str, user: str, assistant: str) -> list[dict[str, Any]]:
    turns = f.get(key)
    if not isinstance(turns, list) or not turns:
        raise Reject("malformed_messages", f"{key} must be a non-empty list")
    messages = []
    for turn in turns:
        if not isinstance(turn, dict) or user not in turn:
            raise Reject("malformed_messages", f"{key} turn without {user!r}: {turn!r:.60}")
        messages.append(message("user", clean_text(as_text(turn[user], user))))
        if turn.get(assistant) is not None:
            messages.append(message("assistant", clean_text(as_text(turn[assistant], assistant))))
    return messages


def map_firefly(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    return [_sft(f.get("system"), map_pair_list(f, "conversation", "human", "assistant"))]


def map_dialogstudio(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    return [_sft(None, map_pair_list(f, "log", "user utterance", "system response"))]


PROMPT_KEYS = ("prompt", "question", "query", "input")
COMPLETION_KEYS = ("completion", "response", "answer", "output", "label")


def map_prompt_completion(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    prompt = clean_text(strip_end_marker(as_text(f.get(*PROMPT_KEYS), "prompt")))
    completion = clean_text(strip_end_marker(as_text(f.get(*COMPLETION_KEYS), "completion")))
    return [_sft(f.get("system"), [message("user", prompt), message("assistant", completion)])]


def _to_messages(value: Any, tags: Tags, side: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        if looks_like_transcript(value):
            return parse_transcript(value)
        return [message("assistant", clean_text(strip_end_marker(value)))]
    if isinstance(value, dict):
        return parse_messages([value], tags)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return parse_messages(value, tags)
    raise Reject("malformed_response", f"{side} must be a string, a message or a list of messages")


def _explicit_prompt(f: Fields, tags: Tags) -> list[dict[str, Any]] | None:
    if f.has("conversations"):
        return parse_messages(f.get("conversations"), tags)
    if f.has("instruction"):
        return _history(f) + [message("user", _alpaca_query(f, ("instruction",)))]
    key = f.key("prompt", "question", "query", "input")
    if key is not None and f.obj[key] is not None:
        value = f.get(key)
        if isinstance(value, list):
            return parse_messages(value, tags)
        return [message("user", clean_text(as_text(value, key)))]
    return None


def _common_turns(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n > 0 and a[n - 1]["role"] == "assistant":  # a prompt ends on a user/tool turn
        n -= 1
    return n


def _pair(system: str | None, prompt: list[dict[str, Any]], chosen: list[dict[str, Any]],
          rejected: list[dict[str, Any]], tools: Any = None, scores: tuple[Any, Any] = (None, None)
          ) -> Unit:
    system, prompt = split_system(prompt, clean_text(system) if system else None)
    validate_conversation(prompt, must_end_with="user")
    validate_response(chosen, "chosen")
    validate_response(rejected, "rejected")
    if chosen == rejected:
        raise Reject("identical_responses", "chosen and rejected are the same")
    return {"kind": "preference", "system": system, "prompt": prompt, "chosen": chosen,
            "rejected": rejected, "tools": tools_json(tools),
            "score_chosen": as_float(scores[0], "score_chosen"),
            "score_rejected": as_float(scores[1], "score_rejected")}


def map_chosen_rejected(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    chosen_raw = f.get("chosen", "chosen_messages")
    rejected_raw = f.get("rejected", "rejected_messages")
    scores = (f.get("score_chosen", "chosen_score", "chosen_rating"),
              f.get("score_rejected", "rejected_score", "rejected_rating"))
    if looks_like_transcript(chosen_raw) and looks_like_transcript(rejected_raw):
        prompt, chosen_text, rejected_text = split_pair(chosen_raw, rejected_raw)
        return [_pair(f.get("system"), prompt, [message("assistant", chosen_text)],
                      [message("assistant", rejected_text)], f.get("tools"), scores)]
    chosen = _to_messages(chosen_raw, tags, "chosen")
    rejected = _to_messages(rejected_raw, tags, "rejected")
    explicit = _explicit_prompt(f, tags)
    f.get("messages")  # UltraFeedback repeats the chosen conversation here: consumed, not meta
    if chosen and chosen[0]["role"] != "assistant" and rejected and rejected[0]["role"] != "assistant":
        # full conversations: the shared prefix is the prompt
        n = _common_turns(chosen, rejected)
        if n == 0:
            raise Reject("prompt_mismatch", "chosen and rejected conversations share no prompt")
        prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
    elif explicit is not None:
        prompt = explicit
    else:
        raise Reject("missing_field", "no prompt: give prompt/conversations/instruction, "
                     "or full conversations in chosen and rejected")
    return [_pair(f.get("system"), prompt, chosen, rejected, f.get("tools"), scores)]


def _prompt_messages(f: Fields, tags: Tags) -> list[dict[str, Any]]:
    prompt = _explicit_prompt(f, tags)
    if prompt is None:
        raise Reject("missing_field", "no prompt field (prompt, question, instruction or conversations)")
    return prompt


def map_pairwise(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    prompt = _prompt_messages(f, tags)
    a = _to_messages(f.get("response_a"), tags, "response_a")
    b = _to_messages(f.get("response_b"), tags, "response_b")
    score_a, score_b = as_float(f.get("score_a"), "score_a"), as_float(f.get("score_b"), "score_b")
    if f.has("label"):
        label = f.get("label")
        if isinstance(label, str) and label.strip().isdigit():
            label = int(label)
        if label not in (0, 1) or isinstance(label, bool):
            raise Reject("tied_preference" if label == 2 else "bad_label",
                         f"label must be 0 (a better) or 1 (b better), got {label!r:.20}")
        a_wins = label == 0
    elif f.has("winner"):
        winner = str(f.get("winner")).strip().lower()
        if winner not in ("model_a", "model_b", "a", "b"):
            raise Reject("tied_preference", f"winner is {winner!r}")
        a_wins = winner in ("model_a", "a")
    elif score_a is not None and score_b is not None:
        if score_a == score_b:
            raise Reject("tied_preference", f"score_a == score_b == {score_a}")
        a_wins = score_a > score_b
    else:
        raise Reject("missing_field", "pairwise record needs label, winner, or score_a and score_b")
    scores = (score_a, score_b) if a_wins else (score_b, score_a)
    chosen, rejected = (a, b) if a_wins else (b, a)
    return [_pair(f.get("system"), prompt, chosen, rejected, f.get("tools"), scores)]


def _response_text(item: Any) -> tuple[Any, float | None]:
    if isinstance(item, dict):
        text = item.get("response", item.get("text", item.get("content", item.get("output"))))
        score = next((item[k] for k in ("score", "rating", "overall_score", "reward") if k in item), None)
        return text, as_float(score, "score")
    return item, None


def map_ranked(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    prompt = _prompt_messages(f, tags)
    items = f.get("responses", "completions")
    if not isinstance(items, list) or len(items) < 2:
        raise Reject("malformed_responses", "responses must list at least two responses")
    parsed = [_response_text(item) for item in items]
    responses = [_to_messages(text, tags, f"responses[{i}]") for i, (text, _) in enumerate(parsed)]
    scores = [score for _, score in parsed]
    if f.has("label"):
        label = f.get("label")
        order = label if isinstance(label, list) else [label]
        try:
            order = [int(x) for x in order]
        except (TypeError, ValueError) as exc:
            raise Reject("bad_label", f"label must be an index or a ranking, got {label!r:.40}") from exc
        if any(not 0 <= i < len(responses) for i in order):
            raise Reject("bad_label", f"label {label!r:.40} is out of range for {len(responses)} responses")
        best = order[0]
        others = [i for i in range(len(responses)) if i != best]
    elif all(s is not None for s in scores):
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        others = [i for i in range(len(scores)) if scores[i] < scores[best]]
    else:
        raise Reject("missing_field", "ranked responses need a label (best index) or a score on every response")
    if not others:
        raise Reject("tied_preference", "no response scores below the best one")
    # Best vs each other response: k responses give k-1 pairs.
    return [_pair(f.get("system"), prompt, responses[best], responses[i], f.get("tools"),
                  (scores[best], scores[i])) for i in others]


def _split_last_response(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n = len(messages)
    while n > 0 and messages[n - 1]["role"] == "assistant":
        n -= 1
    return messages[:n], messages[n:]


def map_kto(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    label = as_bool(f.get("label", "kto_tag"), "label")
    if f.has("messages") or f.has("conversations"):
        messages = parse_messages(f.get("messages", "conversations"), tags)
        prompt, completion = _split_last_response(messages)
    else:
        prompt = [message("user", clean_text(as_text(f.get(*PROMPT_KEYS), "prompt")))]
        completion = [message("assistant", clean_text(strip_end_marker(
            as_text(f.get("completion", "response", "output", "answer"), "completion"))))]
    system, prompt = split_system(prompt, clean_text(f.get("system") or "") or None)
    validate_conversation(prompt, must_end_with="user")
    validate_response(completion, "completion")
    return [{"kind": "preference", "system": system, "prompt": prompt, "completion": completion,
             "label": label, "tools": tools_json(f.get("tools"))}]


def map_scored(f: Fields, tags: Tags, text_field: str | None) -> list[Unit]:
    """``Input,Reward``: one scored text (reward-regression data), kept as unpaired feedback."""
    text = as_text(f.get("input", "text"), "input")
    score = as_float(f.get("reward", "score"), "reward")
    if looks_like_transcript(text):
        prompt, completion = _split_last_response(parse_transcript(text))
    else:
        prompt, completion = [], [message("assistant", clean_text(text))]
    validate_response(completion, "completion")
    return [{"kind": "preference", "system": None, "prompt": prompt, "completion": completion,
             "score": score}]


MAPPERS: dict[str, Callable[[Fields, Tags, str | None], list[Unit]]] = {
    "text": map_text,
    "alpaca": map_alpaca,
    "instances": map_instances,
    "sharegpt": map_sharegpt,
    "openai": map_openai,
    "firefly": map_firefly,
    "dialogstudio": map_dialogstudio,
    "prompt_completion": map_prompt_completion,
    "chosen_rejected": map_chosen_rejected,
    "pairwise": map_pairwise,
    "ranked": map_ranked,
    "kto": map_kto,
    "scored": map_scored,
}
SHAPE_KIND = {"text": "cpt", "alpaca": "sft", "instances": "sft", "sharegpt": "sft", "openai": "sft",
              "firefly": "sft", "dialogstudio": "sft", "prompt_completion": "sft",
              "chosen_rejected": "preference", "pairwise": "preference", "ranked": "preference",
              "kto": "preference", "scored": "preference"}
SHAPES = tuple(MAPPERS)


def _is_list_of_dicts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _candidates(f: Fields, text_field: str | None) -> Iterator[str]:
    """Shapes this record could be, most specific first."""
    label = f.obj.get(f.key("label") or "", None)
    if f.has("chosen", "chosen_messages") and f.has("rejected", "rejected_messages"):
        yield "chosen_rejected"
    if f.has("response_a") and f.has("response_b"):
        yield "pairwise"
    if f.has("responses") or _is_list_of_dicts(f.obj.get(f.key("completions") or "")):
        yield "ranked"
    if f.has("kto_tag") or (isinstance(label, bool) and (
            f.has("messages", "conversations") or f.has("completion", "response", "output"))):
        yield "kto"
    if f.has("instruction") and f.has("instances"):
        yield "instances"
    if f.has("instruction") and f.has("output", "response"):
        yield "alpaca"
    if f.has("conversations"):
        yield "sharegpt"
    if f.has("messages"):
        yield "openai"
    if _is_list_of_dicts(f.obj.get(f.key("conversation") or "")):
        yield "firefly"
    if _is_list_of_dicts(f.obj.get(f.key("log") or "")):
        yield "dialogstudio"
    if f.has("text") and f.has("output") and not f.has("instruction"):
        yield "alpaca"  # instruction stored under `text` (seen in data-juicer demos)
    if f.has("input") and f.has("reward"):
        yield "scored"
    if f.has(*PROMPT_KEYS) and f.has(*COMPLETION_KEYS) and not (
            f.has("prompt") and f.has("answer1")):  # answer1/answer2: an unlabeled pair
        yield "prompt_completion"
    if text_field and f.has(text_field):
        yield "text"
    if not text_field and f.has(*TEXT_KEYS) and isinstance(f.obj[f.key(*TEXT_KEYS)], str):
        yield "text"


def detect_shape(obj: dict[str, Any], kind: str = "auto", text_field: str | None = None) -> str:
    """The shape of one record, restricted to ``kind`` unless it is ``auto``."""
    f = Fields(obj)
    for shape in _candidates(f, text_field):
        if kind in ("auto", SHAPE_KIND[shape]):
            return shape
    if kind == "cpt":
        raise Reject("missing_field", f"no text field among keys {sorted(obj)[:12]}; set text_field")
    if f.has("prompt") and f.has("answer1") and f.has("answer2"):
        raise Reject("unlabeled_pair", "two answers without a label saying which is better")
    if f.has("turns") and not f.has(*COMPLETION_KEYS):
        raise Reject("no_response", "question turns without answers (an evaluation prompt set?)")
    want = "" if kind == "auto" else f" as {kind}"
    raise Reject("unknown_shape", f"cannot map keys {sorted(obj)[:12]}{want}; set shape or columns")


def map_record(obj: dict[str, Any], shape: str, tags: Tags = NO_TAGS, text_field: str | None = None
               ) -> tuple[list[Unit], dict[str, Any]]:
    """Map one record of a known shape -> (units, leftover fields that go to ``meta``)."""
    f = Fields(obj)
    units = MAPPERS[shape](f, tags, text_field)
    return units, f.leftover()

"""Whole-conversation transcript strings: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` (HH-RLHF).

A chosen/rejected pair of transcripts shares the conversation up to the last assistant turn.
The split is made at the last assistant marker before the two strings first differ, so a response
that itself contains ``Human:`` or ``Assistant:`` text (5 of the 2312 harmless-base test pairs)
stays whole instead of being cut into fake turns.
"""

from __future__ import annotations

import os
import re
from typing import Any

from udfs.messages import Reject, message
from udfs.text import clean_text

_MARKER = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A|User|System):[ \t]?")
_ROLE = {"human": "user", "h": "user", "user": "user", "assistant": "assistant", "a": "assistant",
         "system": "system"}
_ASSISTANT_MARKER = "\n\nAssistant:"


def looks_like_transcript(value: Any) -> bool:
    return isinstance(value, str) and "Human:" in value and "Assistant:" in value


def parse_transcript(text: str) -> list[dict[str, Any]]:
    """Transcript -> unified messages (not validated)."""
    parts = _MARKER.split(text)
    if len(parts) < 3:
        raise Reject("malformed_transcript", "no Human:/Assistant: markers found")
    if parts[0].strip():  # text before the first marker has no speaker
        raise Reject("malformed_transcript", f"text before the first speaker marker: {parts[0][:60]!r}")
    return [message(_ROLE[role.lower()], clean_text(body))
            for role, body in zip(parts[1::2], parts[2::2], strict=True)]


def split_pair(chosen: str, rejected: str) -> tuple[list[dict[str, Any]], str, str]:
    """Two transcripts -> (shared prompt messages, chosen response, rejected response)."""
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(_ASSISTANT_MARKER)
    if cut < 0:
        if chosen.startswith("Assistant:") or not common:
            raise Reject("prompt_mismatch", "chosen and rejected share no conversation prefix")
        raise Reject("malformed_transcript", "no assistant turn in the shared prefix")
    prompt = parse_transcript(chosen[:cut])
    start = cut + len(_ASSISTANT_MARKER)
    return prompt, clean_text(chosen[start:]), clean_text(rejected[start:])

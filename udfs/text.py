"""Text cleaning applied to every string that reaches a unified record.

NFC; CRLF/CR -> LF; control characters other than tab and newline removed (with the BOM and
other invisible format characters that break tokenizers); trailing spaces stripped per line;
runs of 3+ newlines collapsed to one blank line; leading/trailing blank space removed.
Indentation inside lines is kept: code is legitimate training text.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls except \t and \n, DEL, BOM / zero-width no-break space, and Unicode
# non-characters that cannot come from real text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")
_LINE_END = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0\u3000]+\n")
_BLANK_RUN = re.compile(r"\n{3,}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True for text that cannot be encoded as UTF-8 (undecodable bytes or bad \\u escapes)."""
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """Normalize one string (see module docstring). Idempotent: clean(clean(x)) == clean(x)."""
    if not text:
        return ""
    text = _LINE_END.sub("\n", text)  # before NFC and control stripping: \x85 is a line end
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_RUN.sub("\n\n", text)
    return text.strip()


def safe_raw(text: str, limit: int = 1_000_000) -> str:
    """A raw record as it may be stored in a rejects file: valid UTF-8, bounded length."""
    if has_lone_surrogate(text):
        text = text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "backslashreplace")\
            .decode("utf-8", "backslashreplace")
    if len(text) > limit:
        text = text[:limit] + f"...[truncated {len(text) - limit} chars]"
    return text


def _only_escapes(text: str) -> bool:
    # surrogateescape can only re-encode the low surrogates it produced itself (U+DC80..U+DCFF)
    return all("\udc80" <= ch <= "\udcff" for ch in _SURROGATE.findall(text))

"""What the dedup stage compares, per kind, and a fast batch shingler for it (pure Python + numpy).

The dedup key of a record is the text whose duplicates matter for training:

- ``cpt``: the text;
- ``sft``: the whole conversation, role-tagged, system first (``system: ...``, ``user: ...``,
  ``assistant: ...`` one turn after another; tool calls and reasoning are part of a turn);
- ``preference``: the prompt (system + prompt turns, role-tagged the same way), so two pairs on the
  same prompt are duplicates and one is kept. Unpaired feedback (KTO, scored texts: a
  ``completion`` instead of ``chosen``/``rejected``) adds its completion: several completions of one
  prompt, each with its own label or score, are what such a set is made of, not duplicates.

Exact dedup compares :func:`exact_key_hash`: blake2b-128 of the key with whitespace runs collapsed to
one space, ends stripped and, with ``lowercase`` (the default), casefolded. Near dedup compares the
MinHash of :func:`shingle_batch`, which equals :func:`udfs.minhash.shingles` key by key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from udfs.minhash import _WORD_RE, is_mostly_no_space_script, shingles

Message = Mapping[str, Any]

# ASCII characters that are not `\w` become spaces: on ASCII text `translate(...).split()` equals
# `\w+` findall (Python's `\w` is [A-Za-z0-9_] there) at a fraction of the cost.
_ASCII_NON_WORD = str.maketrans({c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")})


def conversation_text(system: str | None, messages: Sequence[Message] | None) -> str:
    """``role: content`` lines (tool calls and reasoning appended to their turn), system first."""
    parts = [f"system: {system}"] if system else []
    for m in messages or ():
        turn = f"{m.get('role') or 'unknown'}: {m.get('content') or ''}"
        if m.get("reasoning"):
            turn += f"\n{m['reasoning']}"
        if m.get("tool_calls"):
            turn += f"\n{m['tool_calls']}"
        parts.append(turn)
    return "\n".join(parts)


def dedup_key(kind: str | None, text: str | None = None, system: str | None = None,
              messages: Sequence[Message] | None = None, prompt: Sequence[Message] | None = None,
              completion: Sequence[Message] | None = None) -> str:
    """The text dedup compares for one record (see the module docstring); "" when there is none."""
    if kind == "cpt":
        return text or ""
    if kind == "sft":
        return conversation_text(system, messages)
    if kind == "preference":
        return conversation_text(system, [*(prompt or ()), *(completion or ())])
    return ""


def normalized_key(key: str, lowercase: bool = True) -> str:
    """Whitespace runs -> one space, ends stripped, casefolded when ``lowercase``."""
    return " ".join((key.casefold() if lowercase else key).split())


def exact_key_hash(key: str, lowercase: bool = True) -> str:
    """128-bit hex digest of :func:`normalized_key`: equal keys up to case and spacing collide."""
    return hashlib.blake2b(normalized_key(key, lowercase).encode("utf-8"), digest_size=16).hexdigest()


def _word_text(text: str, lowercase: bool) -> str:
    """The text's ``\\w+`` tokens, separated by one or more spaces (and nothing else)."""
    if lowercase:
        text = text.casefold()
    if text.isascii():
        return text.translate(_ASCII_NON_WORD)
    return " ".join(_WORD_RE.findall(text))


def shingle_batch(texts: Sequence[str], ngram: int = 5, unit: str = "word",
                  lowercase: bool = True) -> tuple[list[bytes], np.ndarray]:
    """Shingles of many texts at once: ``(flat, counts)`` where ``flat`` is every text's
    :func:`udfs.minhash.shingles` concatenated in order and ``counts[i]`` how many belong to text i.

    Word shingles are cut from one buffer holding every text's tokens joined by single spaces, by
    byte offsets computed with numpy, instead of one ``" ".join`` per shingle: about 4x faster on
    2 KB documents. Char-mode texts (``unit="char"``, or ``auto`` on Chinese/Japanese/Thai...) go
    through :func:`udfs.minhash.shingles` itself.
    """
    if ngram < 1:
        msg = f"ngram must be >= 1, got {ngram}"
        raise ValueError(msg)
    if unit not in ("word", "char", "auto"):
        msg = f"unit must be 'word', 'char' or 'auto', got {unit!r}"
        raise ValueError(msg)
    n_docs = len(texts)
    char_docs: dict[int, list[bytes]] = {}
    pieces: list[str] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        if unit == "char" or (unit == "auto" and not text.isascii() and is_mostly_no_space_script(text)):
            char_docs[i] = shingles(text, ngram=ngram, unit="char", lowercase=lowercase)
        else:
            pieces.append(_word_text(text, lowercase))
            owners.append(i)
    word_flat: list[bytes] = []
    token_counts = np.zeros(n_docs, dtype=np.int64)
    if pieces:
        # One buffer for the batch: word bytes and spaces only (UTF-8 never uses 0x20 inside a
        # character), so tokens are the runs of non-space bytes.
        raw = np.frombuffer(" ".join(pieces).encode("utf-8"), dtype=np.uint8)
        word = raw != 32
        prev_word = np.concatenate(([False], word[:-1]))
        next_word = np.concatenate((word[1:], [False]))
        starts = np.flatnonzero(word & ~prev_word)
        ends = np.flatnonzero(word & ~next_word) + 1
        piece_start = np.concatenate(([0], np.cumsum([len(p.encode("utf-8")) + 1 for p in pieces])[:-1]))
        owner = np.asarray(owners, dtype=np.int64)[np.searchsorted(piece_start, starts, side="right") - 1]
        token_counts = np.bincount(owner, minlength=n_docs).astype(np.int64)
        # Collapse to tokens joined by exactly one space, the bytes `" ".join(tokens)` would give:
        # keep every token byte and the one space after each token but the last.
        keep = word.copy()
        keep[ends[:-1]] = True
        buf = raw[keep].tobytes()
        lengths = ends - starts
        tok_start = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        tok_end = tok_start + lengths
    word_counts = np.where(token_counts > ngram, token_counts - ngram + 1, np.minimum(token_counts, 1))
    if pieces and len(tok_start):
        first_token = np.concatenate(([0], np.cumsum(token_counts)[:-1]))
        total = int(word_counts.sum())
        doc_of = np.repeat(np.arange(n_docs), word_counts)
        within = np.arange(total) - np.repeat(np.cumsum(word_counts) - word_counts, word_counts)
        first = first_token[doc_of] + within
        last = first + np.minimum(token_counts, ngram)[doc_of] - 1
        word_flat = [buf[a:b] for a, b in zip(tok_start[first].tolist(), tok_end[last].tolist(), strict=True)]
    if not char_docs:
        return word_flat, word_counts
    counts = word_counts.copy()
    flat: list[bytes] = []
    pos = 0
    for i in range(n_docs):
        if i in char_docs:
            flat += char_docs[i]
            counts[i] = len(char_docs[i])
        else:
            flat += word_flat[pos : pos + int(word_counts[i])]
            pos += int(word_counts[i])
    return flat, counts

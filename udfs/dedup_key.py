"""What the dedup stage compares, per kind, and a fast batch shingler for it (pure Python + numpy).

The dedup key of a record is the text whose duplicates matter for training:

- ``cpt``: the text;
- ``sft``: the whole conversation, role-tagged, system first (``system: ...``, ``user: ...``,
  ``assistant: ...`` one turn after another; tool calls and reasoning are part of a turn);
- ``preference``: the prompt (system + prompt turns, role-tagged the same way), so two pairs on the
  same prompt are duplicates and one is kept. Unpaired feedback (KTO, scored texts: a
  ``completion`` instead of ``chosen``/``rejected``) adds its completion: several completions of one
  prompt, each with its own label or score, are what such a set is made of, not duplicates.

Exact dedup compares :func:`exact_key_hash`: XXH3-128 of the key with whitespace runs collapsed to
one space, ends stripped and, with ``lowercase`` (the default), casefolded. Near dedup compares the
MinHash of :func:`shingle_batch`, which equals :func:`udfs.minhash.shingles` key by key.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import xxhash

from udfs.minhash import _WHITESPACE_RE, _WORD_RE, is_mostly_no_space_script

Message = Mapping[str, Any]

# ASCII characters that are not `\w` become spaces: on ASCII text `translate(...).split()` equals
# `\w+` findall (Python's `\w` is [A-Za-z0-9_] there) at a fraction of the cost.
# What str.split() splits on, among ASCII bytes: \t \n \v \f \r, the separators 0x1c-0x1f, space.
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_ASCII_WORD = np.zeros(256, dtype=bool)  # `\w` among ASCII bytes
_ASCII_WORD[[c for c in range(128) if chr(c).isalnum() or chr(c) == "_"]] = True
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
    return xxhash.xxh3_128_hexdigest(normalized_key(key, lowercase).encode("utf-8"))


@functools.lru_cache(maxsize=1)
def _collapse_kernel() -> Callable[..., int] | None:
    """A numba loop doing :func:`normalized_key` on ASCII bytes (None without numba)."""
    try:
        from udfs.jit import njit
    except ImportError:
        return None

    @njit
    def collapse(raw: Any, starts: Any, lengths: Any, lower: bool, space: Any, out: Any, out_ends: Any) -> None:
        o = 0
        for k in range(starts.shape[0]):
            started = False  # a non-space byte of this text was written
            pending = False  # a space run after it, not yet written
            for i in range(starts[k], starts[k] + lengths[k]):
                c = raw[i]
                if space[c]:
                    pending = started
                    continue
                if pending:
                    out[o] = 32
                    o += 1
                    pending = False
                if lower and 65 <= c <= 90:
                    c += 32
                out[o] = c
                o += 1
                started = True
            out_ends[k] = o

    return collapse


def exact_key_hashes(keys: Sequence[str], lowercase: bool = True) -> list[str]:
    """:func:`exact_key_hash` of many keys; ASCII keys (casefold is lower-casing there) are
    normalized in one compiled pass over their bytes when numba is installed, about 10x faster than
    ``split``/``join`` per key."""
    kernel = _collapse_kernel()
    out: list[str | None] = [None] * len(keys)
    ascii_ix = [i for i, k in enumerate(keys) if k.isascii()] if kernel is not None else []
    if ascii_ix:
        texts = [keys[i] for i in ascii_ix]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        raw = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8)
        buf = np.empty(len(raw), dtype=np.uint8)
        ends = np.empty(len(texts), dtype=np.int64)
        kernel(raw, np.cumsum(lengths) - lengths, lengths, lowercase, _ASCII_SPACE, buf, ends)
        collapsed = buf[: int(ends[-1])].tobytes()
        digest = xxhash.xxh3_128_hexdigest
        for i, a, b in zip(ascii_ix, [0, *ends[:-1].tolist()], ends.tolist(), strict=True):
            out[i] = digest(collapsed[a:b])
    for i, k in enumerate(keys):
        if out[i] is None:
            out[i] = exact_key_hash(k, lowercase)
    return out  # type: ignore[return-value]


def _word_text(text: str, lowercase: bool) -> str:
    """The text's ``\\w+`` tokens, separated by one or more spaces (and nothing else)."""
    if lowercase:
        text = text.casefold()
    if text.isascii():
        return text.translate(_ASCII_NON_WORD)
    return " ".join(_WORD_RE.findall(text))


class Spans(NamedTuple):
    """Shingles as byte spans of one buffer: shingle k is ``buf[starts[k]:ends[k]]``; the first
    ``counts[0]`` belong to text 0, the next ``counts[1]`` to text 1, and so on."""

    buf: bytes
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    counts: np.ndarray  # int64, one per text

    def shingles(self) -> list[bytes]:
        buf = self.buf
        return [buf[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True)]


def _char_text(text: str, lowercase: bool) -> str:
    if lowercase:
        text = text.casefold()
    return _WHITESPACE_RE.sub(" ", text).strip()


def _check(ngram: int, unit: str) -> None:
    if ngram < 1:
        msg = f"ngram must be >= 1, got {ngram}"
        raise ValueError(msg)
    if unit not in ("word", "char", "auto"):
        msg = f"unit must be 'word', 'char' or 'auto', got {unit!r}"
        raise ValueError(msg)


def _windows(unit_start: np.ndarray, unit_end: np.ndarray, per_text: np.ndarray, ngram: int) -> tuple[np.ndarray, ...]:
    """Spans of every ``ngram`` consecutive units within each text (one span of all units when a
    text has ``ngram`` or fewer, none when it has none), and the number of spans per text."""
    counts = np.where(per_text > ngram, per_text - ngram + 1, np.minimum(per_text, 1)).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, counts
    first_unit = np.concatenate(([0], np.cumsum(per_text)[:-1]))
    text_of = np.repeat(np.arange(len(per_text)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    first = first_unit[text_of] + within
    last = first + np.minimum(per_text, ngram)[text_of] - 1
    return unit_start[first], unit_end[last], counts


def _word_spans(pieces: list[str], ngram: int) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Word shingles of texts already reduced to ``\\w+`` tokens separated by spaces: one buffer
    holding every text's tokens joined by single spaces, so that a shingle is a plain byte span
    (the bytes ``" ".join(tokens[i:i + ngram])`` would give)."""
    raw = np.frombuffer(" ".join(pieces).encode("utf-8"), dtype=np.uint8)
    # UTF-8 never uses 0x20 inside a character: tokens are the runs of non-space bytes.
    word = raw != 32
    prev_word = np.concatenate(([False], word[:-1]))
    next_word = np.concatenate((word[1:], [False]))
    starts = np.flatnonzero(word & ~prev_word)
    ends = np.flatnonzero(word & ~next_word) + 1
    piece_start = np.concatenate(([0], np.cumsum([len(p.encode("utf-8")) + 1 for p in pieces])[:-1]))
    owner = np.searchsorted(piece_start, starts, side="right") - 1
    per_text = np.bincount(owner, minlength=len(pieces)).astype(np.int64)
    # Keep every token byte and the one space after each token but the last.
    keep = word.copy()
    keep[ends[:-1]] = True
    buf = raw[keep].tobytes()
    lengths = ends - starts
    tok_start = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
    span_start, span_end, counts = _windows(tok_start, tok_start + lengths, per_text, ngram)
    return buf, span_start, span_end, counts


@functools.lru_cache(maxsize=1)
def _word_spans_kernel() -> Callable[..., Any] | None:
    """A numba pass doing :func:`_word_spans` (and, for raw ASCII texts, :func:`_word_text`) over
    bytes: about 5x faster than the numpy version. None without numba."""
    try:
        from udfs.jit import njit
    except ImportError:
        return None

    @njit(inline="always")
    def is_word(c: Any, ascii_text: bool, word_byte: Any) -> bool:
        # raw ASCII: \\w is [A-Za-z0-9_]; pre-tokenized UTF-8: every byte but the space
        return word_byte[c] if ascii_text else c != 32

    @njit
    def word_spans(raw: Any, bounds: Any, raw_ascii: Any, word_byte: Any, lower: bool, ngram: int) -> Any:
        n_texts = bounds.shape[0] - 1
        # Pass 1: tokens per text, so that the arrays below are allocated at their size.
        per_text = np.zeros(n_texts, dtype=np.int64)
        for k in range(n_texts):
            ascii_text = raw_ascii[k]
            prev = False
            m = 0
            for i in range(bounds[k], bounds[k + 1]):
                w = is_word(raw[i], ascii_text, word_byte)
                if w and not prev:
                    m += 1
                prev = w
            per_text[k] = m
        n_tokens = per_text.sum()
        # Pass 2: tokens copied (lower-cased) into one buffer, one space between tokens.
        # Output <= input, plus one space where a text's first token follows the previous text's last.
        buf = np.empty(raw.shape[0] + n_texts, dtype=np.uint8)
        tok_start = np.empty(n_tokens, dtype=np.int64)
        tok_end = np.empty(n_tokens, dtype=np.int64)
        o = 0
        t = 0
        for k in range(n_texts):
            ascii_text = raw_ascii[k]
            in_token = False
            for i in range(bounds[k], bounds[k + 1]):
                c = raw[i]
                if is_word(c, ascii_text, word_byte):
                    if not in_token:
                        if o > 0:
                            buf[o] = 32
                            o += 1
                        tok_start[t] = o
                        in_token = True
                    if lower and ascii_text and 65 <= c <= 90:
                        c += 32
                    buf[o] = c
                    o += 1
                elif in_token:
                    tok_end[t] = o
                    t += 1
                    in_token = False
            if in_token:
                tok_end[t] = o
                t += 1
        # Windows of `ngram` tokens within each text.
        counts = np.empty(n_texts, dtype=np.int64)
        total = 0
        for k in range(n_texts):
            m = per_text[k]
            counts[k] = m - ngram + 1 if m > ngram else min(m, 1)
            total += counts[k]
        starts = np.empty(total, dtype=np.int64)
        ends = np.empty(total, dtype=np.int64)
        s = 0
        first = 0
        for k in range(n_texts):
            width = min(per_text[k], ngram)
            for j in range(counts[k]):
                starts[s] = tok_start[first + j]
                ends[s] = tok_end[first + j + width - 1]
                s += 1
            first += per_text[k]
        return buf[:o], starts, ends, counts

    return word_spans


def _word_spans_fast(texts: list[str], lowercase: bool, ngram: int,
                     kernel: Callable[..., Any]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    raw_ascii = np.fromiter((t.isascii() for t in texts), dtype=np.bool_, count=len(texts))
    # ASCII texts go in as they are (the kernel lower-cases and tokenizes them); others as their
    # \w+ tokens joined by spaces.
    encoded = [t.encode("ascii") if a else _word_text(t, lowercase).encode("utf-8")
               for t, a in zip(texts, raw_ascii.tolist(), strict=True)]
    bounds = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=bounds[1:])
    raw = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    buf, starts, ends, counts = kernel(raw, bounds, raw_ascii, _ASCII_WORD, lowercase, ngram)
    return buf.tobytes(), starts, ends, counts


def _char_spans(texts: list[str], ngram: int) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Character shingles of whitespace-collapsed texts: spans between UTF-8 character starts."""
    encoded = [t.encode("utf-8") for t in texts]
    buf = b"".join(encoded)
    raw = np.frombuffer(buf, dtype=np.uint8)
    char_start = np.flatnonzero((raw & 0xC0) != 0x80).astype(np.int64)  # not a continuation byte
    char_end = np.append(char_start[1:], len(raw)).astype(np.int64)
    per_text = np.array([len(t) for t in texts], dtype=np.int64)
    span_start, span_end, counts = _windows(char_start, char_end, per_text, ngram)
    return buf, span_start, span_end, counts


def shingle_spans(texts: Sequence[str], ngram: int = 5, unit: str = "word", lowercase: bool = True,
                  kernel: bool | None = None) -> Spans:
    """Shingles of many texts at once as byte spans (:class:`Spans`); span by span the bytes equal
    :func:`udfs.minhash.shingles` of each text, so hashing the spans gives datasketch's values
    without building one ``bytes`` object per shingle.

    ``auto`` picks char shingles for a text written mostly in a script without spaces (Chinese,
    Japanese, Thai...: :func:`udfs.minhash.is_mostly_no_space_script`), word shingles otherwise.
    Word shingles go through a numba pass when numba is installed (``kernel=None``; True requires
    it, False forces the numpy path: both give the same spans).
    """
    _check(ngram, unit)
    word_kernel = _word_spans_kernel() if kernel is not False else None
    if kernel and word_kernel is None:
        msg = "kernel=True needs numba: pip install numba"
        raise ImportError(msg)
    n_texts = len(texts)
    word_ix: list[int] = []
    word_pieces: list[str] = []
    char_ix: list[int] = []
    char_pieces: list[str] = []
    for i, text in enumerate(texts):
        if unit == "char" or (unit == "auto" and not text.isascii() and is_mostly_no_space_script(text)):
            char_ix.append(i)
            char_pieces.append(_char_text(text, lowercase))
        else:
            word_ix.append(i)
            word_pieces.append(text if word_kernel is not None else _word_text(text, lowercase))
    parts = []
    if word_pieces:
        parts.append((word_ix, _word_spans_fast(word_pieces, lowercase, ngram, word_kernel) if word_kernel is not None
                      else _word_spans(word_pieces, ngram)))
    if char_pieces:
        parts.append((char_ix, _char_spans(char_pieces, ngram)))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Spans(b"", empty, empty, np.zeros(n_texts, dtype=np.int64))
    if len(parts) == 1:
        (_, (buf, starts, ends, counts)), = parts
        return Spans(buf, starts, ends, counts)
    # Mixed batch: char spans move past the word buffer, then every text's spans go in text order.
    (w_ix, (w_buf, w_starts, w_ends, w_counts)), (c_ix, (c_buf, c_starts, c_ends, c_counts)) = parts
    counts = np.zeros(n_texts, dtype=np.int64)
    counts[w_ix] = w_counts
    counts[c_ix] = c_counts
    starts = np.concatenate((w_starts, c_starts + len(w_buf)))
    ends = np.concatenate((w_ends, c_ends + len(w_buf)))
    # Source position of each text's first span in the concatenation above.
    source_first = np.zeros(n_texts, dtype=np.int64)
    source_first[w_ix] = np.cumsum(w_counts) - w_counts
    source_first[c_ix] = len(w_starts) + np.cumsum(c_counts) - c_counts
    text_of = np.repeat(np.arange(n_texts), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    order = source_first[text_of] + within
    return Spans(w_buf + c_buf, starts[order], ends[order], counts)


def shingle_batch(texts: Sequence[str], ngram: int = 5, unit: str = "word",
                  lowercase: bool = True, kernel: bool | None = None) -> tuple[list[bytes], np.ndarray]:
    """Shingles of many texts at once: ``(flat, counts)`` where ``flat`` is every text's
    :func:`udfs.minhash.shingles` concatenated in order and ``counts[i]`` how many belong to text i
    (:func:`shingle_spans`, cut into ``bytes``)."""
    spans = shingle_spans(texts, ngram, unit, lowercase, kernel)
    return spans.shingles(), spans.counts

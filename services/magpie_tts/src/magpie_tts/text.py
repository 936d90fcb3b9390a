"""Text clean-up and sentence chunking ahead of synthesis."""

import re
import unicodedata

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": ",",
        "\u2014": ",",
        "\u2026": "...",
        "\u00a0": " ",
    }
)
# Symbols, private-use, surrogates and unassigned code points: emoji and the like crash or
# derail phonemisers and are not speech anyway.
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Co", "Cs", "Cn", "Cf"})
_WHITESPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace,
# or at a CJK terminator, which needs no space after it.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|(?<=[\u3002\uff01\uff1f\uff1b])\s*")
_CLAUSE_END = re.compile(r"(?<=[,;:\uff0c\u3001\uff1b\uff1a])\s*")
# Fragments this short are merged into a neighbour: autoregressive models (Magpie) tend to
# truncate or garble one-word utterances, and each call has a fixed cost.
_MIN_CHUNK_CHARS = 12


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            kept.append(" ")
        elif category not in _DROPPED_CATEGORIES:
            kept.append(char)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _WHITESPACE.sub(" ", "".join(kept))).strip()


def _join(left: str, right: str) -> str:
    return left + right if _CJK.match(left[-1]) else f"{left} {right}"


def _split_long(piece: str, max_chars: int) -> list[str]:
    if len(piece) <= max_chars:
        return [piece]
    out: list[str] = []
    for splitter in (_CLAUSE_END, _WHITESPACE):
        parts = [p for p in splitter.split(piece) if p]
        if len(parts) > 1:
            current = ""
            for part in parts:
                candidate = _join(current, part) if current else part
                if len(candidate) <= max_chars:
                    current = candidate
                    continue
                if current:
                    out.append(current)
                current = part
            if current:
                out.append(current)
            return [chunk for item in out for chunk in _split_long(item, max_chars)]
    # No clause or word boundary (e.g. unpunctuated Chinese): cut at the limit.
    return [piece[i : i + max_chars] for i in range(0, len(piece), max_chars)]


def speakable(chunk: str) -> bool:
    """Whether a chunk has anything to say: a letter or a digit.

    Punctuation- or symbol-only sentences (`...`, `?!`, `)`) give some engines no audio at all,
    and piper's program dies on them; they carry no words, so they are not synthesised.
    """
    return any(unicodedata.category(char)[0] in "LN" for char in chunk)


def split_chunks(text: str, max_chars: int) -> list[str]:
    """Sentences of `text`, each at most `max_chars` long, in order."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    pieces = [chunk for sentence in sentences for chunk in _split_long(sentence, max_chars)]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        current = piece
        if carry and len(_join(carry, piece)) <= max_chars:
            current = _join(carry, piece)
        elif carry:
            merged.append(carry)
        carry = ""
        if len(current) < _MIN_CHUNK_CHARS:
            carry = current
        else:
            merged.append(current)
    if carry:
        if merged and len(_join(merged[-1], carry)) <= max_chars:
            merged[-1] = _join(merged[-1], carry)
        else:
            merged.append(carry)
    return merged

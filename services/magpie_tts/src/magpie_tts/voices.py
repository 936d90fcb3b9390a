"""Voice and language resolution: Magpie names, OpenAI names and NIM-style names."""

from .engines import Speaker
from .errors import OpenAIError, invalid

# OpenAI's built-in voices mapped onto the five Magpie speakers by timbre, so that clients which
# hard-code an OpenAI voice still get a sensible one.
OPENAI_ALIASES = {
    "alloy": "aria",
    "ash": "leo",
    "ballad": "jason",
    "coral": "aria",
    "echo": "jason",
    "fable": "leo",
    "onyx": "john",
    "nova": "sofia",
    "sage": "aria",
    "shimmer": "sofia",
    "verse": "john",
    "marin": "sofia",
    "cedar": "john",
}
_LANGUAGE_ALIASES = {"cmn": "zh"}


def normalize_language(raw: str) -> str:
    base = raw.strip().replace("_", "-").split("-")[0].lower()
    return _LANGUAGE_ALIASES.get(base, base)


def resolve_voice(raw: str, speakers: tuple[Speaker, ...]) -> tuple[Speaker, str | None]:
    """The speaker for a voice name and the language the name implies, if any.

    Accepts `aria`, `Aria`, `alloy` and NIM's `Magpie-Multilingual.EN-US.Aria[.Emotion]`.
    """
    by_id = {name: speaker for speaker in speakers for name in (*speaker.aliases, speaker.id)}
    name = raw.strip().lower()
    language: str | None = None
    parts = name.split(".")
    if len(parts) >= 3 and parts[0].startswith("magpie"):
        language, name = normalize_language(parts[1]), parts[2]
    name = OPENAI_ALIASES.get(name, name)
    if name not in by_id:
        known = ", ".join(sorted([*by_id, *OPENAI_ALIASES]))
        raise invalid(f"Voice '{raw}' is not available. Choose one of: {known}.", "voice", "invalid_voice")
    return by_id[name], language


def resolve_language(requested: str | None, implied: str | None, default: str, supported: tuple[str, ...]) -> str:
    language = normalize_language(requested) if requested else (implied or default)
    if language not in supported:
        raise OpenAIError(
            400,
            f"Language '{requested or language}' is not supported. Supported: {', '.join(supported)}.",
            param="language",
            code="unsupported_language",
        )
    return language


def aliases_for(speaker: Speaker) -> list[str]:
    names = {speaker.id, *speaker.aliases}
    return sorted({*speaker.aliases, *(alias for alias, target in OPENAI_ALIASES.items() if target in names)})

"""Request and response bodies (OpenAI's `/v1/audio/speech` plus the `language` extension)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .audio import ResponseFormat

MAX_INPUT_CHARS = 4096


class VoiceRef(BaseModel):
    id: str = Field(min_length=1, max_length=200)


class SpeechRequest(BaseModel):
    # Unknown fields are ignored rather than rejected: client libraries add new ones over time.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    voice: str | VoiceRef = Field(description="A voice name, or {'id': name}.")
    instructions: str | None = Field(
        default=None, max_length=MAX_INPUT_CHARS, description="Accepted for compatibility; Magpie ignores it."
    )
    response_format: ResponseFormat = "mp3"
    # Strict, as OpenAI is: `true` or `"2"` is a client bug, not a speed.
    speed: float = Field(default=1.0, ge=0.25, le=4.0, strict=True)
    stream_format: Literal["audio", "sse"] = "audio"
    language: str | None = Field(
        default=None,
        max_length=35,
        description="ISO 639-1 code or locale (en, es, de, fr, it, vi, zh, en-US ...). Defaults to the "
        "voice's locale when the voice is a NIM-style name, else to the service default.",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class VoiceCard(BaseModel):
    id: str
    name: str
    gender: str
    languages: list[str]
    aliases: list[str]


class VoiceList(BaseModel):
    voices: list[VoiceCard]


class Status(BaseModel):
    status: str
    engine: str | None = None
    detail: str | None = None

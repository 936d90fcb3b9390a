"""Service settings, read from `MAGPIE_TTS_*` environment variables."""

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["magpie", "piper", "espeak"]

MAGPIE_LANGUAGES = ("en", "es", "de", "fr", "it", "vi", "zh")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAGPIE_TTS_", env_nested_delimiter="__", extra="ignore")

    engine: EngineName = "magpie"
    # The container must listen on its pod address, not only on loopback.
    host: str = "0.0.0.0"
    port: int = 8000
    log_level: str = "info"

    model_id: str = "magpie-tts-multilingual"
    # OpenAI clients hard-code these ids; they all resolve to the one model this service serves.
    model_aliases: list[str] = Field(
        default_factory=lambda: [
            "tts-1",
            "tts-1-hd",
            "gpt-4o-mini-tts",
            "gpt-4o-mini-tts-2025-12-15",
            "nvidia/magpie_tts_multilingual_357m",
        ]
    )
    default_language: str = "en"

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_active_streams: int = Field(default=8, ge=1)
    max_queued_streams: int = Field(default=16, ge=0)
    retry_after_seconds: int = Field(default=1, ge=1)
    # Sentences synthesised ahead of the one being sent: keeps the engine busy while the
    # client drains audio without letting one request flood the micro-batcher.
    prefetch_chunks: int = Field(default=2, ge=0, le=8)

    magpie_model_dir: Path = Path("/models/magpie")
    magpie_checkpoint: str = "magpie_tts_multilingual_357m.nemo"
    magpie_codec: str = "nemo-nano-codec-22khz-1.89kbps-21.5fps.nemo"
    # Empty means "whatever revision the image recorded"; set it to refuse any other checkpoint.
    magpie_revision: str = ""
    magpie_device: str = "cuda"
    magpie_use_cfg: bool = True
    magpie_text_normalization: bool = True
    magpie_max_batch: int = Field(default=8, ge=1, le=64)
    magpie_batch_window_ms: float = Field(default=15.0, ge=0.0, le=500.0)
    magpie_languages: list[str] = Field(default_factory=lambda: list(MAGPIE_LANGUAGES))

    piper_model: Path | None = None
    # One piper process already spreads each sentence over every core (onnxruntime's thread pool);
    # a second on the same cores costs each sentence about a third more CPU and makes a request slower.
    piper_processes: int = Field(default=1, ge=1, le=16)

    espeak_executable: str = "espeak-ng"
    # More parallel espeak-ng processes than cores only adds contention.
    espeak_max_parallel: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=64)
    # Niceness of the CPU engines' child processes: above 0, the API process (probes, streaming,
    # encoding) is scheduled first when synthesis saturates the CPU, but on a shared machine synthesis
    # also yields to every other process there (at 10, piper took 1.07-1.23x the time of piper's own
    # server side by side at load 4; at 0, 0.96-1.02x), so it is off unless asked for.
    engine_nice: int = Field(default=0, ge=0, le=19)

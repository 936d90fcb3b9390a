"""Synthesis engines, chosen by `MAGPIE_TTS_ENGINE`.

No engine module imports its runtime at import time (NeMo/torch are loaded by the magpie engine
when it starts; piper and espeak-ng are separate programs), so all three import cheaply.
"""

from ..config import Settings
from .base import BatchObserver, EngineAudio, EngineError, Speaker, SpeechEngine
from .espeak import EspeakEngine
from .magpie import MagpieEngine
from .piper import PiperEngine

__all__ = ["BatchObserver", "EngineAudio", "EngineError", "Speaker", "SpeechEngine", "build_engine"]


def build_engine(settings: Settings, on_batch: BatchObserver) -> SpeechEngine:
    if settings.engine == "magpie":
        return MagpieEngine(settings, on_batch)
    if settings.engine == "piper":
        return PiperEngine(settings.piper_model, settings.piper_processes, on_batch, settings.engine_nice)
    return EspeakEngine(settings.espeak_executable, settings.espeak_max_parallel, on_batch, settings.engine_nice)

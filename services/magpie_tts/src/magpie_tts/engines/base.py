"""The interface every synthesis engine implements."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

Gender = Literal["female", "male", "unknown"]
BatchObserver = Callable[[int], None]
T = TypeVar("T")


class EngineError(RuntimeError):
    """Synthesis failed for a reason the client cannot fix by retrying the same input."""


@dataclass(frozen=True)
class Speaker:
    id: str
    name: str
    gender: Gender
    # Other names that select this speaker: an engine with fewer voices than Magpie answers to
    # Magpie's names without claiming to have those voices.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineAudio:
    """Mono int16 audio at the engine's native rate.

    `speed_applied` tells the pipeline how much of the requested speed the engine already
    realised, so that only the remainder is done by time-stretching.
    """

    samples: npt.NDArray[np.int16]
    sample_rate: int
    speed_applied: float = 1.0

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


# The five speakers baked into the Magpie multilingual checkpoint; the CPU engines imitate them
# so that a request written against production works unchanged in the lab.
MAGPIE_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("john", "John", "male"),
    Speaker("sofia", "Sofia", "female"),
    Speaker("aria", "Aria", "female"),
    Speaker("jason", "Jason", "male"),
    Speaker("leo", "Leo", "male"),
)


@runtime_checkable
class SpeechEngine(Protocol):
    name: str

    @property
    def ready(self) -> bool: ...

    @property
    def languages(self) -> tuple[str, ...]: ...

    @property
    def speakers(self) -> tuple[Speaker, ...]: ...

    def max_chunk_chars(self, language: str) -> int:
        """Longest text one synthesis call accepts for this language."""
        ...

    def pending(self) -> int:
        """Chunks waiting for the engine (queue depth inside the engine)."""
        ...

    async def start(self) -> None:
        """Load and warm up; `ready` is true once this returns."""
        ...

    async def close(self) -> None: ...

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        """Synthesise one chunk. Cancelling the call abandons the work."""
        ...


class CpuEngine:
    """What the CPU engines share: the Magpie speaker names, sentence-sized chunks, and a count of
    requests waiting for a free synthesis slot (the service's queue depth)."""

    def __init__(self) -> None:
        self._waiting = 0
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        return MAGPIE_SPEAKERS

    def max_chunk_chars(self, language: str) -> int:
        return 400

    def pending(self) -> int:
        return self._waiting

    async def _wait_for(self, slot: Awaitable[T]) -> T:
        """Await a synthesis slot, counted as waiting until it is granted."""
        self._waiting += 1
        try:
            return await slot
        finally:
            self._waiting -= 1


def niced(command: list[str], niceness: int) -> list[str]:
    """`command` run through nice(1) when `niceness` is set."""
    return ["nice", "-n", str(niceness), *command] if niceness > 0 else command


def float_to_int16(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)

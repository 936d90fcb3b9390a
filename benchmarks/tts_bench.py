"""Benchmark the speech service on the CPU engines (piper, espeak-ng), side by side with piper's own
HTTP server and with the engines called directly in-process.

The anchor is piper's own server (`python -m piper.http_server`, same voice, WAV): the service and
that server answer the same texts alternately, run by run, so both see the same machine, and the
table reports medians and their ratios (service / piper's server) for total time and first byte.

For each engine it also measures, in one run:
- time to first audio byte (p50/p95) for a one-sentence and a ten-sentence input, through the
  service (a `python -m magpie_tts` process on loopback) and, as the baseline, the engine's own
  time for the first sentence;
- real-time factor (engine time / audio time) and total time, direct vs through the service;
- throughput with 1, 2, 4 and 8 concurrent ten-sentence streams (seconds of audio per wall-clock
  second, pcm so that encoding is measured separately);
- resampling + encoding cost per format, as a share of the audio duration;
- the cost of HTTP itself on loopback (median `GET /health`), the floor under any service overhead.

Prints a table and writes `benchmarks/results/tts.json`. It asserts nothing.

    python benchmarks/tts_bench.py [--engines piper,espeak] [--runs 20] [--anchor-runs 15]
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from magpie_tts.audio import AudioPipeline
from magpie_tts.config import Settings
from magpie_tts.engines import EngineAudio, SpeechEngine, build_engine
from magpie_tts.engines.piper import default_piper_model
from magpie_tts.text import clean_text, split_chunks

ONE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
TEN = " ".join(
    [
        "The quick brown fox jumps over the lazy dog near the quiet river bank.",
        "Morning light spread slowly across the hills and the fields below.",
        "A small boat drifted past the harbour while the gulls circled overhead.",
        "She opened the letter, read the first line, and smiled at the news.",
        "Trains left the station every ten minutes during the busy holiday season.",
        "The old library kept its rarest books behind a locked glass door.",
        "After the storm, the streets were quiet and the air smelled of rain.",
        "He wrote the numbers down carefully and checked them twice before leaving.",
        "Children played in the park until the lamps came on along the path.",
        "By evening the whole town had gathered to watch the fireworks over the bay.",
    ]
)
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONCURRENCY = (1, 2, 4, 8)
RESULTS = Path(__file__).resolve().parent / "results" / "tts.json"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def direct_once(engine: SpeechEngine, chunks: list[str]) -> tuple[float, float, float]:
    """(first chunk time, total time, audio seconds) with the engine called in-process."""
    started = time.perf_counter()
    first, audio_seconds = 0.0, 0.0
    for index, chunk in enumerate(chunks):
        audio = await engine.synthesize(chunk, speaker="aria", language="en", speed=1.0)
        if index == 0:
            first = time.perf_counter() - started
        audio_seconds += audio.seconds
    return first, time.perf_counter() - started, audio_seconds


async def side_by_side(engine: SpeechEngine, service: "Service", text: str, runs: int) -> dict[str, Any]:
    """Engine alone and through the service, alternating run by run so both see the same load."""
    chunks = split_chunks(clean_text(text), engine.max_chunk_chars("en"))
    await asyncio.to_thread(service.speak, text)  # warm the connection and the request path
    d_first, d_total, s_first, s_total = [], [], [], []
    audio_seconds, size = 0.0, 0
    for _ in range(runs):
        first, total, audio_seconds = await direct_once(engine, chunks)
        d_first.append(first)
        d_total.append(total)
        first, total, size = await asyncio.to_thread(service.speak, text)
        s_first.append(first)
        s_total.append(total)
    served_seconds = size / 2 / 24_000
    return {
        "chunks": len(chunks),
        "engine_first_chunk_p50_ms": statistics.median(d_first) * 1000,
        "engine_first_chunk_p95_ms": pct(d_first, 95) * 1000,
        "engine_total_p50_ms": statistics.median(d_total) * 1000,
        "engine_rtf": statistics.median(d_total) / audio_seconds,
        "service_ttfb_p50_ms": statistics.median(s_first) * 1000,
        "service_ttfb_p95_ms": pct(s_first, 95) * 1000,
        "service_total_p50_ms": statistics.median(s_total) * 1000,
        "service_rtf": statistics.median(s_total) / served_seconds,
        "audio_seconds": served_seconds,
        "ttfb_minus_engine_first_ms": (statistics.median(s_first) - statistics.median(d_first)) * 1000,
        "total_overhead_pct": 100
        * (statistics.median(s_total) - statistics.median(d_total))
        / statistics.median(d_total),
    }


async def collect_audio(engine: SpeechEngine, text: str) -> list[EngineAudio]:
    chunks = split_chunks(clean_text(text), engine.max_chunk_chars("en"))
    return [await engine.synthesize(c, speaker="aria", language="en", speed=1.0) for c in chunks]


def encoding_cost(audio: list[EngineAudio], runs: int) -> dict[str, dict[str, float]]:
    seconds = sum(a.seconds for a in audio)
    out: dict[str, dict[str, float]] = {}
    for fmt in FORMATS:
        times = []
        for _ in range(runs):
            pipeline = AudioPipeline(fmt, 1.0, time.perf_counter)  # type: ignore[arg-type]
            started = time.perf_counter()
            for part in audio:
                pipeline.feed(part.samples, part.sample_rate, part.speed_applied)
            pipeline.finish()
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        out[fmt] = {"encode_ms": median * 1000, "share_of_audio_pct": 100 * median / seconds}
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(client: httpx.Client, path: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if client.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready")


def timed_stream(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[float, float, int]:
    """(time to first byte, total time, bytes) for one POST, read as it streams."""
    size, first = 0, 0.0
    started = time.perf_counter()
    with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if chunk and not size:
                first = time.perf_counter() - started
            size += len(chunk)
    return first, time.perf_counter() - started, size


class PiperServer:
    """piper's own HTTP server (`python -m piper.http_server`) with the service's voice."""

    def __init__(self) -> None:
        port = free_port()
        model = default_piper_model()
        command = [sys.executable, "-m", "piper.http_server", "--host", "127.0.0.1", "--port", str(port)]
        self.proc = subprocess.Popen(
            [*command, "--model", str(model)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
        try:
            wait_until(self.client, "/info", self.proc, "piper.http_server")
        except RuntimeError:
            self.close()
            raise

    def speak(self, text: str) -> tuple[float, float, int]:
        return timed_stream(self.client, "/synthesize", {"text": text})

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Service:
    """`python -m magpie_tts` on a free loopback port."""

    def __init__(self, engine: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MAGPIE_TTS_ENGINE": engine,
            "MAGPIE_TTS_HOST": "127.0.0.1",
            "MAGPIE_TTS_PORT": str(self.port),
            "MAGPIE_TTS_LOG_LEVEL": "warning",
            "MAGPIE_TTS_MAX_ACTIVE_STREAMS": "8",
        }
        self.proc = subprocess.Popen([sys.executable, "-m", "magpie_tts"], env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        # One keep-alive client, as the openai SDK keeps: building a client (its TLS context alone) costs
        # tens of milliseconds that belong to the caller, not to the service.
        self.client = httpx.Client(base_url=self.url, timeout=300)
        try:
            wait_until(self.client, "/ready", self.proc, f"the {engine} service")
        except RuntimeError:
            self.close()
            raise

    def speak(self, text: str, fmt: str = "pcm") -> tuple[float, float, int]:
        """(time to first byte, total time, bytes) for one streamed request."""
        body = {"model": "tts-1", "voice": "aria", "input": text, "response_format": fmt}
        return timed_stream(self.client, "/v1/audio/speech", body)

    def http_floor(self, runs: int = 30) -> float:
        """Median seconds of the cheapest request (`GET /health`): what HTTP on loopback costs by itself."""
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.client.get("/health").raise_for_status()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def throughput(service: Service, text: str) -> dict[str, dict[str, float]]:
    out = {}
    for streams in CONCURRENCY:
        started = time.perf_counter()
        with ThreadPoolExecutor(streams) as pool:
            results = list(pool.map(lambda _: service.speak(text), range(streams)))
        wall = time.perf_counter() - started
        audio = sum(size for _, _, size in results) / 2 / 24_000
        out[str(streams)] = {
            "wall_s": wall,
            "audio_x_realtime": audio / wall,
            "ttfb_p50_ms": statistics.median(first for first, _, _ in results) * 1000,
        }
    return out


def against_piper_server(runs: int) -> dict[str, Any]:
    """The service (piper, WAV) and piper's own server, alternating request by request."""
    anchor, service = PiperServer(), Service("piper")
    try:
        out: dict[str, Any] = {}
        for size, text in (("one", ONE), ("ten", TEN)):
            times: dict[str, list[tuple[float, float, int]]] = {"piper_server": [], "service": []}
            anchor.speak(text)  # warm both request paths and connections
            service.speak(text, "wav")
            for run in range(runs):
                # Alternate which goes first so neither always follows the other's CPU burst.
                order = (("piper_server", anchor.speak), ("service", lambda t: service.speak(t, "wav")))
                for name, speak in order if run % 2 == 0 else order[::-1]:
                    times[name].append(speak(text))
            medians = {
                name: {
                    "first_byte_ms": statistics.median(t[0] for t in samples) * 1000,
                    "total_ms": statistics.median(t[1] for t in samples) * 1000,
                    "bytes": samples[-1][2],
                }
                for name, samples in times.items()
            }
            ratios = [s[1] / a[1] for a, s in zip(times["piper_server"], times["service"], strict=True)]
            out[size] = {
                **medians,
                "total_ratio": medians["service"]["total_ms"] / medians["piper_server"]["total_ms"],
                "first_byte_ratio": medians["service"]["first_byte_ms"] / medians["piper_server"]["first_byte_ms"],
                "paired_total_ratio_p50": statistics.median(ratios),
                "runs": runs,
            }
        return out
    finally:
        service.close()
        anchor.close()


def bench_engine(name: str, runs: int) -> dict[str, Any]:
    settings = Settings(engine=name)  # type: ignore[arg-type]
    service = Service(name)

    async def measure() -> dict[str, Any]:
        engine = build_engine(settings, lambda _: None)
        await engine.start()
        try:
            return {
                "one": await side_by_side(engine, service, ONE, runs),
                "ten": await side_by_side(engine, service, TEN, max(3, runs // 2)),
                "encoding": encoding_cost(await collect_audio(engine, TEN), 5),
            }
        finally:
            await engine.close()

    try:
        result = asyncio.run(measure())
        result["http_floor_ms"] = service.http_floor() * 1000
        result["throughput"] = throughput(service, TEN)
    finally:
        service.close()
    return result


def anchor_table(anchor: dict[str, Any]) -> str:
    lines = [
        "\n## service (piper, wav) vs piper's own server (python -m piper.http_server), medians",
        "| input | piper server total ms | service total ms | total ratio | paired ratio p50 "
        "| piper server 1st byte ms | service 1st byte ms | 1st byte ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, label in (("one", "1 sentence"), ("ten", "10 sentences")):
        m = anchor[size]
        a, s = m["piper_server"], m["service"]
        lines.append(
            f"| {label} | {a['total_ms']:.0f} | {s['total_ms']:.0f} | {m['total_ratio']:.3f} "
            f"| {m['paired_total_ratio_p50']:.3f} | {a['first_byte_ms']:.0f} | {s['first_byte_ms']:.0f} "
            f"| {m['first_byte_ratio']:.3f} |"
        )
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    lines = [anchor_table(results["anchor"])] if "anchor" in results else []
    for name, r in results["engines"].items():
        lines.append(f"\n## {name} (HTTP on loopback, GET /health: {r['http_floor_ms']:.1f} ms)")
        lines.append(
            "| input | engine 1st sentence p50/p95 ms | service TTFB p50/p95 ms | TTFB - engine ms "
            "| engine total ms | service total ms | overhead % | RTF engine / service |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for size, label in (("one", "1 sentence"), ("ten", "10 sentences")):
            m = r[size]
            lines.append(
                f"| {label} | {m['engine_first_chunk_p50_ms']:.0f} / {m['engine_first_chunk_p95_ms']:.0f} "
                f"| {m['service_ttfb_p50_ms']:.0f} / {m['service_ttfb_p95_ms']:.0f} "
                f"| {m['ttfb_minus_engine_first_ms']:+.1f} | {m['engine_total_p50_ms']:.0f} "
                f"| {m['service_total_p50_ms']:.0f} | {m['total_overhead_pct']:+.1f} "
                f"| {m['engine_rtf']:.3f} / {m['service_rtf']:.3f} |"
            )
        lines.append("\n| concurrent streams | wall s | audio x real time | TTFB p50 ms |")
        lines.append("|---|---|---|---|")
        for streams, t in r["throughput"].items():
            lines.append(f"| {streams} | {t['wall_s']:.2f} | {t['audio_x_realtime']:.1f} | {t['ttfb_p50_ms']:.0f} |")
        lines.append("\n| format | resample+encode ms (10 sentences) | % of audio duration |")
        lines.append("|---|---|---|")
        for fmt, e in r["encoding"].items():
            lines.append(f"| {fmt} | {e['encode_ms']:.1f} | {e['share_of_audio_pct']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="piper,espeak")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--anchor-runs", type=int, default=15, help="0 skips piper's own server")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "engines": {},
    }
    if args.anchor_runs:
        results["anchor"] = against_piper_server(args.anchor_runs)
    for name in filter(None, args.engines.split(",")):
        results["engines"][name] = bench_engine(name, args.runs)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    machine = results["machine"]
    print(
        f"{machine['cpus']} CPUs, load average {machine['load_average_at_start'][0]:.1f} at the start, "
        f"{machine['load_average_at_end'][0]:.1f} at the end"
    )
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()

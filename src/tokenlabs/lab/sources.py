"""Where the lab's binaries and upstream CRDs come from."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Template

REPO_ROOT = Path(__file__).resolve().parents[3]
VERSIONS_FILE = REPO_ROOT / "roles" / "versions" / "defaults" / "main.yml"
BUILD_SCRIPT = REPO_ROOT / "tools" / "k8s-bins" / "build.sh"

ENV_BIN = "TOKENLABS_K8S_BIN"
ENV_KWOK_STAGES = "TOKENLABS_KWOK_STAGES"
ENV_CRDS = "TOKENLABS_CRDS_DIR"
ENV_CHARTS = "TOKENLABS_CHARTS_DIR"

# The upstream charts the platform installs, with the pin that names each one's release.
CHART_PINS = {
    "gateway-helm": "versions_envoy_gateway",
    "kuadrant-operator": "versions_kuadrant_operator",
    "ai-gateway-helm": "versions_envoy_ai_gateway",
    "inferencepool": "versions_inferencepool",
    "llm-d-modelservice": "versions_llm_d_modelservice",
    "gpu-operator": "versions_gpu_operator",
}


class SourceError(RuntimeError):
    """A binary or a CRD manifest could not be found or verified."""


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    kwok_stages: Path


def versions() -> dict[str, Any]:
    """The pinned versions, with their own Jinja references resolved."""
    raw: dict[str, Any] = yaml.safe_load(VERSIONS_FILE.read_text())
    scalars = {k: v for k, v in raw.items() if isinstance(v, str)}

    def render(value: Any) -> Any:
        if isinstance(value, str):
            return Template(value).render(**scalars)
        if isinstance(value, list):
            return [render(v) for v in value]
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        return value

    return {k: render(v) for k, v in raw.items()}


def ensure_binaries() -> Binaries:
    """Run the build script (env dir, cache, download, or build) and locate kwok's stages."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SourceError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode} (its log is above)")
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    stages = Path(os.environ.get(ENV_KWOK_STAGES, bin_dir.parent / "kwok-stages"))
    if not stages.is_dir():
        raise SourceError(f"kwok stage definitions not found at {stages}; set {ENV_KWOK_STAGES}")
    return Binaries(bin_dir=bin_dir, kwok_stages=stages)


def chart_path(chart: str) -> Path:
    """The unpacked upstream chart at its pinned release: <$TOKENLABS_CHARTS_DIR or ../shared/charts>/<chart>-<ver>."""
    base = Path(os.environ.get(ENV_CHARTS) or REPO_ROOT.parent / "shared" / "charts")
    path = base / f"{chart}-{versions()[CHART_PINS[chart]].removeprefix('v')}"
    if not (path / "Chart.yaml").is_file():
        raise SourceError(f"chart {chart} not found at {path}; set {ENV_CHARTS} to a directory of unpacked charts")
    return path


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tokenlabs" / "crds"


def _download_crds(pins: dict[str, Any]) -> list[Path]:
    """Fetch each pinned CRD file once into the cache, verifying its sha256."""
    files: list[Path] = []
    for bundle, spec in pins.items():
        # Keyed by the pinned folder (named by release), so a file cached for another release is never reused.
        target = _cache_dir() / spec["dir"]
        target.mkdir(parents=True, exist_ok=True)
        for entry in spec["files"]:
            path = target / entry["name"]
            if not path.exists():
                with urllib.request.urlopen(f"{spec['base_url']}/{entry['name']}", timeout=30) as resp:
                    body = resp.read()
                if hashlib.sha256(body).hexdigest() != entry["sha256"]:
                    raise SourceError(f"{bundle}/{entry['name']}: sha256 does not match the pin")
                path.write_bytes(body)
            files.append(path)
    return files


def _local_crds(directory: Path, pins: dict[str, Any]) -> list[Path]:
    """The pinned files from an offline copy laid out <dir>/<bundle's pinned dir>/<file>, each sha256-checked.

    Only the folders the pins name are read: a copy may hold other releases side by side.
    """
    files: list[Path] = []
    problems: list[str] = []
    for bundle, spec in pins.items():
        for entry in spec["files"]:
            path = directory / spec["dir"] / entry["name"]
            if not path.is_file():
                problems.append(f"{bundle}: {path} is missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                problems.append(f"{bundle}: {path} does not match its pinned sha256")
            else:
                files.append(path)
    if problems:
        raise SourceError("; ".join(problems))
    return files


def crd_manifests() -> list[Path]:
    """The pinned upstream CRD files: $TOKENLABS_CRDS_DIR, else ../shared/crds beside the repo, else the pinned URLs.

    Kuadrant's CRDs are not among them: its chart installs them (see versions_crd_bundles).
    """
    pins: dict[str, Any] = versions()["versions_crd_bundles"]
    explicit = os.environ.get(ENV_CRDS)
    directory = Path(explicit) if explicit else REPO_ROOT.parent / "shared" / "crds"
    if explicit or directory.is_dir():
        return _local_crds(directory, pins)
    try:
        return _download_crds(pins)
    except OSError as exc:
        raise SourceError(
            f"no CRD manifests: set {ENV_CRDS}, place them in ../shared/crds, or go online ({exc})"
        ) from exc

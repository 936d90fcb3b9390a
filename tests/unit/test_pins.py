"""Versions are pinned once and agree wherever they must be repeated."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tokenlabs.lab import sources

SHARED_CRDS = REPO_ROOT.parent / "shared" / "crds"
SHARED_CHARTS = REPO_ROOT.parent / "shared" / "charts"


def _env_file() -> dict[str, str]:
    lines = (REPO_ROOT / "tools" / "k8s-bins" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_control_plane_matches_the_microk8s_channel() -> None:
    pins = sources.versions()
    assert _env_file()["K8S_VERSION"] == pins["versions_kubernetes"]
    minor = re.match(r"v(\d+\.\d+)\.", pins["versions_kubernetes"])
    assert minor is not None
    assert pins["versions_microk8s_channel"] == f"{minor.group(1)}/stable"


def test_wrapper_modules_pin_the_same_kubernetes_release() -> None:
    k8s = _env_file()["K8S_VERSION"]
    gomod = (REPO_ROOT / "tools" / "k8s-bins" / "k8s" / "go.mod").read_text()
    assert f"k8s.io/kubernetes {k8s}" in gomod
    staging = "v0." + k8s.removeprefix("v1.")
    assert f"k8s.io/client-go => k8s.io/client-go {staging}" in gomod


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="no local copy of the upstream CRDs to compare with")
def test_crd_checksums_match_the_upstream_files() -> None:
    """Each pinned bundle names a folder holding exactly its files, byte for byte."""
    bundles = sources.versions()["versions_crd_bundles"]
    for name, bundle in bundles.items():
        folder = SHARED_CRDS / bundle["dir"]
        pinned = {entry["name"]: entry["sha256"] for entry in bundle["files"]}
        local = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.yaml")}
        assert pinned == local, name


def test_crd_folders_are_named_by_the_pinned_release() -> None:
    pins = sources.versions()
    bundles = pins["versions_crd_bundles"]
    assert bundles["gateway_api"]["dir"] == f"gateway-api-{pins['versions_gateway_api']}"
    gaie = pins["versions_inference_extension"]
    assert bundles["inference_extension"]["dir"] == f"gateway-api-inference-extension-{gaie}"
    assert bundles["envoy_gateway"]["dir"] == f"envoy-gateway-{pins['versions_envoy_gateway']}"
    assert bundles["ai_gateway"]["dir"] == f"ai-gateway-{pins['versions_envoy_ai_gateway']}"


def test_kuadrant_crds_are_left_to_its_chart() -> None:
    assert "kuadrant" not in sources.versions()["versions_crd_bundles"]


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="no local copy of the upstream CRDs to compare with")
def test_lab_crds_are_the_pinned_folders_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sources.ENV_CRDS, raising=False)
    bundles = sources.versions()["versions_crd_bundles"]
    files = sources.crd_manifests()
    assert {p.parent.name for p in files} == {b["dir"] for b in bundles.values()}
    assert len(files) == sum(len(b["files"]) for b in bundles.values())
    assert not any(p.name.startswith("kuadrant.io_") for p in files)


def test_crd_source_dir_is_checked_against_the_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundles = sources.versions()["versions_crd_bundles"]
    for bundle in bundles.values():
        (tmp_path / bundle["dir"]).mkdir()
        for entry in bundle["files"]:
            (tmp_path / bundle["dir"] / entry["name"]).write_text("not the release file\n")
    monkeypatch.setenv(sources.ENV_CRDS, str(tmp_path))
    with pytest.raises(sources.SourceError, match="does not match its pinned sha256"):
        sources.crd_manifests()
    monkeypatch.setenv(sources.ENV_CRDS, str(tmp_path / "absent"))
    with pytest.raises(sources.SourceError, match="is missing"):
        sources.crd_manifests()


def test_crd_urls_point_at_the_pinned_releases() -> None:
    pins = sources.versions()
    bundles = pins["versions_crd_bundles"]
    assert f"/{pins['versions_gateway_api']}/config/crd/standard" in bundles["gateway_api"]["base_url"]
    assert f"/{pins['versions_envoy_gateway']}/" in bundles["envoy_gateway"]["base_url"]
    assert f"/{pins['versions_envoy_ai_gateway']}/" in bundles["ai_gateway"]["base_url"]
    assert f"/{pins['versions_inference_extension']}/" in bundles["inference_extension"]["base_url"]
    assert "{{" not in json.dumps(bundles)


@pytest.mark.skipif(not SHARED_CHARTS.is_dir(), reason="no local copy of the upstream charts")
@pytest.mark.parametrize("chart", sorted(sources.CHART_PINS))
def test_every_pinned_chart_is_in_the_local_copy(chart: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sources.ENV_CHARTS, raising=False)
    meta = yaml.safe_load((sources.chart_path(chart) / "Chart.yaml").read_text())
    assert meta["name"] == chart
    assert meta["version"].removeprefix("v") == sources.versions()[sources.CHART_PINS[chart]].removeprefix("v")


def test_no_chart_is_written_here() -> None:
    """Tests and the lab install the real upstream charts; a chart of the project's own would stand in for one."""
    charts = [
        str(p.relative_to(REPO_ROOT))
        for p in REPO_ROOT.rglob("Chart.yaml")
        if ".venv" not in p.parts and "collections" not in p.parts
    ]
    assert charts == []


def test_collections_match_the_installed_bundle() -> None:
    wanted = yaml.safe_load((REPO_ROOT / "requirements.yml").read_text())["collections"]
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        manifest = resources.files(f"ansible_collections.{namespace}.{name}").joinpath("MANIFEST.json")
        installed = json.loads(manifest.read_text())["collection_info"]["version"]
        assert installed == entry["version"], entry["name"]


def test_python_requirements_are_exact_pins() -> None:
    lines = [
        line for line in (REPO_ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line) for line in lines), lines


def test_galaxy_dependency_admits_the_pinned_kubernetes_core() -> None:
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    collections = yaml.safe_load((REPO_ROOT / "requirements.yml").read_text())["collections"]
    pinned = {c["name"]: c["version"] for c in collections}
    spec = galaxy["dependencies"]["kubernetes.core"]
    major = pinned["kubernetes.core"].split(".")[0]
    assert f">={pinned['kubernetes.core']}" in spec
    assert f"<{int(major) + 1}" in spec


def test_no_binary_or_crd_copies_in_the_repository() -> None:
    crd_kind = re.compile(r"^kind:\s*CustomResourceDefinition", re.M)
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in REPO_ROOT.rglob("*.yaml")
        if ".venv" not in p.parts and "collections" not in p.parts and crd_kind.search(p.read_text(errors="ignore"))
    ]
    assert offenders == []


def test_readme_states_the_cold_and_warm_timings() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "cold" in readme
    assert "warm" in readme
    assert Path(REPO_ROOT / "tools" / "k8s-bins" / "build.sh").exists()

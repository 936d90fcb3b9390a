"""What helm_current calls current: Helm's stored release against the wanted chart and values."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from ansible_collections.tokenlabs.platform.plugins.module_utils import helm_current as h


def secret_of(release: dict[str, Any]) -> dict[str, Any]:
    """A release as Helm's Secret storage driver writes it: gzipped JSON, base64 twice (Helm's and the API's)."""
    helm = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {"data": {"release": base64.b64encode(helm).decode()}}


def deployed(name: str = "gateway-helm", version: str = "v1.8.3", config: Any = None) -> dict[str, Any]:
    return {"chart": {"metadata": {"name": name, "version": version, "appVersion": "v1.8.3"}}, "config": config}


def wanted(**overrides: Any) -> dict[str, Any]:
    base = {"chart_ref": "oci://docker.io/envoyproxy/gateway-helm", "chart_version": "v1.8.3", "values": {}}
    return {**base, **overrides}


def test_a_release_secret_decodes_to_the_release() -> None:
    release = deployed(config={"a": 1})
    assert h.decode_release(secret_of(release)) == release


def test_current_only_for_the_same_chart_and_values() -> None:
    assert h.judge(wanted(), deployed()) is None  # Helm keeps no config at all for a release without values
    assert h.judge(wanted(values={"a": {"b": [1, "x"]}}), deployed(config={"a": {"b": [1, "x"]}})) is None
    assert h.judge(wanted(values={"a": 2}), deployed(config={"a": 1})) == "values differ"
    assert (
        h.judge(wanted(chart_version="v1.8.4"), deployed())
        == "runs chart gateway-helm-v1.8.3, wanted gateway-helm-v1.8.4"
    )
    assert h.judge(wanted(chart_ref="oci://x/other"), deployed()).startswith("runs chart gateway-helm")
    assert h.judge(wanted(), None) == "no deployed revision"
    assert "needs its chart_version" in h.judge(wanted(chart_version=None), deployed())


def test_a_local_chart_is_judged_by_its_chart_yaml(tmp_path: Path) -> None:
    chart = tmp_path / "gateway"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("name: gateway-helm\nversion: v1.8.3\nappVersion: v1.8.3\n")
    assert h.judge(wanted(chart_ref=str(chart), chart_version=None), deployed()) is None
    (chart / "Chart.yaml").write_text("name: gateway-helm\nversion: v1.8.3\nappVersion: v1.9.0\n")
    assert h.judge(wanted(chart_ref=str(chart)), deployed()) == "runs appVersion v1.8.3, the chart has v1.9.0"
    archive = tmp_path / "gateway-helm-v1.8.3.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"name: gateway-helm\nversion: v1.8.3\n"
        info = tarfile.TarInfo("gateway-helm/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert h.judge(wanted(chart_ref=str(archive)), deployed()) is None
    assert h.judge(wanted(chart_ref=str(tmp_path)), deployed()).startswith("chart not readable")

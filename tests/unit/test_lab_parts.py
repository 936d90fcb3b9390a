"""The lab's PKI and node definitions, checked without starting anything."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conftest import REPO_ROOT
from tokenlabs.lab import pki
from tokenlabs.lab.nodes import GPU_RESOURCE, LAB_NODES, ROLE_LABEL, node_manifest


def test_pki_issues_a_serving_cert_and_an_admin_client_cert(tmp_path: Path) -> None:
    files = pki.create(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(files.serving_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(files.admin_cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    for key in (files.ca_key, files.serving_key, files.admin_key, files.sa_private):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_lab_nodes_match_the_lab_inventory() -> None:
    inventory = (Path(__file__).resolve().parents[2] / "inventory" / "lab" / "hosts.yml").read_text()
    for node in LAB_NODES:
        assert f"{node.name}:" in inventory


def test_spark_nodes_carry_one_gb10() -> None:
    sparks = [node_manifest(n) for n in LAB_NODES if n.name.startswith("spark-")]
    assert len(sparks) == 2
    for manifest in sparks:
        assert manifest["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
        assert manifest["metadata"]["labels"]["nvidia.com/gpu.count"] == "1"
        assert manifest["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
        assert manifest["metadata"]["labels"]["tokenlabs.io/accelerator"] == "nvidia-gb10"
        assert manifest["metadata"]["labels"][ROLE_LABEL] == "gpu"


def test_spark_01_shows_its_gpu_as_the_device_plugin_does_under_time_slicing() -> None:
    # Production shares spark-01's GPU with profile shared-2 (two replicas); the device plugin then advertises
    # two nvidia.com/gpu and renames the product. spark-02 is not shared.
    nodes = {n.name: node_manifest(n) for n in LAB_NODES}
    shared, exclusive = nodes["spark-01"], nodes["spark-02"]
    assert shared["status"]["allocatable"][GPU_RESOURCE] == "2"
    assert shared["status"]["capacity"][GPU_RESOURCE] == "2"
    assert shared["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-GB10-SHARED"
    assert shared["metadata"]["labels"]["nvidia.com/gpu.replicas"] == "2"
    assert shared["metadata"]["labels"]["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert exclusive["status"]["allocatable"][GPU_RESOURCE] == "1"
    assert exclusive["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-GB10"
    assert exclusive["metadata"]["labels"]["nvidia.com/gpu.replicas"] == "1"
    assert exclusive["metadata"]["labels"]["nvidia.com/gpu.sharing-strategy"] == "none"
    replicas = yaml.safe_load((REPO_ROOT / "roles/gpu_operator/defaults/main.yml").read_text())[
        "gpu_operator_time_slicing_profiles"
    ]
    profile = yaml.safe_load((REPO_ROOT / "inventory/production/host_vars/spark-01.yml").read_text())[
        "gpu_operator_time_slicing_profile"
    ]
    assert str(replicas[profile]) == shared["metadata"]["labels"]["nvidia.com/gpu.replicas"]


def test_controller_has_no_gpu() -> None:
    controller = node_manifest(next(n for n in LAB_NODES if n.name == "controller"))
    assert GPU_RESOURCE not in controller["status"]["allocatable"]
    assert controller["metadata"]["labels"][ROLE_LABEL] == "controller"

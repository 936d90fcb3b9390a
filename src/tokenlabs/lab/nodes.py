"""The inventory's machines as kwok nodes: what the scheduler sees on the real cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
ROLE_LABEL = "tokenlabs.io/role"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    arch: str
    role: str
    gpus: int = 0
    gpu_product: str = "NVIDIA-GB10"
    cpu: str = "20"
    memory: str = "119Gi"
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        labels = {
            "type": "kwok",
            "kubernetes.io/arch": self.arch,
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": self.name,
            ROLE_LABEL: self.role,
        }
        if self.gpus:
            # Set by the GPU Operator's feature discovery on the real nodes.
            labels |= {GPU_PRODUCT_LABEL: self.gpu_product, "nvidia.com/gpu.present": "true"}
        return labels | self.extra_labels


NVIDIA_RUNTIME_CLASS: dict[str, Any] = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia"},
    "handler": "nvidia",
}

LAB_NODES: tuple[NodeSpec, ...] = (
    NodeSpec(name="controller", arch="amd64", role="controller", cpu="8", memory="31Gi"),
    NodeSpec(name="spark-01", arch="arm64", role="gpu", gpus=1),
    NodeSpec(name="spark-02", arch="arm64", role="gpu", gpus=1),
)


def node_manifest(node: NodeSpec) -> dict[str, Any]:
    resources = {"cpu": node.cpu, "memory": node.memory, "pods": "110"}
    if node.gpus:
        resources[GPU_RESOURCE] = str(node.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": node.labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {"architecture": node.arch, "operatingSystem": "linux"},
        },
    }

"""The inventory's machines as kwok nodes: what the scheduler sees on the real cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_REPLICAS_LABEL = "nvidia.com/gpu.replicas"
GPU_SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
ROLE_LABEL = "tokenlabs.io/role"
# Set from the inventory (microk8s_cluster_node_labels) when a Spark joins; what GPU workloads select on.
ACCELERATOR_LABEL = "tokenlabs.io/accelerator"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    arch: str
    role: str
    gpus: int = 0
    gpu_product: str = "NVIDIA-GB10"
    accelerator: str = "nvidia-gb10"
    # Replicas the node's time-slicing profile (gpu_operator_time_slicing_profiles) gives each GPU; 1: not shared.
    replicas: int = 1
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
            labels[ACCELERATOR_LABEL] = self.accelerator
            labels |= self.gpu_feature_labels
        return labels | self.extra_labels

    @property
    def shared(self) -> bool:
        return self.replicas > 1

    @property
    def advertised_gpus(self) -> int:
        """What the device plugin advertises: every physical GPU times the profile's replicas."""
        return self.gpus * self.replicas

    @property
    def gpu_feature_labels(self) -> dict[str, str]:
        """What GPU feature discovery and the device plugin put on a real node.

        Under time-slicing the device plugin appends -SHARED to the product and reports the replicas
        (k8s-device-plugin README, "Shared Access to GPUs"; the GPU Operator's own time-slicing test expects
        gpu.replicas=10 and Tesla-T4-SHARED); gpu.count and gpu.present stay as they are.
        """
        return {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.count": str(self.gpus),
            GPU_PRODUCT_LABEL: f"{self.gpu_product}-SHARED" if self.shared else self.gpu_product,
            GPU_REPLICAS_LABEL: str(self.replicas),
            GPU_SHARING_LABEL: "time-slicing" if self.shared else "none",
        }


NVIDIA_RUNTIME_CLASS: dict[str, Any] = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia"},
    "handler": "nvidia",
}

# The controller holds every endpoint picker, and the inferencepool chart requests 4 CPUs and 8 GiB for each
# by default: with two models and the gateway stack beside them, 8 cores would leave a picker unscheduled.
LAB_NODES: tuple[NodeSpec, ...] = (
    NodeSpec(name="controller", arch="amd64", role="controller", cpu="16", memory="64Gi"),
    # spark-01 shares its GPU between vLLM and the speech service (profile shared-2, as in production's host_vars).
    NodeSpec(name="spark-01", arch="arm64", role="gpu", gpus=1, replicas=2),
    NodeSpec(name="spark-02", arch="arm64", role="gpu", gpus=1),
)


def node_manifest(node: NodeSpec) -> dict[str, Any]:
    resources = {"cpu": node.cpu, "memory": node.memory, "pods": "110"}
    if node.gpus:
        resources[GPU_RESOURCE] = str(node.advertised_gpus)
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

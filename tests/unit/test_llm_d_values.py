"""The values the llm_d role passes exist in the pinned charts and validate against their schema.

The values are rendered by the role itself (its ``values.yml`` tasks) for the models of both inventories, then
compared key by key with the chart's own ``values.yaml`` and validated against ``values.schema.json`` where the
chart ships one. A key the defaults do not list is accepted only under a map the defaults leave empty, or when
it is listed below with the template that reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tokenlabs.lab.nodes import LAB_NODES

CHART_VALUES = Path(os.environ.get("TOKENLABS_CHART_VALUES_DIR", REPO_ROOT.parent / "shared" / "chart-values"))
VERSIONS = yaml.safe_load((REPO_ROOT / "roles/versions/defaults/main.yml").read_text())
CHARTS = {
    "inferencepool": f"inferencepool-{VERSIONS['versions_inferencepool'].lstrip('v')}",
    "modelservice": f"llm-d-modelservice-{VERSIONS['versions_llm_d_modelservice'].lstrip('v')}",
}

# Keys the defaults do not list but the pinned templates read; their subtrees are passed through as-is.
TEMPLATE_KEYS = {
    "inferencepool": {
        # values.yaml: "# modelServers: # REQUIRED"; templates/inferencepool.yaml renders the pool selector from it.
        "inferencePool.modelServers",
    },
    "modelservice": {
        # values.yaml: pod labels that "should match the labels of any associated InferencePool" (open in the schema).
        "modelArtifacts.labels",
        # decode is open in values.schema.json; templates/decode-deployment.yaml renders .Values.decode.tolerations.
        "decode.tolerations",
        # templates/_helpers.tpl "modelPod" renders .pdSpec.extraConfig into the pod spec (runtimeClassName).
        "decode.extraConfig",
        # templates/_helpers.tpl "container" renders the probes of each container (items are open in the schema).
        "decode.containers[].startupProbe",
        "decode.containers[].readinessProbe",
        "decode.containers[].livenessProbe",
        # decode.volumes items are Kubernetes Volumes (open in the schema), copied verbatim into the pod.
        "decode.volumes[].persistentVolumeClaim",
    },
}
INVENTORIES = ["lab", "production"]


# The default set-up (model cache claims, gated models) and the other one (chart's emptyDir, public models).
VARIANTS = {"default": ("pvc", "hf_unit-test"), "public": ("empty_dir", "")}


@cache
def rendered(inventory: str, variant: str = "default") -> list[dict[str, Any]]:
    """Runs the role's values tasks for the inventory's models and returns its release list."""
    cache_type, hf_token = VARIANTS[variant]
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"llm-d-values-{os.getpid()}-{inventory}-{cache_type}.json"
    playbook = [
        {
            "name": "Render the llm_d chart values",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"ansible.builtin.include_role": {"name": "tokenlabs.platform.versions", "public": True}},
                {
                    "ansible.builtin.include_role": {"name": "tokenlabs.platform.llm_d", "tasks_from": "values.yml"},
                    "vars": {
                        "llm_d_models": "{{ tokenlabs_models }}",
                        "llm_d_model_cache_type": cache_type,
                        "llm_d_hf_token": hf_token,
                        "__llm_d_servicemonitor_crd": True,
                    },
                },
                {
                    "ansible.builtin.copy": {
                        "content": "{{ __llm_d_releases | to_json }}",
                        "dest": str(out),
                        "mode": "0600",
                    }
                },
            ],
        }
    ]
    play_file = out.with_suffix(".yml")
    play_file.write_text(yaml.safe_dump(playbook))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", f"inventory/{inventory}", str(play_file)],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    releases = json.loads(out.read_text())
    out.unlink()
    play_file.unlink()
    return releases


def chart_file(chart: str, name: str) -> Path:
    path = CHART_VALUES / CHARTS[chart] / name
    if not path.exists():
        pytest.skip(f"{path} not found (set TOKENLABS_CHART_VALUES_DIR)")
    return path


def unknown_keys(values: Any, defaults: Any, allowed: set[str], path: str = "") -> list[str]:
    """Key paths of ``values`` that the chart defaults do not have and no template is known to read."""
    problems: list[str] = []
    if isinstance(values, dict):
        if not isinstance(defaults, dict):
            return [f"{path} (a map where the chart has {type(defaults).__name__})"] if defaults is not None else []
        if not defaults:
            return []  # a map the chart leaves empty is free-form
        for key, value in values.items():
            sub = f"{path}.{key}" if path else key
            if sub in allowed:
                continue
            if key not in defaults:
                problems.append(sub)
                continue
            problems += unknown_keys(value, defaults[key], allowed, sub)
    elif isinstance(values, list) and isinstance(defaults, list) and defaults and isinstance(defaults[0], dict):
        for item in values:
            problems += unknown_keys(item, defaults[0], allowed, f"{path}[]")
    return problems


CHART_KEYS = [(chart, inventory) for chart in CHARTS for inventory in INVENTORIES]


@pytest.mark.parametrize(("chart", "inventory"), CHART_KEYS)
def test_every_value_is_a_key_of_the_pinned_chart(chart: str, inventory: str) -> None:
    defaults = yaml.safe_load(chart_file(chart, "values.yaml").read_text())
    for release in rendered(inventory):
        values = release[f"{chart}_values"]
        assert unknown_keys(values, defaults, TEMPLATE_KEYS[chart]) == [], release["pool"]


@pytest.mark.parametrize(("inventory", "variant"), [("lab", "default"), ("production", "default"), ("lab", "public")])
def test_modelservice_values_validate_against_the_chart_schema(inventory: str, variant: str) -> None:
    schema = json.loads(chart_file("modelservice", "values.schema.json").read_text())
    defaults = yaml.safe_load(chart_file("modelservice", "values.yaml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    for release in rendered(inventory, variant):
        # Helm validates the merged values, so the schema sees the defaults underneath ours.
        merged = _merge(defaults, release["modelservice_values"])
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(merged)]
        assert errors == [], release["pool"]
        assert unknown_keys(release["modelservice_values"], defaults, TEMPLATE_KEYS["modelservice"]) == []


def test_the_key_check_catches_the_seed_deployments_invented_keys() -> None:
    defaults = yaml.safe_load(chart_file("modelservice", "values.yaml").read_text())
    seed = {"model": {"name": "x"}, "decode": {"tensor_parallelism": 1, "replicas": 1}, "modelArtifacts": {"name": "x"}}
    assert unknown_keys(seed, defaults, TEMPLATE_KEYS["modelservice"]) == ["model", "decode.tensor_parallelism"]
    pool_defaults = yaml.safe_load(chart_file("inferencepool", "values.yaml").read_text())
    assert unknown_keys({"pool": {"name": "x"}, "scheduling": {}}, pool_defaults, set()) == ["pool", "scheduling"]


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merge(base[k], v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_each_model_is_served_under_its_routed_id_with_usage_on_streams(inventory: str) -> None:
    models = yaml.safe_load((REPO_ROOT / f"inventory/{inventory}/group_vars/all/models.yml").read_text())[
        "tokenlabs_models"
    ]
    releases = {r["pool"]: r for r in rendered(inventory)}
    assert sorted(releases) == sorted(m["pool"] for m in models)
    token_secrets = set()
    for model in models:
        ms = releases[model["pool"]]["modelservice_values"]
        pool = releases[model["pool"]]["inferencepool_values"]
        container = ms["decode"]["containers"][0]
        # The chart passes modelArtifacts.name as --served-model-name: it must be the id clients route by.
        assert ms["modelArtifacts"]["name"] == model["name"]
        assert ms["modelArtifacts"]["uri"] == f"hf://{model['hf_id']}"
        assert ms["modelArtifacts"]["authSecretName"] == "hf-token"
        assert container["modelCommand"] == "vllmServe"
        assert "--enable-force-include-usage" in container["args"]
        assert f"--gpu-memory-utilization={model['gpu_memory_utilization']}" in container["args"]
        assert set(model["vllm_args"]) <= set(container["args"])
        assert ms["decode"]["nodeSelector"]["kubernetes.io/hostname"] == model["node"]
        assert ms["decode"]["extraConfig"] == {"runtimeClassName": "nvidia"}
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert ms["routing"]["proxy"]["enabled"] is False
        assert ms["prefill"]["create"] is False
        # The pool selects exactly this model's pods.
        assert pool["inferencePool"]["modelServers"]["matchLabels"] == ms["modelArtifacts"]["labels"]
        assert pool["inferenceExtension"]["pluginsConfigFile"] == "default-plugins.yaml"
        token_secrets.add(pool["inferenceExtension"]["monitoring"]["prometheus"]["auth"]["secretName"])
    # The chart's default metrics-token Secret name would collide between two releases in one namespace.
    assert len(token_secrets) == len(models)


def test_without_a_token_no_secret_is_referenced() -> None:
    for release in rendered("lab", "public"):
        ms = release["modelservice_values"]
        assert ms["modelArtifacts"]["authSecretName"] == ""
        # The chart's own model volume instead of a claim.
        assert ms["decode"]["containers"][0]["mountModelVolume"] is True
        assert all("persistentVolumeClaim" not in v for v in ms["decode"]["volumes"])


def _time_sliced(labels: dict[str, str], replicas: int) -> dict[str, str]:
    """A GPU node's labels once the device plugin shares its GPU (k8s-device-plugin README, shared access)."""
    return labels | {
        "nvidia.com/gpu.product": labels["nvidia.com/gpu.product"] + "-SHARED",
        "nvidia.com/gpu.replicas": str(replicas),
        "nvidia.com/gpu.sharing-strategy": "time-slicing",
    }


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_decode_pods_select_their_node_whether_its_gpu_is_shared_or_not(inventory: str) -> None:
    # The labels a Spark carries: the inventory's own (set when it joins) and GPU feature discovery's.
    group_vars = yaml.safe_load((REPO_ROOT / "inventory/production/group_vars/spark.yml").read_text())
    discovered = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/gpu.product": "NVIDIA-GB10",
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
    }
    for release in rendered(inventory):
        selector = release["modelservice_values"]["decode"]["nodeSelector"]
        node = release["modelservice_values"]["decode"]["nodeSelector"]["kubernetes.io/hostname"]
        exclusive = {"kubernetes.io/hostname": node} | group_vars["microk8s_cluster_node_labels"] | discovered
        for labels in (exclusive, _time_sliced(exclusive, 2)):
            assert selector.items() <= labels.items(), (release["pool"], selector, labels)


def test_the_lab_nodes_satisfy_every_decode_selector() -> None:
    nodes = {n.name: n.labels for n in LAB_NODES}
    assert nodes["spark-01"]["nvidia.com/gpu.product"] == "NVIDIA-GB10-SHARED"
    for release in rendered("lab"):
        selector = release["modelservice_values"]["decode"]["nodeSelector"]
        assert selector.items() <= nodes[selector["kubernetes.io/hostname"]].items(), release["pool"]

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: helm_current
short_description: Tell which Helm releases already run the wanted chart and values
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Reads the deployed revision of each release from Helm's storage (the release Secrets in its namespace), one
    request per namespace, and tells whether it runs the wanted chart name and version (and, for a chart on this
    machine, its appVersion) with exactly the wanted values.
  - Meant to run before M(kubernetes.core.helm), so that an unchanged release costs no helm command. It makes the
    same comparison M(kubernetes.core.helm) makes without the helm diff plugin, so a release it calls current is
    one M(kubernetes.core.helm) would leave alone.
  - Releases kept in Helm's ConfigMap or SQL storage are never reported current.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode as otherwise.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  releases:
    description: The releases to look at.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Release namespace.
        type: str
        required: true
      chart_ref:
        description:
          - The chart as given to M(kubernetes.core.helm), a directory or archive on this machine (its Chart.yaml is
            read) or a repository or OCI reference (whose last path segment is the chart name).
        type: str
        required: true
      chart_version:
        description: Chart version; required for a repository or OCI reference, ignored for a local chart.
        type: str
      values:
        description: The values given to M(kubernetes.core.helm) (O(kubernetes.core.helm#module:release_values)).
        type: dict
        default: {}
"""

EXAMPLES = r"""
- name: Read which release is current
  tokenlabs.platform.helm_current:
    releases:
      - name: eg
        namespace: envoy-gateway-system
        chart_ref: oci://docker.io/envoyproxy/gateway-helm
        chart_version: v1.8.3
        values: "{{ envoy_gateway_values }}"
  register: current

- name: Install or upgrade the release unless it is current
  kubernetes.core.helm:
    name: eg
    release_namespace: envoy-gateway-system
    chart_ref: oci://docker.io/envoyproxy/gateway-helm
    chart_version: v1.8.3
    release_values: "{{ envoy_gateway_values }}"
  when: "'envoy-gateway-system/eg' not in current.current"
"""

RETURN = r"""
current:
  description: C(namespace/name) of each release that runs the wanted chart and values.
  returned: always
  type: list
  elements: str
releases:
  description: Each release with whether it is current and, if not, why.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Release name.
      type: str
    namespace:
      description: Release namespace.
      type: str
    current:
      description: Whether the deployed revision runs the wanted chart and values.
      type: bool
    reason:
      description: Why it is not current (no deployed revision, another chart, other values); null when current.
      type: str
"""

from ansible_collections.tokenlabs.platform.plugins.module_utils.helm_current import argspec, execute  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import run_module  # noqa: E402


def main() -> None:
    run_module(argspec(), execute)


if __name__ == "__main__":
    main()

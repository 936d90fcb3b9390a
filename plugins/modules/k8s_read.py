#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_read
short_description: Read Kubernetes objects with one request
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Reads one object by name or the objects of a kind (in a namespace, by label selector) with one request, and
    returns them as M(kubernetes.core.k8s_info) does (RV(resources), RV(api_found)).
  - Made for playbooks that read often. Where the connection allows it, it does not load the kubernetes package,
    and O(metadata_only) reads objects without their spec and status (a list of CRDs without their schemas).
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
  kind:
    description: Kind of the objects.
    type: str
    required: true
  api_version:
    description: API version of the kind.
    type: str
    default: v1
  namespace:
    description: Namespace to read in; leave out for cluster-scoped kinds or every namespace.
    type: str
  name:
    description: The one object to read; without it, every object that matches O(label_selectors).
    type: str
  label_selectors:
    description: Selectors every object read must match.
    type: list
    elements: str
    default: []
  metadata_only:
    description: Return only C(apiVersion), C(kind) and C(metadata) of each object.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the names and annotations of every CRD
  tokenlabs.platform.k8s_read:
    api_version: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata_only: true
  register: crds

- name: Read one node
  tokenlabs.platform.k8s_read:
    kind: Node
    name: spark-01
  register: node
"""

RETURN = r"""
resources:
  description: The objects read; empty when the object or its API does not exist.
  returned: always
  type: list
  elements: dict
api_found:
  description: Whether the cluster serves the kind.
  returned: always
  type: bool
"""

from ansible_collections.tokenlabs.platform.plugins.module_utils.k8s_read import argspec, execute  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import run_module  # noqa: E402


def main() -> None:
    run_module(argspec(), execute)


if __name__ == "__main__":
    main()

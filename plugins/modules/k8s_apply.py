#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_apply
short_description: Server-side apply a set of Kubernetes objects in one pass, writing only what differs
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Applies every manifest given (server-side apply, one field manager) or deletes them, in one module run, with one
    client and one discovery for all of them, where a task looping over M(kubernetes.core.k8s) pays for both per
    object.
  - Before anything is written, each object is read and its apply is run as a server-side dry run; an object is
    written only when the dry run differs from what the server holds (leaving out status and the server's own
    bookkeeping), so a run with nothing to change makes no write, and the server's own defaulting, quantity
    normalisation and removal of fields no longer set decide what a change is.
  - Every manifest is validated, and every apply dry-run, before the first write, so a bad manifest or a refused
    object stops the run with nothing written. An object whose namespace this run creates is checked when it is created.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reads and dry runs only; reports what would be created, updated or deleted.
  diff_mode:
    support: full
    description: Before and after of each object that changes; a Secret's values appear only as fingerprints.
options:
  definitions:
    description: The manifests, a list of them, or lists of lists (as C(from_yaml_all) gives).
    type: raw
    required: true
  state:
    description: C(present) applies the objects, C(absent) deletes them (only kind, apiVersion and name are used).
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace for namespaced objects whose manifest has none.
    type: str
  field_manager:
    description:
      - Field manager of the applies. Give each caller its own when several apply the same object (a namespace two
        roles share), because with one manager for both, each apply removes the fields only the other sets.
    type: str
    default: tokenlabs
  force_conflicts:
    description: Take over fields another manager owns (as C(kubectl apply --server-side --force-conflicts)).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Apply the Gateway and its routes
  tokenlabs.platform.k8s_apply:
    definitions: "{{ gateway_manifests }}"

- name: Remove routes that are no longer configured
  tokenlabs.platform.k8s_apply:
    state: absent
    definitions:
      - {apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: old, namespace: tokenlabs}}
"""

RETURN = r"""
objects:
  description: Each object with what happened to it (created, updated, unchanged, deleted, absent).
  returned: always
  type: list
  elements: dict
  sample: [{kind: Gateway, namespace: tokenlabs, name: tokenlabs-gateway, action: unchanged}]
writes:
  description: Writes made (dry runs not counted).
  returned: always
  type: int
"""

from ansible_collections.tokenlabs.platform.plugins.module_utils.k8s_apply import argspec, execute  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import run_module  # noqa: E402


def main() -> None:
    run_module(argspec(), execute)


if __name__ == "__main__":
    main()

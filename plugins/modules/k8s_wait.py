#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_wait
short_description: Wait until Kubernetes objects show the conditions their controllers report when ready
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Polls a set of objects until each one shows its conditions, then returns; fails naming every object that is not
    ready, with the condition, reason and message its controller reported.
  - Each poll reads each kind once per namespace and label selector (one GET when a single object is named), so a
    wait on objects that are already ready costs one request per kind.
  - A condition counts only for the generation it was reported for (its C(observedGeneration), or the status's).
  - Conditions are read from C(status.conditions), or from the C(status.parents) entries of Gateway API routes and
    the C(status.ancestors) entries of Gateway API policies (every entry for one parent written by its controller).
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
  objects:
    description: What to wait for, one selection of one kind per entry.
    type: list
    elements: dict
    required: true
    suboptions:
      kind:
        description: Kind of the objects.
        type: str
        required: true
      api_version:
        description: API version of the kind.
        type: str
        default: v1
      namespace:
        description: Namespace of the objects; leave out for cluster-scoped kinds.
        type: str
      name:
        description: One object that must exist and be ready; added to O(objects[].names).
        type: str
      names:
        description: Objects that must exist and be ready.
        type: list
        elements: str
        default: []
      label_selectors:
        description:
          - Every object matching all of these selectors must be ready, besides O(objects[].names).
          - With neither names nor selectors, every object of the kind in the namespace.
        type: list
        elements: str
        default: []
      conditions:
        description: Conditions each object must show.
        type: list
        elements: dict
        default: []
        suboptions:
          type:
            description: Condition type, for example C(Available), C(Programmed) or C(Enforced).
            type: str
            required: true
          status:
            description: Status the condition must have.
            type: str
            default: "True"
          scope:
            description:
              - C(status) reads C(status.conditions); C(parents) every C(status.parents) entry (routes), C(ancestors)
                every C(status.ancestors) entry (Gateway API policies). At least one entry must exist.
            type: str
            choices: [status, parents, ancestors]
            default: status
          parent:
            description: With C(parents) or C(ancestors), only the entries for the parent of this name.
            type: str
          controller:
            description:
              - With C(parents) or C(ancestors), only the entries this controller writes (C(controllerName)).
              - Without it, the entries that carry the condition at all.
            type: str
          tolerate:
            description:
              - Messages accepted in place of the wanted status; the object is then reported as tolerated.
              - C({kind}), C({namespace}) and C({name}) stand for the object's own.
            type: list
            elements: str
            default: []
          stop_reasons:
            description: Reasons that end the wait at once, ready or not (a state waiting does not change).
            type: list
            elements: str
            default: []
      min_ready_replicas:
        description: For workloads, at least this many ready replicas (C(status.readyReplicas)).
        type: int
      description:
        description: What the objects are, for messages.
        type: str
  timeout:
    description: Seconds to wait; C(0) reads once.
    type: int
    default: 300
  delay:
    description: Seconds between polls.
    type: float
    default: 2
  fail:
    description: Fail when the wait ends with an object not ready; with C(false), report it in RV(ready) instead.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Wait until the Gateway is Programmed
  tokenlabs.platform.k8s_wait:
    objects:
      - api_version: gateway.networking.k8s.io/v1
        kind: Gateway
        namespace: tokenlabs-gateway
        name: tokenlabs
        conditions: [{type: Programmed}]
    timeout: 300

- name: Wait for two Deployments and every route of the Gateway (one read per kind and poll)
  tokenlabs.platform.k8s_wait:
    objects:
      - api_version: apps/v1
        kind: Deployment
        namespace: envoy-gateway-system
        names: [envoy-gateway, redis]
        conditions: [{type: Available}]
      - api_version: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        namespace: tokenlabs-gateway
        label_selectors: [app.kubernetes.io/managed-by=tokenlabs-platform]
        conditions:
          - {type: Accepted, scope: parents, parent: tokenlabs}
          - {type: ResolvedRefs, scope: parents, parent: tokenlabs}

- name: Wait for a Kuadrant policy, accepting one known reason short of Enforced
  tokenlabs.platform.k8s_wait:
    objects:
      - api_version: kuadrant.io/v1
        kind: AuthPolicy
        namespace: tokenlabs-gateway
        name: tokenlabs-auth
        conditions:
          - type: Enforced
            tolerate: ["{kind} waiting for the following components to sync: [EnvoyExtensionPolicy (ns/gw)]"]
"""

RETURN = r"""
ready:
  description: Whether every object was ready (or tolerated) when the wait ended.
  returned: always
  type: bool
stopped:
  description: Whether the wait ended on one of the O(objects[].conditions[].stop_reasons).
  returned: always
  type: bool
elapsed:
  description: Seconds waited.
  returned: always
  type: float
polls:
  description: Polls made.
  returned: always
  type: int
requests:
  description: Requests made to the API server for the objects (discovery, one per API version, not counted).
  returned: always
  type: int
objects:
  description: Each selected object with its state (ready, tolerated, waiting, stopped) and, unless ready, why.
  returned: always
  type: list
  elements: dict
  sample: [{kind: Gateway, namespace: tokenlabs-gateway, name: tokenlabs, state: ready, details: []}]
tolerated:
  description: Objects accepted in a tolerated state, with the condition that was tolerated.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.tokenlabs.platform.plugins.module_utils.k8s_wait import argspec, execute  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import run_module  # noqa: E402


def main() -> None:
    run_module(argspec(), execute)


if __name__ == "__main__":
    main()

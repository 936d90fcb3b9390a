#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tenant_info
short_description: List TokenLabs tenants, or get one, without their keys
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Reads the tenant Secrets managed by M(tokenlabs.platform.tenant) and M(tokenlabs.platform.tenants) (label
    C(app.kubernetes.io/managed-by=tokenlabs)) with one LIST, and returns id, tier, creation time and key fingerprint
    for each. Keys are never returned.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Read-only; behaves the same in check mode.
  diff_mode:
    support: none
    description: Read-only; there is nothing to diff.
options:
  name:
    description: Return only this tenant (an empty list when it does not exist).
    type: str
  tier:
    description: Return only tenants on this tier.
    type: str
  namespace:
    description: Namespace of the tenant Secrets.
    type: str
    default: kuadrant-system
requirements:
  - PyYAML >= 3.11
  - urllib3
  - kubernetes >= 24.2.0, only for connections other than a kubeconfig or host with a client certificate or token
seealso:
  - module: tokenlabs.platform.tenant
  - module: tokenlabs.platform.tenants
"""

EXAMPLES = r"""
- name: Tenants | List every tenant
  tokenlabs.platform.tenant_info:
  register: all_tenants

- name: Tenants | Enterprise tenants only
  tokenlabs.platform.tenant_info:
    tier: enterprise
  register: enterprise_tenants

- name: Tenants | One tenant
  tokenlabs.platform.tenant_info:
    name: acme
  register: acme
"""

RETURN = r"""
tenants:
  description: Tenants sorted by id; never contains a key.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Tenant id (the Authorino user id).
      type: str
      sample: acme
    tier:
      description: Tier (annotation C(kuadrant.io/groups)).
      type: str
      sample: pro
    namespace:
      description: Namespace of the Secret.
      type: str
    secret:
      description: Secret name.
      type: str
      sample: tenant-acme
    created:
      description: Creation time of the Secret (RFC 3339).
      type: str
      sample: "2025-01-01T00:00:00Z"
    fingerprint:
      description: C(sha256:) and the first 16 hex digits of the SHA-256 of the key.
      type: str
      sample: sha256:9f86d081884c7d65
    labels:
      description: Extra labels.
      type: dict
    annotations:
      description: Extra annotations.
      type: dict
    previous_keys:
      description:
        - Previous keys still in their grace period (pending expiries), or expired and about to be removed by their
          expiry Job; Authorino refuses a key from its expiry on.
      type: list
      elements: dict
      contains:
        secret:
          description: Secret holding the previous key.
          type: str
        fingerprint:
          description: Fingerprint of the previous key.
          type: str
        expires_at:
          description: Expiry (RFC 3339); null for a hand-over holder.
          type: str
        removed_by:
          description: The Job whose deadline removes the Secret in the cluster; null for a hand-over holder.
          type: str
        handover:
          description: True for a short-lived holder of the current key left by an interrupted re-tier.
          type: bool
"""

from typing import Any, Dict, List, Optional  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant import (  # noqa: E402
    DEFAULT_NAMESPACE,
    MANAGED_SELECTOR,
    TENANT_LABEL,
    TenantError,
    group_by_tenant,
    tenant_facts,
    validate_tenant_id,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import (  # noqa: E402
    TenantApi,
    auth_argspec,
    connect,
)


def argspec() -> Dict[str, Any]:
    spec = auth_argspec()
    spec.update(
        name=dict(type="str"),
        tier=dict(type="str"),
        namespace=dict(type="str", default=DEFAULT_NAMESPACE),
    )
    return spec


def list_tenants(api: TenantApi, name: Optional[str], tier: Optional[str]) -> List[Dict[str, Any]]:
    selector = MANAGED_SELECTOR if not name else "{0},{1}={2}".format(MANAGED_SELECTOR, TENANT_LABEL, name)
    current, previous, _others = group_by_tenant(api.list(selector))
    tenants = [tenant_facts(t, api.namespace, obj, previous.get(t, [])) for t, obj in sorted(current.items())]
    return [t for t in tenants if t is not None and (tier is None or t["tier"] == tier)]


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    try:
        if module.params["name"] is not None:
            validate_tenant_id(module.params["name"])  # it goes into a label selector
        tenants = list_tenants(connect(module.params), module.params["name"], module.params["tier"])
    except TenantError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, tenants=tenants)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tenants
short_description: Reconcile a whole list of TokenLabs tenants in one pass
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Declarative counterpart of M(tokenlabs.platform.tenant) for hundreds of tenants. Reads the namespace once (one
    metadata-only LIST, so no key is transferred and a foreign Secret with a tenant's name is refused before anything
    is written), computes the differences, and writes only those, several tenants in parallel.
  - Creates missing tenants with generated keys, changes tiers, labels and annotations (annotation and label patches
    only; existing keys are never read or changed), deletes expired previous-key Secrets, gives a previous-key Secret
    without one its expiry Job (see C(previous_key_ttl) of M(tokenlabs.platform.tenant)),
    and with O(exclusive=true) revokes managed tenants that are not in the list, with their expiry Jobs. Secrets
    without C(app.kubernetes.io/managed-by=tokenlabs) are never touched.
  - Keys of tenants created by this run are returned once in RV(api_keys), or merged into O(api_keys_file) before the
    Secrets are created. Key rotation is per tenant, with M(tokenlabs.platform.tenant).
  - A run with nothing to change makes no write at all.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Predicts the result from the one LIST; nothing is written.
  diff_mode:
    support: full
    description: Before and after of each changed tenant; keys appear only as fingerprints.
options:
  tenants:
    description: The tenants that should exist.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Tenant id, a DNS-1123 label.
        type: str
        required: true
      tier:
        description: Tier, one of O(allowed_tiers).
        type: str
        required: true
      labels:
        description: Extra labels for the Secret.
        type: dict
      annotations:
        description: Extra annotations for the Secret.
        type: dict
  exclusive:
    description: Revoke managed tenants that are not in O(tenants).
    type: bool
    default: false
  api_keys_file:
    description:
      - YAML file (a map tenant -> key, mode C(0600)) into which the keys of new tenants are merged; entries already
        in it are kept.
      - Checked before any API call and written before the first Secret is created; when it cannot be written (a
        directory, a read-only or missing directory, an immutable file) nothing is changed on the server. After the
        run it holds exactly the new keys the server stored.
      - With it, RV(api_keys) stays empty, so the task needs no C(no_log). In check mode the file is checked but not
        written.
      - Not called C(key_file), which kubernetes.core's connection options take as an alias of O(client_key).
    type: path
  workers:
    description: How many tenants are written in parallel.
    type: int
    default: 8
  namespace:
    description: Namespace of the tenant Secrets.
    type: str
    default: kuadrant-system
  allowed_tiers:
    description: Tiers a tenant may have; pass the keys of C(tokenlabs_tiers).
    type: list
    elements: str
    default: [free, pro, enterprise]
requirements:
  - PyYAML >= 3.11
  - urllib3
  - kubernetes >= 24.2.0, only for connections other than a kubeconfig or host with a client certificate or token
seealso:
  - module: tokenlabs.platform.tenant
  - module: tokenlabs.platform.tenant_info
notes:
  - Every entry is validated before anything is written; one bad entry fails the task with nothing changed.
"""

EXAMPLES = r"""
- name: Tenants | Reconcile the inventory's tenant list, revoking tenants no longer listed
  tokenlabs.platform.tenants:
    tenants: "{{ tokenlabs_tenants }}"
    allowed_tiers: "{{ tokenlabs_tiers | list }}"
    exclusive: true
  register: reconciled
  no_log: true

- name: Tenants | The same, with the keys of new tenants merged into a file only the operator can read
  tokenlabs.platform.tenants:
    tenants: "{{ tokenlabs_tenants }}"
    allowed_tiers: "{{ tokenlabs_tiers | list }}"
    api_keys_file: /root/new-tenant-keys.yml
"""

RETURN = r"""
created:
  description: Tenants created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [acme]
updated:
  description: Tenants whose tier, labels, annotations or previous keys changed.
  returned: always
  type: list
  elements: str
removed:
  description: Tenants revoked because O(exclusive=true) and they are not listed.
  returned: always
  type: list
  elements: str
unchanged:
  description: Listed tenants that already matched.
  returned: always
  type: list
  elements: str
api_keys:
  description:
    - Tenant id to new key, for tenants created by this run; empty in check mode and with O(api_keys_file). Shown once,
      never again.
    - Secret material; register the result in a task with C(no_log=true).
  returned: always
  type: dict
  sample: {acme: tlabs_sk_0123456789abcdef0123456789abcdef0123456789abcdef}
api_keys_file:
  description: The file that received the new keys.
  returned: when O(api_keys_file) is set and new keys were stored (not in check mode)
  type: str
  sample: /root/new-tenant-keys.yml
writes:
  description: API writes performed (0 when nothing differed and in check mode).
  returned: always
  type: int
  sample: 0
diff:
  description: Before and after of each changed tenant, keyed by Secret name, keys redacted.
  returned: when diff mode is on
  type: dict
"""

from typing import Any, Dict, List  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant import (  # noqa: E402
    BulkPlan,
    TenantError,
    TenantSpec,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import (  # noqa: E402
    DEFAULT_WORKERS,
    common_argspec,
    connect,
    reconcile_tenants,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_keyfile import KeyFile  # noqa: E402


def argspec() -> Dict[str, Any]:
    spec = common_argspec()
    spec.update(
        tenants=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                tier=dict(type="str", required=True),
                labels=dict(type="dict"),
                annotations=dict(type="dict"),
            ),
        ),
        exclusive=dict(type="bool", default=False),
        workers=dict(type="int", default=DEFAULT_WORKERS),
        api_keys_file=dict(type="path", no_log=False),
    )
    return spec


def specs_of(params: Dict[str, Any]) -> List[TenantSpec]:
    specs = []
    for index, entry in enumerate(params["tenants"]):
        try:
            specs.append(
                TenantSpec(
                    entry["name"],
                    tier=entry["tier"],
                    allowed_tiers=params["allowed_tiers"],
                    labels=entry.get("labels"),
                    annotations=entry.get("annotations"),
                )
            )
        except TenantError as exc:
            raise TenantError("tenants[{0}]: {1}".format(index, exc)) from exc
    return specs


def result_of(bulk: BulkPlan, params: Dict[str, Any], check_mode: bool, diff: bool, writes: int) -> Dict[str, Any]:
    keys = {} if check_mode else {p.tenant: p.new_key for p in bulk.plans if p.new_key}
    result: Dict[str, Any] = {
        "changed": bool(bulk.writes),
        "created": bulk.created,
        "updated": bulk.updated,
        "removed": bulk.removed,
        "unchanged": bulk.unchanged,
        "api_keys": {} if params["api_keys_file"] else keys,
        "writes": writes,
    }
    if keys and params["api_keys_file"]:
        result["api_keys_file"] = params["api_keys_file"]
    if diff:
        changed = [p for p in bulk.plans if p.changed]
        result["diff"] = {
            "before": {k: v for p in changed for k, v in p.before.items()},
            "after": {k: v for p in changed for k, v in p.after.items()},
        }
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    params = module.params
    try:
        specs = specs_of(params)
        key_file = KeyFile(params["api_keys_file"], as_map=True) if params["api_keys_file"] else None
        if key_file is not None:
            key_file.check()
        api = connect(params)
        bulk, errors = reconcile_tenants(
            api, specs, params["exclusive"], module.check_mode, workers=params["workers"], key_file=key_file
        )
    except TenantError as exc:
        module.fail_json(msg=str(exc))
    result = result_of(bulk, params, module.check_mode, module._diff, api.writes)
    if errors:
        message = "{0} tenant(s) could not be reconciled: {1}".format(len(errors), "; ".join(errors))
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

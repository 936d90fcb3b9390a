#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tenant
short_description: Manage one TokenLabs tenant (its API-key Secret for Authorino)
version_added: 0.1.0
author:
  - TokenLabs platform team (@tokenlabs)
description:
  - Creates, re-tiers, rotates the key of, or revokes one tenant. A tenant is the Secret C(tenant-<name>) in
    O(namespace) with the labels C(authorino.kuadrant.io/managed-by=authorino) and C(app=token-labs), the
    annotations C(kuadrant.io/groups=<tier>) and C(secret.kuadrant.io/user-id=<name>), and the key in C(data.api_key).
  - The module also sets C(app.kubernetes.io/managed-by=tokenlabs). A Secret of the same name without that label is
    foreign and is never modified or deleted; the module fails instead.
  - A new key comes from the operating system's CSPRNG (C(tlabs_sk_) followed by 48 hex characters). An existing key
    is never changed unless O(rotate_key=true) or a different O(api_key) is given. Changing O(tier) patches only the
    annotation.
  - The key is returned once, when it was created or rotated (show-once); every other result carries only its
    SHA-256 fingerprint. Run the task with C(no_log=true) and hand the key on from the registered result, or give
    O(api_key_file) and the key is written there instead, before the server stores it, and is returned nowhere.
  - Idempotence is computed against what the server stores (base64 C(data)), so a Secret written with C(stringData)
    by another tool compares equal.
  - Writes carry the object's C(resourceVersion); on a 409 conflict the module reads again and re-plans.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Predicts C(changed) and the diff from a read of the server; nothing is written.
  diff_mode:
    support: full
    description: Shows labels and annotations; keys appear only as C(<redacted sha256:...>) fingerprints.
options:
  name:
    description:
      - Tenant id; also the Authorino user id.
      - A DNS-1123 label (lower-case letters, digits, C(-), at most 63 characters).
    type: str
    required: true
  tier:
    description:
      - Tier, one of O(allowed_tiers). Required to create a tenant; when omitted on an existing tenant its tier is kept.
    type: str
  api_key:
    description:
      - The tenant's key, when it is not to be generated. Must match C(tlabs_sk_[0-9a-f]{48}).
      - Giving a key different from the stored one replaces the stored key (a rotation).
      - In this module C(api_key) is the tenant key, not a token for the Kubernetes API; authenticate to the API with
        O(kubeconfig) or the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  rotate_key:
    description:
      - Replace the key with a new one (O(api_key) if given, else generated). Not idempotent by design.
    type: bool
    default: false
  previous_key_ttl:
    description:
      - Grace period for the key being replaced, as seconds or C(<n>s|m|h|d|w) (for example C(24h)).
      - The old key is kept in a second Secret C(tenant-<name>-prev-<hash>) with the same user id, tier and labels (so
        Authorino keeps accepting it) and the annotation C(tokenlabs.io/expires-at) (RFC 3339, whole seconds).
      - Expiry needs no later run. The AuthPolicy of the C(tokenlabs.platform.policies) role refuses the key from that
        second on. The Secret is owned by a Job C(key-expiry-<hash>-<unix time>) in the same namespace that runs no
        pod (C(parallelism=0)) and whose C(activeDeadlineSeconds) ends at the expiry. Kubernetes' job controller fails
        it then, the TTL-after-finished controller deletes it, and the garbage collector deletes the Secret with it.
        The identity running the module therefore needs to create and delete Jobs in O(namespace).
      - A previous-key Secret without its Job (written before there were any) gets one on the next run; any run
        deletes previous keys already expired.
      - Without it, the old key stops working as soon as the Secret is updated.
    type: str
  must_exist:
    description:
      - Fail instead of creating the tenant when it does not exist (for a re-tier or a rotation).
    type: bool
    default: false
  api_key_file:
    description:
      - File that receives a new key (created or rotated), mode C(0600), replacing what the file held.
      - Checked before any API call, and written before the server is asked to store the key; when the file cannot
        be written (a directory, a read-only or missing directory, an immutable file) nothing is changed on the
        server. When the server refuses the write, the file gets its earlier content back.
      - With it, RV(api_key) is not returned, so the task needs no C(no_log).
      - Not called C(key_file), which kubernetes.core's connection options take as an alias of O(client_key).
      - Ignored with O(state=absent). In check mode the file is checked but not written.
    type: path
  state:
    description:
      - V(present) creates or updates the tenant.
      - V(absent) revokes it (deletes its Secret, any previous-key Secrets and their expiry Jobs).
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description: Namespace of the tenant Secrets (where Authorino looks for API keys).
    type: str
    default: kuadrant-system
  allowed_tiers:
    description: Tiers a tenant may have; pass the keys of C(tokenlabs_tiers) from the inventory.
    type: list
    elements: str
    default: [free, pro, enterprise]
  labels:
    description: Extra labels for the Secret. The labels the module manages cannot be overridden.
    type: dict
  annotations:
    description: Extra annotations for the Secret. The annotations the module manages cannot be overridden.
    type: dict
requirements:
  - PyYAML >= 3.11
  - urllib3
  - kubernetes >= 24.2.0, only for connections other than a kubeconfig or host with a client certificate or token
seealso:
  - module: tokenlabs.platform.tenants
  - module: tokenlabs.platform.tenant_info
notes:
  - Mark the task C(no_log=true) whenever a key may be created, rotated or passed in, unless O(api_key_file)
    receives it.
"""

EXAMPLES = r"""
- name: Tenants | Add acme on the pro tier (the key is generated)
  tokenlabs.platform.tenant:
    name: acme
    tier: pro
  register: acme
  no_log: true

- name: Tenants | Hand the new key to the operator, once, in a file only they can read
  ansible.builtin.copy:
    content: "{{ acme.api_key }}\n"
    dest: /root/acme.key
    mode: "0600"
  when: acme.api_key is defined
  no_log: true

- name: Tenants | Add beta; its key goes to a file before the Secret exists, and nowhere else
  tokenlabs.platform.tenant:
    name: beta
    tier: free
    api_key_file: /root/beta.key

- name: Tenants | Move acme to enterprise (the key is unchanged; fails if acme does not exist)
  tokenlabs.platform.tenant:
    name: acme
    tier: enterprise
    must_exist: true

- name: Tenants | Rotate acme's key; the old one keeps working for a day
  tokenlabs.platform.tenant:
    name: acme
    rotate_key: true
    previous_key_ttl: 24h
  register: acme_rotated
  no_log: true

- name: Tenants | Revoke acme
  tokenlabs.platform.tenant:
    name: acme
    state: absent
"""

RETURN = r"""
changed:
  description: Whether anything was (or, in check mode, would be) written.
  returned: always
  type: bool
name:
  description: The tenant id.
  returned: always
  type: str
  sample: acme
secret:
  description: Name of the tenant's Secret.
  returned: always
  type: str
  sample: tenant-acme
namespace:
  description: Namespace of the Secret.
  returned: always
  type: str
  sample: kuadrant-system
key_action:
  description: V(created) or V(rotated) when the key changed (or would change, in check mode), else null.
  returned: always
  type: str
  sample: created
api_key:
  description:
    - The new key, returned once when it was created or rotated, never in check mode, never with O(api_key_file) and
      never otherwise.
    - Secret material; register the result in a task with C(no_log=true).
  returned: when a key was created or rotated and O(api_key_file) is not set
  type: str
  sample: tlabs_sk_0123456789abcdef0123456789abcdef0123456789abcdef
api_key_file:
  description: The file that received the new key.
  returned: when a key was created or rotated into O(api_key_file) (not in check mode)
  type: str
  sample: /root/acme.key
existed:
  description: Whether the tenant existed before the run (false for a revocation of an unknown tenant).
  returned: always
  type: bool
  sample: true
fingerprint:
  description: C(sha256:) and the first 16 hex digits of the SHA-256 of the current key.
  returned: when the tenant exists after the run (and not in check mode for a changed tenant)
  type: str
  sample: sha256:9f86d081884c7d65
tenant:
  description: The tenant as stored after the run; never contains the key.
  returned: when the tenant exists after the run (and not in check mode for a changed tenant)
  type: dict
  contains:
    name:
      description: Tenant id.
      type: str
    tier:
      description: Tier annotation.
      type: str
    namespace:
      description: Namespace.
      type: str
    secret:
      description: Secret name.
      type: str
    created:
      description: Creation time of the Secret (RFC 3339).
      type: str
    fingerprint:
      description: Fingerprint of the key.
      type: str
    labels:
      description: Extra labels (those the module manages are left out).
      type: dict
    annotations:
      description: Extra annotations (those the module manages are left out).
      type: dict
    previous_keys:
      description: Keys in their grace period.
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
          description: When the previous key stops being accepted (RFC 3339); null for a hand-over holder.
          type: str
        removed_by:
          description: The Job whose deadline removes the Secret in the cluster; null for a hand-over holder.
          type: str
        handover:
          description: True for a short-lived holder of the current key left by an interrupted re-tier.
          type: bool
writes:
  description: Number of API writes performed (0 in check mode).
  returned: always
  type: int
  sample: 1
diff:
  description:
    - Before and after, keyed by Secret name, with keys redacted to fingerprints; C(removed_by) names a previous
      key's expiry Job.
  returned: when diff mode is on
  type: dict
"""

from typing import Any, Dict  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant import (  # noqa: E402
    TenantError,
    TenantPlan,
    TenantSpec,
    secret_name,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_k8s import (  # noqa: E402
    common_argspec,
    connect,
    reconcile_tenant,
)
from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant_keyfile import KeyFile  # noqa: E402

SPEC_PARAMS = (
    "tier",
    "allowed_tiers",
    "api_key",
    "rotate_key",
    "previous_key_ttl",
    "labels",
    "annotations",
    "state",
    "must_exist",
)


def argspec() -> Dict[str, Any]:
    spec = common_argspec(token=False)
    spec.update(
        name=dict(type="str", required=True),
        tier=dict(type="str"),
        api_key=dict(type="str", no_log=True),
        rotate_key=dict(type="bool", default=False, no_log=False),
        previous_key_ttl=dict(type="str", no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        must_exist=dict(type="bool", default=False),
        api_key_file=dict(type="path", no_log=False),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
    )
    return spec


def result_of(plan: TenantPlan, params: Dict[str, Any], check_mode: bool, diff: bool, writes: int) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "changed": plan.changed,
        "name": plan.tenant,
        "secret": secret_name(plan.tenant),
        "namespace": params["namespace"],
        "key_action": plan.key_action,
        "existed": bool(plan.before),
        "writes": writes,
    }
    if plan.new_key and not check_mode:
        if params["api_key_file"]:
            result["api_key_file"] = params["api_key_file"]
        else:
            result["api_key"] = plan.new_key
    if plan.facts:
        result["tenant"] = plan.facts
        result["fingerprint"] = plan.facts["fingerprint"]
    if diff:
        result["diff"] = {"before": plan.before, "after": plan.after}
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    params = module.params
    try:
        spec = TenantSpec(params["name"], **{k: params[k] for k in SPEC_PARAMS})
        key_file = KeyFile(params["api_key_file"]) if params["api_key_file"] and spec.state == "present" else None
        if key_file is not None:
            key_file.check()
        api = connect(params, token=False)
        plan = reconcile_tenant(api, spec, module.check_mode, key_file=key_file)
    except TenantError as exc:
        module.fail_json(msg=str(exc), name=params["name"])
    module.exit_json(**result_of(plan, params, module.check_mode, module._diff, api.writes))


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: (c) 2026, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gateway_smoke
short_description: Check the public gateway end to end with test tenant keys
version_added: 0.1.0
description:
  - Sends the requests a tenant would send through the gateway and judges each answer
    (authentication, model listing, chat completions with usage, speech, request rate limit, token quota).
  - Returns one report with C(ok), C(failures) and C(checks); the module itself only fails when it is
    misconfigured, so the calling play decides what a failed check means.
  - The limit checks use up their tenant's quota for the current minute; use throwaway test tenants.
options:
  base_url:
    description: Gateway URL, for example C(http://192.0.2.10).
    type: str
    required: true
  tier_keys:
    description: One API key per tier (tier name to key); each must be accepted.
    type: dict
    required: true
  chat_key:
    description: Key used for the model listing, the chat completions and the speech request.
    type: str
    required: true
  models:
    description: Model ids that C(/v1/models) must list and that each must answer a chat completion.
    type: list
    elements: str
    required: true
  rate_limit_key:
    description: Key of a tenant whose tier allows O(rate_limit_per_minute) requests per minute.
    type: str
  rate_limit_per_minute:
    description: Requests per minute of that tenant's tier; request number limit+1 must be refused with 429.
    type: int
    default: 0
  quota_key:
    description: Key of a fresh tenant whose tier allows O(quota_tokens_per_minute) tokens per minute.
    type: str
  quota_tokens_per_minute:
    description: Tokens per minute of that tenant's tier; the first request after they are used must get 429.
    type: int
    default: 0
  quota_max_tokens:
    description: C(max_tokens) of each quota request (vLLM's C(ignore_eos) makes it generate all of them).
    type: int
    default: 1200
  quota_max_requests:
    description: Give up on the quota check after this many requests.
    type: int
    default: 20
  tts_model:
    description: Model of the speech request.
    type: str
    default: tts-1
  tts_voice:
    description: Voice of the speech request.
    type: str
    default: alloy
  checks:
    description: Checks to run (all by default).
    type: list
    elements: str
    choices:
      - auth_missing_key
      - auth_bad_key
      - tier_keys
      - models_listed
      - chat_completions
      - speech
      - rate_limit
      - token_quota
  timeout:
    description: Seconds to wait for each response.
    type: float
    default: 60
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: none
    details: The checks send real requests and spend the test tenants' quota.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
author:
  - TokenLabs platform team (@tokenlabs)
"""

EXAMPLES = r"""
- name: Verify | Check the gateway
  tokenlabs.platform.gateway_smoke:
    base_url: http://192.0.2.10
    tier_keys: "{{ __verify_tier_keys }}"
    chat_key: "{{ __verify_tier_keys.enterprise }}"
    models: [meta-llama/Llama-3.1-8B-Instruct, nvidia/NVIDIA-Nemotron-Nano-12B-v2-VL-FP8]
    rate_limit_key: "{{ __verify_tier_keys.free }}"
    rate_limit_per_minute: 10
    quota_key: "{{ __verify_quota_key }}"
    quota_tokens_per_minute: 5000
  register: __verify_smoke
  no_log: true
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
report:
  description: The whole report.
  returned: always
  type: dict
  contains:
    ok:
      description: Whether every check passed.
      type: bool
    failures:
      description: One entry per failed check.
      type: list
      elements: dict
      sample: [{check: rate_limit, message: "request 11 within a minute got HTTP 200, expected 429"}]
    checks:
      description: Every check run, with C(name), C(ok), C(message) and C(details).
      type: list
      elements: dict
"""

from typing import Any, Dict  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.tokenlabs.platform.plugins.module_utils.gateway_smoke import (  # noqa: E402
    ALL_CHECKS,
    SmokeConfig,
    run_checks,
)


def argspec() -> Dict[str, Any]:
    return {
        "base_url": {"type": "str", "required": True},
        "tier_keys": {"type": "dict", "required": True, "no_log": True},
        "chat_key": {"type": "str", "required": True, "no_log": True},
        "models": {"type": "list", "elements": "str", "required": True},
        "rate_limit_key": {"type": "str", "no_log": True},
        "rate_limit_per_minute": {"type": "int", "default": 0},
        "quota_key": {"type": "str", "no_log": True},
        "quota_tokens_per_minute": {"type": "int", "no_log": False, "default": 0},
        "quota_max_tokens": {"type": "int", "no_log": False, "default": 1200},
        "quota_max_requests": {"type": "int", "default": 20},
        "tts_model": {"type": "str", "default": "tts-1"},
        "tts_voice": {"type": "str", "default": "alloy"},
        "checks": {"type": "list", "elements": "str", "choices": list(ALL_CHECKS)},
        "timeout": {"type": "float", "default": 60},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=False)
    params = {k: v for k, v in module.params.items() if v is not None}
    try:
        result = run_checks(SmokeConfig(**params))
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ok=result["ok"], report=result)


if __name__ == "__main__":
    main()

"""Makes ``ansible_collections.tokenlabs.platform`` importable the way Ansible resolves it (./collections)."""

from __future__ import annotations

import sys
from pathlib import Path

import ansible_collections

COLLECTIONS = Path(__file__).resolve().parents[3] / "collections"
_PACKAGE = COLLECTIONS / "ansible_collections"
if str(_PACKAGE) not in ansible_collections.__path__:
    # ansible_collections is a namespace package: adding our tree keeps kubernetes.core resolvable too.
    ansible_collections.__path__.append(str(_PACKAGE))
if str(COLLECTIONS) not in sys.path:
    sys.path.append(str(COLLECTIONS))

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)
"""Hands new keys over through a file before the server holds them.

A key the server accepts but nobody received is a lost key (and, for a rotation without a grace period, a
tenant locked out). So the file is proven writable before the first API call, holds the new key before the
first write, and gets its earlier content back when the server refuses the write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile
from typing import Dict, Optional

from ansible_collections.tokenlabs.platform.plugins.module_utils.tenant import TenantError

try:
    import yaml
except ImportError:  # only the tenants module's key map needs it; the tenant module writes a bare key
    yaml = None


class KeyFile:
    """One file (mode 0600) that receives a bare key, or with ``as_map`` a YAML map tenant -> key merged into it."""

    def __init__(self, path: str, as_map: bool = False) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.as_map = as_map
        self._original: Optional[bytes] = None
        self._delivered = False

    def check(self) -> None:
        """Fail unless the file can be replaced: a directory, a missing or read-only directory, an immutable file."""
        if os.path.isdir(self.path):
            raise TenantError("key file {0} is a directory; name a file in it".format(self.path))
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise TenantError("key file {0}: directory {1} does not exist".format(self.path, parent))
        if self.as_map and yaml is None:
            raise TenantError("a key file needs PyYAML to merge keys into {0}".format(self.path))
        try:
            if os.path.lexists(self.path):
                os.close(os.open(self.path, os.O_WRONLY))  # no O_TRUNC: this only proves the file may be written
            fd, probe = tempfile.mkstemp(dir=parent, prefix=".tokenlabs-key-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise TenantError(
                "key file {0} cannot be written ({1}); nothing was changed, so no key is lost".format(
                    self.path, exc.strerror or exc
                )
            ) from exc
        self._existing()

    def _existing(self) -> Dict[str, str]:
        if not os.path.lexists(self.path):
            return {}
        try:
            with open(self.path, "rb") as handle:
                self._original = handle.read()
        except OSError as exc:
            raise TenantError("key file {0} cannot be read ({1})".format(self.path, exc.strerror or exc)) from exc
        if not self.as_map:
            return {}
        try:
            loaded = yaml.safe_load(self._original) or {}
        except yaml.YAMLError as exc:
            raise TenantError("key file {0} is not a YAML map of tenant to key".format(self.path)) from exc
        if not isinstance(loaded, dict):
            raise TenantError("key file {0} is not a YAML map of tenant to key".format(self.path))
        return {str(k): str(v) for k, v in loaded.items()}

    def deliver(self, keys: Dict[str, str]) -> None:
        """Put ``keys`` (tenant -> key; a bare key file takes exactly one) in the file, atomically."""
        if self.as_map:
            merged = self._existing()
            merged.update(keys)
            content = yaml.safe_dump(merged, default_flow_style=False, sort_keys=True).encode("utf-8")
        else:
            (key,) = keys.values()
            content = (key + "\n").encode("utf-8")
        self._replace(content)
        self._delivered = True

    def undo(self) -> None:
        """Give the file back its content from before ``deliver`` (or remove it): the server never took the key."""
        if not self._delivered:
            return
        try:
            if self._original is None:
                os.unlink(self.path)
            else:
                self._replace(self._original)
        except OSError:
            pass  # a key that never became valid does no harm where it is
        self._delivered = False

    def _replace(self, content: bytes) -> None:
        parent = os.path.dirname(self.path)
        try:
            fd, temp = tempfile.mkstemp(dir=parent, prefix=".tokenlabs-key-")  # created 0600
        except OSError as exc:
            raise TenantError("key file {0} cannot be written ({1})".format(self.path, exc.strerror or exc)) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            if os.path.lexists(temp):
                os.unlink(temp)
            raise TenantError("key file {0} cannot be written ({1})".format(self.path, exc.strerror or exc)) from exc
        try:
            dir_fd = os.open(parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash before the server write
        except OSError:
            pass
        finally:
            os.close(dir_fd)

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a Kubernetes API module's work inside the task's worker process.

A module costs a fresh Python interpreter per task (about 0.4 s here before it makes its first request), and a
converge runs dozens of reads, waits and applies whose work is a few HTTP requests. Where the task runs on the
controller itself (connection ``local``), the action plugin validates the arguments against the module's own
argument spec and runs the same code the module runs, in the process Ansible has already forked for the task.
Anywhere else (another connection, or ``async``), the module runs as usual.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, Optional

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase


class InProcessAction(ActionBase):
    """Subclasses name the module's argument spec and its ``execute(params, check_mode, diff)``."""

    _supports_check_mode = True
    _supports_async = True
    TRANSFERS_FILES = False

    argspec: Callable[[], Dict[str, Any]]
    execute: Callable[[Mapping[str, Any], bool, bool], Dict[str, Any]]

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        if self._task.async_val or self._connection.transport != "local":
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        # The task's environment is what the module would have seen (K8S_AUTH_* fallbacks included); the worker
        # process ends with the task, so setting it here reaches no other task.
        environment: Dict[str, Any] = {}
        self._compute_environment_string(environment)
        os.environ.update({key: str(value) for key, value in environment.items()})
        validation, params = self.validate_argument_spec(argument_spec=self.argspec())
        outcome = self.execute(params, bool(self._task.check_mode), bool(self._task.diff))
        result.update(remove_values(outcome, validation._no_log_values))
        return result

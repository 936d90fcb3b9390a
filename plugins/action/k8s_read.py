# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs tokenlabs.platform.k8s_read in the task's own process on the controller (see plugin_utils.in_process)."""

from __future__ import annotations

from ansible_collections.tokenlabs.platform.plugins.module_utils.k8s_read import argspec, execute
from ansible_collections.tokenlabs.platform.plugins.plugin_utils.in_process import InProcessAction


class ActionModule(InProcessAction):
    argspec = staticmethod(argspec)
    execute = staticmethod(execute)

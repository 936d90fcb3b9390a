"""Fixtures for module tests."""

from __future__ import annotations

from tests.unit.plugins.modules.utils import module_exits

__all__ = ["module_exits"]

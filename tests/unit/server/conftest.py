"""Tests marked ``both_loops`` run on asyncio's own loop and on uvloop, which ``ailb serve`` uses."""

from tests.unit.providers.conftest import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]

"""Shared pytest configuration: make the helper modules in tests/ importable."""

import os
import sys

__all__ = []

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pytest  # noqa: E402

from backends import BACKEND_NAMES, make_backend  # noqa: E402


@pytest.fixture(params=BACKEND_NAMES)
def xp(request):
    """The array backend under test: make(np_array), to_numpy(x), check(...) (see tests/backends.py)."""
    return make_backend(request.param)

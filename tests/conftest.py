"""Shared pytest configuration: make the helper modules in tests/ importable."""

import os
import sys

__all__ = []

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

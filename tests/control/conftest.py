"""Fixtures for tests/control: defined in control_kit.py, which the tests import their helpers from.

A test module that did `from conftest import ...` got whichever conftest.py was imported first
under that name when the whole suite ran; a module name of its own cannot collide.
"""

from control_kit import *  # noqa: F403

"""Fixtures shared by every suite."""

from tests.kubernetes import control_plane

__all__ = ["control_plane"]

"""Fixtures shared by every suite."""

from tests.controlplane_fixture import control_plane

__all__ = ["control_plane"]

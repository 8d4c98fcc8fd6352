"""Geometry: image warps driven by control points."""

from puppetry.geometry.mesh_warp import Box, MeshWarp, signed_areas, triangulate, untangle

__all__ = ["Box", "MeshWarp", "signed_areas", "triangulate", "untangle"]

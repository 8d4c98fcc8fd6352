"""The training-free landmark-warp engine (default)."""

from puppetry.warp.engine import WarpConfig, WarpEngine

__all__ = ["WarpConfig", "WarpEngine"]

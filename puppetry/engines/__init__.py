"""The engine interface: prepare a source once, render per driving frame (engines are built by
:func:`puppetry.methods.registry.create_engine`)."""

from puppetry.engines.base import DrivingFrame, Engine, EngineNeeds, SourceFaces

__all__ = ["DrivingFrame", "Engine", "EngineNeeds", "SourceFaces"]

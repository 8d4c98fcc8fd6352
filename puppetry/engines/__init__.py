"""Engine interface and registry."""

from puppetry.engines.base import DrivingFrame, Engine, EngineNeeds, SourceFaces
from puppetry.engines.registry import available_engines, create_engine

__all__ = ["DrivingFrame", "Engine", "EngineNeeds", "SourceFaces", "available_engines", "create_engine"]

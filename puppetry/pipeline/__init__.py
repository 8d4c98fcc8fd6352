"""The shared pipeline: load the source, stream the driving signal, run an engine, write the result."""

from puppetry.pipeline.animate import AnimateOptions, Animator, animate
from puppetry.pipeline.frame_sink import AnimationResult, FrameSink, side_by_side
from puppetry.pipeline.driving import DrivingStream, extract_motion, open_driving
from puppetry.pipeline.source import find_source_faces, load_source_image

__all__ = ["AnimateOptions", "AnimationResult", "Animator", "DrivingStream", "FrameSink", "animate", "extract_motion",
           "find_source_faces", "load_source_image", "open_driving", "side_by_side"]

"""Motion: driving signals as landmark motion, its transfer to a source, controls and templates."""

from puppetry.motion.controls import Controls, apply_controls
from puppetry.motion.procedural import MOTIONS, procedural_motion
from puppetry.motion.regions import REGIONS
from puppetry.motion.sequence import MotionSequence
from puppetry.motion.tracker import MotionTracker, TrackedFace
from puppetry.motion.transfer import TransferOptions, transfer_motion

__all__ = ["Controls", "MOTIONS", "MotionSequence", "MotionTracker", "REGIONS", "TrackedFace",
           "TransferOptions", "apply_controls", "procedural_motion", "transfer_motion"]

"""puppetry: bring a single portrait to life.

Quick use::

    import puppetry
    puppetry.animate("portrait.jpg", "driving.mp4", "out.mp4")          # whole video
    animator = puppetry.Animator("portrait.jpg")                          # live, frame by frame
    frame = animator.render(webcam_frame)
"""

from puppetry.errors import MediaError, MotionError, NoFaceError, PuppetryError, WeightsError
from puppetry.motion.controls import Controls
from puppetry.pipeline.animate import AnimateOptions, Animator, animate
from puppetry.pipeline.frame_sink import AnimationResult
from puppetry.pipeline.driving import extract_motion

__version__ = "0.1.0"

__all__ = ["AnimateOptions", "AnimationResult", "Animator", "Controls", "MediaError", "MotionError",
           "NoFaceError", "PuppetryError", "WeightsError", "animate", "extract_motion", "__version__"]

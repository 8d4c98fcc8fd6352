"""The training-free landmark-warp engine (the default): a piecewise-affine warp of the portrait that
follows the driving face's landmarks, with the inner mouth painted when it opens.

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method
from puppetry.methods.ldnet import RETARGET_OPTIONS

METHOD = Method(
    name="warp",
    summary="training-free landmark warp (default; no weights)",
    engine="puppetry.methods.warp.engine:WarpEngine",
    config="puppetry.methods.warp.engine:WarpConfig",
    not_trainable="the warp engine is training-free; it has no weights to train",
    needs=EngineNeeds(source_landmarks=True, driving_pixels=False),
    options=RETARGET_OPTIONS,
    # LD-Net identity retargeting (paper 002, Sec. 3.1) compared with the plain warp by puppetry evaluate.
    variants={"warp+ldnet": {"retarget": "ldnet"}},
)

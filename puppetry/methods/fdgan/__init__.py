"""FD-GAN, the feature-dictionary GAN of paper 002 (Sec. 3.2): landmarks drawn with a source's appearance.

``--engine fdgan`` renders each frame's landmarks (optionally given the source's identity by LD-Net,
``--retarget ldnet``) through the source's feature dictionary; ``puppetry synthesize`` draws a label map
in the style of a portrait (the paper's Fig. 1). See the README section "FD-GAN (paper 002)".

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method, Option
from puppetry.methods.ldnet import RETARGET_OPTIONS
from puppetry.methods.liveportrait import DEVICE_HELP

WEIGHTS_ENV = "PUPPETRY_FDGAN_WEIGHTS"

METHOD = Method(
    name="fdgan",
    summary="draw the landmarks with the source's feature dictionary (needs puppetry train fdgan)",
    paper="002_13a2f79d0393afdd.txt",
    engine="puppetry.methods.fdgan.engine:FDGanEngine",
    config="puppetry.methods.fdgan.engine:FDGanEngineConfig",
    recipes={"fdgan": "puppetry.methods.fdgan.recipe:FDGanRecipe"},
    needs=EngineNeeds(source_landmarks=True, driving_pixels=False, weights=True),
    options=(
        Option("--fdgan-weights", "weights", weights=True, env=WEIGHTS_ENV, commands=("animate", "bench", "evaluate"),
               help=f"FD-GAN weights, RUN/fdgan.pt (default: ${WEIGHTS_ENV})"),
        *RETARGET_OPTIONS,
        Option("--device", "device", commands=("animate", "bench", "evaluate"), help=DEVICE_HELP),
    ),
    variants={"fdgan+ldnet": {"retarget": "ldnet"}},
    app_weights_key="weights_dir",         # a folder holding fdgan.pt
    commands={"synthesize": "puppetry.methods.fdgan.synthesize:add_parser"},
)

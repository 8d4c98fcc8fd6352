"""PuppeteerGAN (paper 000): a sketching network retargets the source's segmentation and landmarks to the
driving pose, a coloring network fills them with the source's appearance. See the README section of the
same name.

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method, Option
from puppetry.methods.liveportrait import DEVICE_HELP

WEIGHTS_ENV = "PUPPETRY_PUPPETEERGAN_WEIGHTS"

METHOD = Method(
    name="puppeteergan",
    summary="sketch the target segmentation, colour it with the source (needs puppetry train puppeteergan)",
    paper="000_f887d4887397296e.txt",
    engine="puppetry.methods.puppeteergan.engine:PuppeteerGanEngine",
    config="puppetry.methods.puppeteergan.engine:PuppeteerGanEngineConfig",
    recipes={"puppeteergan": "puppetry.methods.puppeteergan.recipe:PuppeteerGanRecipe"},
    needs=EngineNeeds(source_landmarks=True, driving_pixels=False, weights=True),
    options=(
        Option("--pg-weights", "weights", weights=True, env=WEIGHTS_ENV, commands=("animate", "bench", "evaluate"),
               help=f"PuppeteerGAN weights, RUN/puppeteergan.pt (default: ${WEIGHTS_ENV})"),
        Option("--pg-size", "size", type=int, choices=(256, 512), commands=("animate", "bench", "evaluate"),
               help="side of the face crop the coloring network draws (default: the side it was trained at)"),
        Option("--device", "device", commands=("animate", "bench", "evaluate"), help=DEVICE_HELP),
    ),
    app_weights_key="weights_dir",         # a folder holding puppeteergan.pt
)

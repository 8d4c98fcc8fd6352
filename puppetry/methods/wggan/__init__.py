"""wg-GAN + hrh-GAN (paper 003): the landmark warp refined by a displacement-conditioned GAN, with the
inner mouth hallucinated by a global-and-local completion GAN. See the README section of the same name.

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method, Option
from puppetry.methods.liveportrait import DEVICE_HELP

WGGAN_ENV = "PUPPETRY_WGGAN_WEIGHTS"
HRHGAN_ENV = "PUPPETRY_HRHGAN_WEIGHTS"

METHOD = Method(
    name="wggan",
    summary="warp refined by wg-GAN, mouth by hrh-GAN (needs puppetry train wggan / hrhgan)",
    paper="003_2add665d033c1594.txt",
    engine="puppetry.methods.wggan.engine:WgGanEngine",
    config="puppetry.methods.wggan.engine:WgGanConfig",
    recipes={"wggan": "puppetry.methods.wggan.refinement_recipe:WgGanRecipe",
             "hrhgan": "puppetry.methods.wggan.completion_recipe:HrhGanRecipe"},
    needs=EngineNeeds(source_landmarks=True, driving_pixels=False, weights=True),
    options=(
        Option("--wggan-weights", "wggan_weights", weights=True, env=WGGAN_ENV, commands=("animate", "bench", "evaluate"),
               help=f"wg-GAN weights, RUN/wggan.pt (default: ${WGGAN_ENV})"),
        Option("--hrhgan-weights", "hrhgan_weights", weights=True, env=HRHGAN_ENV, commands=("animate", "bench", "evaluate"),
               help=f"hrh-GAN weights, RUN/hrhgan.pt (default: ${HRHGAN_ENV})"),
        Option("--no-temporal", "temporal", switch=False,
               help="do not blend each frame's mouth with the previous frame's (Sec. 5.2)"),
        Option("--device", "device", commands=("animate", "bench", "evaluate"), help=DEVICE_HELP),
    ),
    app_weights_key="weights_dir",         # a folder holding wggan.pt and hrhgan.pt
)

"""Image animation with perturbed masks (paper 004): a model-free method that learns a foreground mask
instead of landmarks, so it animates whatever kind of object it was trained on (animals, bodies,
cartoons). See the README section of the same name.

This file is the method's declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.engines.base import EngineNeeds
from puppetry.methods.descriptor import Method, Option
from puppetry.methods.liveportrait import DEVICE_HELP

WEIGHTS_ENV = "PUPPETRY_PERTURBED_MASKS_WEIGHTS"

METHOD = Method(
    name="perturbed_masks",
    summary="any object, no face needed: perturbed masks (needs puppetry train perturbed-masks)",
    paper="004_a7d2bf4ef676f462.txt",
    engine="puppetry.methods.perturbed_masks.engine:PerturbedMasksEngine",
    config="puppetry.methods.perturbed_masks.engine:PerturbedMasksEngineConfig",
    recipes={"perturbed-masks": "puppetry.methods.perturbed_masks.recipe:PerturbedMasksRecipe"},
    needs=EngineNeeds(source_landmarks=False, driving_pixels=True, weights=True),
    options=(
        Option("--pm-weights", "weights", weights=True, env=WEIGHTS_ENV, commands=("animate", "bench", "evaluate"),
               help=f"perturbed-masks weights, RUN/perturbed_masks.pt (default: ${WEIGHTS_ENV})"),
        Option("--pm-square", "square", choices=("pad", "crop"), commands=("animate", "bench", "evaluate"),
               help="make frames square by padding (default, nothing lost) or by cropping the centre"),
        Option("--device", "device", commands=("animate", "bench", "evaluate"), help=DEVICE_HELP),
    ),
    app_weights_key="weights_dir",         # a folder holding perturbed_masks.pt
)

"""LD-Net, the landmark disentanglement network of paper 002 (Sec. 3.1).

Trained with ``puppetry train ldnet``; it has no engine of its own: the warp engine uses it with
``--retarget ldnet`` to give driving landmarks the source's identity. This file is the method's
declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.methods.descriptor import Method, Option

WEIGHTS_ENV = "PUPPETRY_LDNET_WEIGHTS"

RETARGET_OPTIONS = (
    Option("--retarget", "retarget", choices=("ldnet",),
           help="give the driving landmarks the source's identity first (ldnet: a trained LD-Net)"),
    Option("--ldnet-weights", "ldnet_weights", weights=True, env=WEIGHTS_ENV,
           commands=("animate", "evaluate"), requires={"retarget": "ldnet"},
           help=f"LD-Net weights, RUN/ldnet.pt (default: ${WEIGHTS_ENV})"),
)
"""The options of an engine that can retarget driving landmarks with LD-Net (config keys ``retarget`` and
``ldnet_weights``); the engines that read them declare these same objects, so a flag is defined once."""

METHOD = Method(
    name="ldnet",
    summary="LD-Net landmark retargeting (serves --engine warp --retarget ldnet)",
    paper="002_13a2f79d0393afdd.txt",
    recipes={"ldnet": "puppetry.methods.ldnet.recipe:LDNetRecipe"},
)

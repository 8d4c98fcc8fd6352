"""LD-Net, the landmark disentanglement network of paper 002 (Sec. 3.1).

Trained with ``puppetry train ldnet``; it has no engine of its own: the warp engine uses it with
``--retarget ldnet`` to give driving landmarks the source's identity. This file is the method's
declaration (see :mod:`puppetry.methods.descriptor`); it imports nothing heavy.
"""

from puppetry.methods.descriptor import Method

WEIGHTS_ENV = "PUPPETRY_LDNET_WEIGHTS"

METHOD = Method(
    name="ldnet",
    summary="LD-Net landmark retargeting (serves --engine warp --retarget ldnet)",
    paper="002_13a2f79d0393afdd.txt",
    recipes={"ldnet": "puppetry.methods.ldnet.recipe:LDNetRecipe"},
)

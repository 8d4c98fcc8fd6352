"""LD-Net, the landmark disentanglement network of paper 002 (Sec. 3.1).

Trained with ``puppetry train ldnet``; used by the warp engine with ``--retarget ldnet`` to give driving
landmarks the source's identity.
"""

from puppetry.ldnet.config import LDNetConfig
from puppetry.ldnet.inference import LDNet, LandmarkRetargeter

__all__ = ["LDNet", "LDNetConfig", "LandmarkRetargeter"]

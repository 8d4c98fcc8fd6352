"""Hyper-parameters of image animation with perturbed masks (paper 004); defaults are the paper's.

Given by the paper (Sec. 3-4):

- four encoder-decoders: the mask generator ``m`` and the refinement network ``r`` (five encoder blocks
  conv3x3-ReLU-BN-avgpool, five decoder blocks upsample-conv3x3-BN-ReLU, then conv7x7 and a sigmoid), the
  low-resolution generator ``l`` (conv7x7, six residual blocks, two upsampling blocks, conv7x7, sigmoid)
  and the high-resolution generator ``h`` (the same encoder-decoder as ``m`` with U-Net skips); masks at
  64 x 64, frames at 256 x 256, ``D`` and ``U`` bilinear between the two (Eq. 1-4);
- the augmentation ``A``: brightness, contrast and saturation factors in [0.9, 1.1], hue shift in
  [-0.1, 0.1] (of the hue circle);
- ``P_train``: six strips each rescaled by [0.75, 1.25], the whole rescaled by [0.75, 1.25] along the other
  axis, thresholded at ``rho``, Poisson noise with ``lambda = 20``; ``P_test``: threshold at the mask's
  median, then scale down by 25 %;
- the loss ``100 L_mask + 10 L_rec``, ``L_rec`` the VGG-19 perceptual loss (relu layers 1, 3 and 5) on ``c``
  and ``f`` at 256, 128 and 64 px; ``L_mask`` updates ``r`` only, the ``f`` part updates ``h`` only;
- Adam, lr 2e-4, betas (0.5, 0.9), batch 16, 100 epochs with the rate divided at epochs 60 and 90, ``r``
  trained from the second epoch on.

Where the public implementation differs, the paper is followed: the threshold ``rho`` is each mask's own
median in both ``P_test`` and ``P_train`` (the code uses fixed thresholds of 60/255 or 100/255), Adam's
betas are (0.5, 0.9) (the code: 0.999), the perceptual loss has three scales and the layers 1, 3 and 5
(the code: four scales, all five layers).

Chosen here (the paper is silent; values follow the authors' code where it is the only source):

- channel widths: ``m`` 32 and ``r``, ``h`` 64 at the first block, doubling to at most 1024; ``l`` 256;
- the sigmoid temperature of ``m`` and ``r``: 0.1 (logits divided by it, so masks are nearly binary);
- ``m`` runs on ``D(s)``: the mask generator sees the 64 x 64 image;
- the Poisson noise is drawn on the 0-255 scale of the mask and added, then the mask is clipped to [0, 1]
  (``lambda = 20`` on a [0, 1] mask would bury it);
- the rate decay factor 0.1 (FOMM's); an "epoch" is ``steps_per_epoch`` batches (our datasets are far
  smaller than the paper's, so an epoch is a number of steps, not a pass over the data);
- training pairs: two frames of one clip, random horizontal flip, the reconstruction target is the clean
  driving frame ``d`` (``A`` only feeds the mask generator);
- the VGG-19 weights come from ``losses.vgg19_weights``; when it is null (no weights can be fetched on an
  offline machine) the reconstruction loss falls back to an L1 pyramid at the same scales, with a
  warning: a different loss from the paper's, and said so in every log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings

WEIGHTS_FORMAT = "puppetry-perturbed-masks"


@dataclass
class PMModel:
    """Network sizes (see :mod:`puppetry.methods.perturbed_masks.networks`).

    Attributes:
        size: side of the frames ``s``, ``d``, ``c`` and ``f``.
        mask_size: side of the masks (``D`` scales ``size`` to it, ``U`` back).
        blocks: encoder (and decoder) blocks of ``m``, ``r`` and ``h``.
        mask_width: channels of ``m``'s first block (doubling per block up to ``max_width``).
        refine_width: the same for ``r``.
        high_width: the same for ``h``.
        max_width: channel cap of the encoder-decoders.
        low_width: channels of ``l``'s residual blocks.
        low_blocks: residual blocks of ``l``.
        temperature: the sigmoid temperature of the masks.
    """

    size: int = 256
    mask_size: int = 64
    blocks: int = 5
    mask_width: int = 32
    refine_width: int = 64
    high_width: int = 64
    max_width: int = 1024
    low_width: int = 256
    low_blocks: int = 6
    temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.mask_size < 2 ** self.blocks or self.mask_size % 2 ** self.blocks:
            raise ConfigError(f"model.mask_size must be a multiple of {2 ** self.blocks} (2 ** model.blocks), "
                              f"got {self.mask_size}")
        if self.size != 4 * self.mask_size:
            raise ConfigError(f"model.size must be 4 x model.mask_size (l upsamples twice), got {self.size} "
                              f"and {self.mask_size}")
        if min(self.mask_width, self.refine_width, self.high_width, self.low_width, self.max_width) < 1:
            raise ConfigError("model widths must be positive")
        if not self.temperature > 0:
            raise ConfigError(f"model.temperature must be positive, got {self.temperature}")


@dataclass
class PerturbSettings:
    """The augmentation ``A`` and the perturbations ``P_train`` and ``P_test`` (Sec. 3.1)."""

    brightness: tuple[float, float] = (0.9, 1.1)
    contrast: tuple[float, float] = (0.9, 1.1)
    saturation: tuple[float, float] = (0.9, 1.1)
    hue: tuple[float, float] = (-0.1, 0.1)
    strips: int = 6
    strip_scale: tuple[float, float] = (0.75, 1.25)
    global_scale: tuple[float, float] = (0.75, 1.25)
    poisson_lambda: float = 20.0
    test_shrink: float = 0.25

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation", "hue", "strip_scale", "global_scale"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"perturb.{name} must be [low, high], got {[lo, hi]}")
        if self.strips < 1:
            raise ConfigError("perturb.strips must be 1 or more")
        if not 0 <= self.test_shrink < 1:
            raise ConfigError(f"perturb.test_shrink must be in [0, 1), got {self.test_shrink}")


@dataclass
class LossSettings:
    """``lambda_1 L_mask + lambda_2 L_rec`` (Sec. 3.2)."""

    mask_weight: float = 100.0
    reconstruction_weight: float = 10.0
    scales: tuple[float, ...] = (1.0, 0.5, 0.25)
    layer_weights: tuple[float, float, float, float, float] = (1.0, 0.0, 1.0, 0.0, 1.0)
    vgg19_weights: str | None = None


@dataclass
class OptimSettings:
    """Adam and its schedule (Sec. 4)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    epochs: int = 100
    steps_per_epoch: int = 1000
    decay_epochs: tuple[int, ...] = (60, 90)
    decay: float = 0.1
    refine_from_epoch: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise ConfigError("optim.epochs and optim.steps_per_epoch must be 1 or more")


@dataclass
class PMData:
    """Training pairs.

    Attributes:
        holdout: clips kept out of training (their pairs fill the sample strips).
        flip: random horizontal flips of both frames of a pair.
        cache_frames: decoded frames kept in memory (a video-folder dataset decodes each video once).
    """

    holdout: int = 1
    flip: bool = True
    cache_frames: int = 20_000


@dataclass
class PerturbedMasksConfig:
    """The whole recipe (``configs/perturbed_masks.yaml`` spells the defaults out)."""

    train: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=16))
    model: PMModel = field(default_factory=PMModel)
    perturb: PerturbSettings = field(default_factory=PerturbSettings)
    losses: LossSettings = field(default_factory=LossSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    data: PMData = field(default_factory=PMData)

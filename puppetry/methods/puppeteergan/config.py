"""Hyper-parameters of PuppeteerGAN (paper 000): the sketching network (Sec. 3.2) and the coloring network
(Sec. 3.3). ``configs/puppeteergan.yaml`` spells the defaults out and says which are the paper's.

Given by the paper:

- sketching: a landmark encoder ``E_L``, a segmentation encoder ``E_M``, a joint generator ``G_R`` and an
  identity discriminator ``D_I`` on pairs of ``E_L`` features; loss ``L_ld + lambda1 L_seg + lambda2 L_idt``
  (Eq. 2-5) with real pairs ``(E_L(L_i^s), E_L(L_j^s))`` and fake pairs ``(E_L(L_i'^v), E_L(L_j^s))``;
- coloring: a U-Net whose encoder and decoder are residual blocks, SPADE in the decoder conditioned on the
  target segmentation, warp-based semantic-aware skip connections (WASIC, Eq. 6) with a learned ``mu``,
  geometry dropout for still images; loss ``L_rec + gamma1 L_perc + gamma2 L_GAN + gamma3 L_feat`` (Eq. 7)
  with a multi-scale PatchGAN and feature matching on every discriminator;
- 256 px training, 512 px shown for the coloring network trained on high-resolution stills.

Not given by the paper, chosen here and marked "ours" in the YAML: every width and depth, ``lambda1``,
``lambda2``, ``gamma1-3``, the form of each norm (L1 for landmarks, cross-entropy for the segmentation), the
GAN losses (logistic for ``D_I``, least squares for the PatchGAN, as pix2pixHD), the optimiser and its
rates, the parts and their transforms in WASIC, the dropout rates, the sketch's mask side (64).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.face.parsing import MASK_LABELS
from puppetry.training.config import ConfigError, TrainSettings

WEIGHTS_FORMAT = "puppetry-puppeteergan"
NUM_LABELS = len(MASK_LABELS)          # K: our nine semantic labels (puppetry.face.parsing)
NUM_POINTS = 68                        # P: the iBUG-68 view of the 478 Face Mesh points


@dataclass
class SketchModel:
    """The sketching network (:mod:`puppetry.methods.puppeteergan.sketching`).

    Attributes:
        mask_size: side ``S_k`` of the segmentation masks it reads and writes.
        landmark_features: size of ``E_L``'s feature (a vector: pose and expression, identity removed).
        landmark_hidden: hidden width of ``E_L``'s and the landmark head's MLPs.
        landmark_layers: hidden layers of those MLPs.
        seg_width: channels of ``E_M``'s first block (doubling per block up to ``max_width``).
        seg_blocks: stride-2 blocks of ``E_M`` (``mask_size / 2^seg_blocks`` is the bottleneck side).
        max_width: channel cap.
        res_blocks: residual blocks of ``G_R`` at the bottleneck.
        disc_hidden: hidden width of ``D_I``.
    """

    mask_size: int = 64
    landmark_features: int = 256
    landmark_hidden: int = 512
    landmark_layers: int = 3
    seg_width: int = 32
    seg_blocks: int = 4
    max_width: int = 256
    res_blocks: int = 2
    disc_hidden: int = 256

    def __post_init__(self) -> None:
        if self.mask_size % 2 ** self.seg_blocks or self.mask_size < 2 ** self.seg_blocks:
            raise ConfigError(f"sketch_model.mask_size must be a multiple of {2 ** self.seg_blocks} "
                              f"(2 ** sketch_model.seg_blocks), got {self.mask_size}")
        if min(self.landmark_features, self.landmark_hidden, self.seg_width, self.max_width, self.disc_hidden) < 1:
            raise ConfigError("sketch_model widths must be positive")


@dataclass
class ColorModel:
    """The coloring network (:mod:`puppetry.methods.puppeteergan.coloring`).

    Attributes:
        size: side of the source, target and output images.
        width: channels of the first encoder level (doubling per level up to ``max_width``).
        max_width: channel cap.
        levels: stride-2 encoder levels (the decoder mirrors them).
        wasic_levels: how many of the shallowest levels are joined by WASIC (the deeper ones are not joined).
        mu_init: initial value of each level's learned blend weight ``mu`` (Eq. 6).
        disc_width: channels of the PatchGAN's first layer.
        disc_layers: stride-2 layers of each PatchGAN.
        disc_scales: discriminators, each on the image halved once more.
    """

    size: int = 256
    width: int = 32
    max_width: int = 256
    levels: int = 4
    wasic_levels: int = 3
    mu_init: float = 0.5
    disc_width: int = 64
    disc_layers: int = 3
    disc_scales: int = 2

    def __post_init__(self) -> None:
        if self.size % 2 ** self.levels or self.size < 2 ** self.levels:
            raise ConfigError(f"color_model.size must be a multiple of {2 ** self.levels} (2 ** levels), got {self.size}")
        if not 0 <= self.wasic_levels <= self.levels:
            raise ConfigError(f"color_model.wasic_levels must be in [0, levels], got {self.wasic_levels}")
        if not 0 < self.mu_init < 1:
            raise ConfigError(f"color_model.mu_init must be in (0, 1), got {self.mu_init}")
        if min(self.width, self.max_width, self.disc_width, self.disc_layers, self.disc_scales) < 1:
            raise ConfigError("color_model widths and counts must be positive")


@dataclass
class SketchLosses:
    """``L_ld + lambda1 L_seg + lambda2 L_idt`` (Eq. 5)."""

    landmark_weight: float = 1.0
    seg_weight: float = 1.0            # lambda1 (ours)
    identity_weight: float = 0.1       # lambda2 (ours)

    def __post_init__(self) -> None:
        if min(self.landmark_weight, self.seg_weight, self.identity_weight) < 0:
            raise ConfigError("sketch_losses weights must be 0 or more")


@dataclass
class ColorLosses:
    """``L_rec + gamma1 L_perc + gamma2 L_GAN + gamma3 L_feat`` (Eq. 7).

    ``vgg_weights``: torchvision VGG-19 weights for the perceptual term (the paper's is a VGG16 trained on
    VGGFace2, which no package ships); None leaves the term out, with a warning in the log.
    """

    l1_weight: float = 1.0
    perceptual_weight: float = 10.0    # gamma1 (ours, pix2pixHD's)
    gan_weight: float = 1.0            # gamma2 (ours)
    feature_weight: float = 10.0       # gamma3 (ours, pix2pixHD's)
    vgg_weights: str | None = None
    layer_weights: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if min(self.l1_weight, self.perceptual_weight, self.gan_weight, self.feature_weight) < 0:
            raise ConfigError("color_losses weights must be 0 or more")


@dataclass
class Dropout:
    """Geometry dropout (Sec. 3.3): on a still image, zero one or more semantic parts of the source image and
    its mask, then reconstruct the whole image.

    Attributes:
        parts: the labels that may be dropped (by name, from :data:`puppetry.face.parsing.MASK_LABELS`).
        max_parts: at most this many parts dropped per image (at least one).
        grow: the dropped region grown by this share of the image side (no trace of the part left).
    """

    parts: tuple[str, ...] = ("brows", "eyes", "nose", "lips", "inner_mouth", "hair")
    max_parts: int = 2
    grow: float = 0.02

    def __post_init__(self) -> None:
        unknown = [p for p in self.parts if p not in MASK_LABELS]
        if unknown:
            raise ConfigError(f"dropout.parts: unknown labels {unknown}; the labels are {list(MASK_LABELS)}")
        if self.max_parts < 1 or not self.parts:
            raise ConfigError("dropout.parts must name a part and dropout.max_parts be 1 or more")


@dataclass
class Optim:
    """Steps and Adam settings of one stage."""

    steps: int = 100_000
    lr: float = 2e-4
    lr_disc: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError("stage steps must be 0 or more")


@dataclass
class PGData:
    """Training data.

    Attributes:
        holdout: clips kept out of training (their pairs fill the sample strips).
        stills: a folder of still portraits with label maps (our labels or CelebAMask-HQ's layout) for
            geometry dropout; None trains the coloring network on video pairs only.
        still_share: share of each coloring batch drawn from ``stills`` when it is given.
        min_gap: smallest frame distance of a training pair.
        flip: random horizontal flips (of both frames of a pair).
    """

    holdout: int = 1
    stills: str | None = None
    still_share: float = 0.5
    min_gap: int = 1
    flip: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.still_share <= 1:
            raise ConfigError(f"data.still_share must be in [0, 1], got {self.still_share}")


@dataclass
class PuppeteerGanConfig:
    """The whole recipe (``configs/puppeteergan.yaml`` spells the defaults out)."""

    train: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=16))
    sketch_model: SketchModel = field(default_factory=SketchModel)
    color_model: ColorModel = field(default_factory=ColorModel)
    sketch_losses: SketchLosses = field(default_factory=SketchLosses)
    color_losses: ColorLosses = field(default_factory=ColorLosses)
    dropout: Dropout = field(default_factory=Dropout)
    sketch: Optim = field(default_factory=lambda: Optim(steps=100_000))
    color: Optim = field(default_factory=lambda: Optim(steps=200_000))
    data: PGData = field(default_factory=PGData)

"""Hyper-parameters of FD-GAN (paper 002, Sec. 3.2 and supplementary Sec. 6-7). ``configs/fdgan.yaml``
spells the defaults out and says which are the paper's.

Given by the paper: U-Net extractor and translator joined by dictionary writers and readers in their
up-convolution modules; stride-2 4x4 down-convolutions each followed by a flat 3x3 convolution; widths
(32, 64, 128, 256) from the finest level to the coarsest, which are also the dictionary rows' lengths;
(512, 256, 128, 64) rows; tags of length 32; a patch discriminator and a patch identity classifier shaped
like the down-convolution module; losses ``lambda_rec`` 50 (L2), ``lambda_D`` 1, ``lambda_C`` 1 (Eq. 10-12);
RMSprop at 2e-5, batch 4, 256 x 256, pixels in [-1, 1], 10^6 iterations.

Not given by the paper, chosen here and marked "ours" in the YAML: how a landmark image is drawn (one
channel per facial part, see :mod:`puppetry.methods.fdgan.conditions`), the activation (LeakyReLU 0.2, no
normalisation, so nothing rescales the appearance read from the dictionary), U-Net skips by addition,
the output head (3x3 convolution and tanh), the discriminator's and classifier's 1x1 heads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings

WEIGHTS_FORMAT = "puppetry-fdgan"
CONDITIONS = ("landmarks", "labels")


@dataclass
class FDGanModel:
    """The extractor-translator ``T`` (:mod:`puppetry.methods.fdgan.networks`).

    Attributes:
        size: side of the images it reads and draws (the paper: 256).
        condition: what describes a face's layout: ``landmarks`` (landmark images, for reenactment) or
            ``labels`` (our semantic label maps, for semantic synthesis, Fig. 1).
        widths: feature widths per level, finest first; also the dictionaries' row lengths.
        rows: dictionary rows per level, finest first.
        tag_length: length of the write and read tags and keys.
    """

    size: int = 256
    condition: str = "landmarks"
    widths: tuple[int, ...] = (32, 64, 128, 256)
    rows: tuple[int, ...] = (512, 256, 128, 64)
    tag_length: int = 32

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ConfigError(f"model.condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")
        if len(self.widths) != len(self.rows) or not self.widths:
            raise ConfigError(f"model.widths and model.rows need one entry per level, got {len(self.widths)} "
                              f"and {len(self.rows)}")
        if min(*self.widths, *self.rows, self.tag_length) < 1:
            raise ConfigError("model widths, rows and tag_length must be positive")
        step = 2 ** len(self.widths)
        if self.size % step or self.size < step:
            raise ConfigError(f"model.size must be a multiple of {step} (2 ** levels), got {self.size}")

    @property
    def levels(self) -> int:
        return len(self.widths)


@dataclass
class FDGanLosses:
    """``L_T = lambda_rec L2 + lambda_D L_GAN + lambda_C L_class`` (Eq. 12; the paper's weights)."""

    rec_weight: float = 50.0
    gan_weight: float = 1.0
    class_weight: float = 1.0

    def __post_init__(self) -> None:
        if min(self.rec_weight, self.gan_weight, self.class_weight) < 0:
            raise ConfigError("losses weights must be 0 or more")


@dataclass
class FDGanOptim:
    """Steps and RMSprop settings (supplementary Table 5: RMSprop, 2e-5, 10^6 iterations)."""

    steps: int = 1_000_000
    lr: float = 2e-5
    lr_disc: float = 2e-5
    lr_class: float = 2e-5
    alpha: float = 0.99

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError("optim.steps must be 0 or more")
        if min(self.lr, self.lr_disc, self.lr_class) <= 0 or not 0 < self.alpha < 1:
            raise ConfigError("optim rates must be positive and optim.alpha in (0, 1)")


@dataclass
class FDGanData:
    """Training pairs.

    Attributes:
        holdout: clips kept out of training (their pairs fill the sample strips).
        min_gap: smallest frame distance of a pair ``x_T``, ``x'_T``.
        flip: random horizontal flips (of both frames of a pair).
    """

    holdout: int = 1
    min_gap: int = 1
    flip: bool = True

    def __post_init__(self) -> None:
        if self.holdout < 0 or self.min_gap < 1:
            raise ConfigError("data.holdout must be 0 or more and data.min_gap 1 or more")


@dataclass
class FDGanConfig:
    """The whole recipe (``configs/fdgan.yaml`` spells the defaults out)."""

    train: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=4))
    model: FDGanModel = field(default_factory=FDGanModel)
    losses: FDGanLosses = field(default_factory=FDGanLosses)
    optim: FDGanOptim = field(default_factory=FDGanOptim)
    data: FDGanData = field(default_factory=FDGanData)

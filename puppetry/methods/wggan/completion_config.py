"""hrh-GAN hyper-parameters (paper 003, Sec. 4.2, after Iizuka et al. 2017); defaults are the papers'.

Given by the papers:

- the networks (Iizuka et al. 2017, Table 1-2): completion network of 64-128-256 channels with dilated
  convolutions, global and local discriminators ending in fully connected layers of 1024;
- the loss: MSE inside the hole plus ``α = 0.0004`` times the GAN loss (Iizuka, Eq. 4-5);
- Iizuka's three phases (completion network with MSE only for ``T_C`` steps, the discriminators alone
  for ``T_D``, then both jointly), with ``T_C = 90 000``, ``T_D = 10 000`` and ``T_train = 500 000``;
- the hierarchical training of 003: 128 x 128 first, then 256 x 256 with new input and output layers
  around the same intermediate layers, then the whole network fine-tuned;
- augmentation by flips and random crops (003, Sec. 4.2).

Chosen here (neither paper gives them):

- the step counts of the 256 phases (``grow256``, ``discriminator256``, ``finetune256``): a short
  schedule after the 128 one, since the trunk arrives trained;
- the batch per process: 24, i.e. Iizuka's 96 spread over four GPUs as they trained (``torchrun`` with
  four processes gives their batch);
- the optimiser: Adadelta (Iizuka's; ``lr = 1.0, rho = 0.95``, PyTorch's ``eps``); ``adam`` is available
  (``lr 2e-4``, betas ``0.5, 0.999`` are the usual GAN values) and trains the tiny test networks faster;
- the hole: the inner-mouth polygon of the Face Mesh landmarks grown by 4 % of the mouth width (it covers
  the inner lip edge, as 003's "mask of hidden inner mouth region computed with the detected landmarks");
- which frames train: mouths with a lip-open ratio of at least 0.05 (a closed mouth leaves a hole of a
  few pixels that teaches nothing), drawn with probability proportional to the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings

WEIGHTS_FORMAT = "puppetry-hrhgan"
OPTIMIZERS = ("adadelta", "adam")


@dataclass
class HrhGanModel:
    """Network sizes.

    Attributes:
        width: factor on every channel count and on the 1024-wide fully connected layers (1.0: Iizuka's).
        base_size: side of the first (low-resolution) phases, 128 in the paper; the grown network works
            at ``2 * base_size``. A power of two, 32 or more (the discriminators halve it down to 4).
    """

    width: float = 1.0
    base_size: int = 128

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ConfigError(f"model.width must be positive, got {self.width}")
        b = int(self.base_size)
        if b < 32 or b & (b - 1):
            raise ConfigError(f"model.base_size must be a power of two of 32 or more, got {self.base_size}")

    @property
    def high_size(self) -> int:
        """Side of the grown network (256 in the paper)."""
        return 2 * self.base_size


@dataclass
class HrhGanData:
    """Training samples (see :mod:`puppetry.methods.wggan.mouth_samples`).

    Attributes:
        hole_grow: the inner-mouth hole dilated by this share of the mouth width.
        min_lip_open: frames whose lip-open ratio (:func:`puppetry.face.pose.lip_open_ratio`) is lower are
            not drawn; eligible frames are drawn with probability proportional to their ratio.
        random_crop: random windows of the rectified crop, resampled to the side: zoom log-uniform in
            ``[1 / (1 + random_crop), 1 + random_crop]``, shift up to ``random_crop / 2`` of the side
            (0 turns it off).
        flip: mirror half of the samples.
        min_frames: clips with fewer frames are not used.
    """

    hole_grow: float = 0.04
    min_lip_open: float = 0.05
    random_crop: float = 0.1
    flip: bool = True
    min_frames: int = 1

    def __post_init__(self) -> None:
        if self.hole_grow < 0 or self.min_lip_open < 0 or not 0 <= self.random_crop <= 1:
            raise ConfigError("data.hole_grow and data.min_lip_open must be >= 0 and data.random_crop in [0, 1]")


@dataclass
class HrhGanOptimizer:
    """The optimiser of every phase (one for the completion network, one for the discriminators).

    Attributes:
        name: ``adadelta`` (Iizuka's) or ``adam``.
        lr: learning rate (Adadelta: 1.0).
        rho: Adadelta's decay.
        betas: Adam's betas.
    """

    name: str = "adadelta"
    lr: float = 1.0
    rho: float = 0.95
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer.name must be one of {', '.join(OPTIMIZERS)}, got {self.name!r}")
        if not self.lr > 0:
            raise ConfigError(f"optimizer.lr must be positive, got {self.lr}")


@dataclass
class HrhGanSchedule:
    """Steps of each stage (0 skips a stage).

    Attributes:
        mse128: Iizuka's phase 1 at the base size (``T_C``).
        discriminator128: phase 2 (``T_D``).
        joint128: phase 3 (``T_train - T_C - T_D``).
        grow256: the new input / output layers alone, MSE only (003: "intermediate layers kept the same").
        discriminator256: the discriminators at the grown size, completion network fixed.
        finetune256: the whole network jointly (003: "the whole network is fine tuned").
    """

    mse128: int = 90_000
    discriminator128: int = 10_000
    joint128: int = 400_000
    grow256: int = 20_000
    discriminator256: int = 5_000
    finetune256: int = 100_000

    def __post_init__(self) -> None:
        for name in ("mse128", "discriminator128", "joint128", "grow256", "discriminator256", "finetune256"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"schedule.{name} must be 0 or more")


@dataclass
class HrhGanLoss:
    """Iizuka's Eq. 5: ``min_C max_D  L_MSE + α (log D(x) + log(1 - D(C(x))))``.

    Attributes:
        alpha: weight of the GAN term (0.0004). It balances the terms when the MSE is the mean over all
            pixels of the masked squared error, which is how it is computed here.
    """

    alpha: float = 0.0004


@dataclass
class TemporalSettings:
    """Temporal coherence of the mouth (003, Sec. 5.2; :class:`puppetry.methods.wggan.temporal.MouthBlender`).

    Attributes:
        beta: weight of the flow-aligned previous mouth in the blend (0 turns blending off).
        max_motion: reset when the median flow around the mouth exceeds this share of the crop side.
        max_error: reset when the aligned previous mouth differs from the current one by more than this
            mean absolute value (0-255) inside the hole (a cut, another face).
    """

    beta: float = 0.5
    max_motion: float = 0.08
    max_error: float = 40.0

    def __post_init__(self) -> None:
        if not 0 <= self.beta < 1:
            raise ConfigError(f"temporal.beta must be in [0, 1), got {self.beta}")


@dataclass
class HrhGanTrainSettings(TrainSettings):
    """The ``train:`` section; ``batch_size`` per process: Iizuka's 96 on 4 GPUs, i.e. 24."""

    batch_size: int = 24


@dataclass
class HrhGanConfig:
    """Everything ``puppetry train hrhgan`` reads from its YAML."""

    train: HrhGanTrainSettings = field(default_factory=HrhGanTrainSettings)
    model: HrhGanModel = field(default_factory=HrhGanModel)
    data: HrhGanData = field(default_factory=HrhGanData)
    optimizer: HrhGanOptimizer = field(default_factory=HrhGanOptimizer)
    schedule: HrhGanSchedule = field(default_factory=HrhGanSchedule)
    loss: HrhGanLoss = field(default_factory=HrhGanLoss)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)

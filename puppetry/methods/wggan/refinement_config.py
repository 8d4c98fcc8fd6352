"""wg-GAN hyper-parameters (paper 003, Sec. 4.1); defaults are the paper's where it gives them.

Given by the paper:

- the networks (Fig. 3): a refinement network ``R(x_w, M)`` that downsamples to 1/4 (7x7, 5x5 and 3x3
  convolutions), four residual blocks, two resize-convolutions, skip connections between the first two
  and the last two convolutions, LReLU, a sigmoid output; a discriminator ``D(x, M)`` of six convolutions
  (7x7, 5x5, then 3x3) flattened to 32 768 features into one fully connected layer, no output activation;
- the loss (Eq. 1-3): Wasserstein GAN plus ``α = 0.004`` times the L1 distance to the ground truth;
- the discriminator sees a history of refined images (Shrivastava et al. 2017);
- training pairs from every 10th frame of clips that start at rest, at 256 x 256, flips and random crops.

Chosen here (the paper is silent):

- channel widths 32 / 64 / 128 for ``R``; ``D`` has 32-64-128-256-256-128 channels with strides
  2-2-2-2-1-1, so a 256 crop flattens to ``128 x 16 x 16 = 32 768`` features, the paper's number;
- the Wasserstein critic's Lipschitz constraint: ``gp`` (default), the gradient penalty of Gulrajani et al.
  2017 (weight 10) with Adam (``lr 1e-4``, betas ``0.5, 0.9``); ``clip`` is Arjovsky et al.'s original
  weight clipping (``±0.01``) with RMSProp (``lr 5e-5``). Clipping needs normalisation layers to keep the
  critic's output from vanishing, and the paper's critic has none, hence ``gp`` by default;
- 5 critic updates per generator update (both WGAN papers), batch 16, 100 000 generator steps;
- the L1 of Eq. 1 is the per-image **sum** of absolute differences over pixels and channels (images in
  [0, 1]), averaged over the batch: with ``α = 0.004`` a mean over pixels would be ~10^5 times too weak
  against a critic whose outputs are of order 1. At 256 x 256 the sum over a typical face region (about
  25 000 pixels) at a 0.05 error is ``α * 3750 = 15``;
- the critic compares ``mask * x + (1 - mask) * x_w`` for real and refined faces alike, so it only judges
  what ``R`` may change (the refinement output outside the face mask is discarded, Sec. 4.1);
- a history of 256 refined images; half of every critic batch is drawn from it once it holds a batch;
- the rest frame of a clip: its first frame (the paper's clips start at rest); ``neutral`` takes the most
  closed mouth among the first 30 frames;
- the inner mouth removed from ``x_w`` and ``x_g``: the inner-lip polygon grown by 4 % of the mouth width
  (the same hole hrh-GAN fills);
- random crops of 92-100 % of the side, resized back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings

WEIGHTS_FORMAT = "puppetry-wggan"
MODES = ("gp", "clip")
REST_RULES = ("first", "neutral")


@dataclass
class WgGanModel:
    """Network sizes (see :mod:`puppetry.methods.wggan.refinement`).

    Attributes:
        size: side S of the rectified face crop both networks work on.
        width: channels of R's three encoder convolutions (and, mirrored, of its decoder).
        res_blocks: residual blocks at 1/4 resolution.
        disc_channels: output channels of D's six convolutions.
        disc_strides: their strides (2 where they halve the image).
        slope: negative slope of every LReLU.
    """

    size: int = 256
    width: tuple[int, int, int] = (32, 64, 128)
    res_blocks: int = 4
    disc_channels: tuple[int, int, int, int, int, int] = (32, 64, 128, 256, 256, 128)
    disc_strides: tuple[int, int, int, int, int, int] = (2, 2, 2, 2, 1, 1)
    slope: float = 0.2

    def __post_init__(self) -> None:
        if len(self.width) != 3 or min(self.width) < 1:
            raise ConfigError(f"model.width must be three positive channel counts, got {list(self.width)}")
        if len(self.disc_channels) != 6 or min(self.disc_channels) < 1:
            raise ConfigError("model.disc_channels must be six positive channel counts")
        if len(self.disc_strides) != 6 or any(s not in (1, 2) for s in self.disc_strides):
            raise ConfigError("model.disc_strides must be six strides of 1 or 2")
        if self.res_blocks < 0:
            raise ConfigError("model.res_blocks must be 0 or more")
        down = 2 ** max(2, sum(s == 2 for s in self.disc_strides))
        if self.size < down or self.size % down:
            raise ConfigError(f"model.size must be a multiple of {down} (the networks halve it that often), "
                              f"got {self.size}")


@dataclass
class WgGanData:
    """Training pairs (see :mod:`puppetry.methods.wggan.samples`).

    Attributes:
        rest: the rest frame of a clip: ``first`` or ``neutral`` (smallest lip-open ratio in the first
            ``neutral_window`` frames).
        neutral_window: frames searched by ``neutral``.
        every: pairs are the rest frame with every ``every``-th frame after it (the paper: 10).
        mouth_grow: the inner-mouth hole is grown by this share of the mouth width.
        flip: mirror half of the samples.
        random_crop: crops keep ``1 - random_crop`` to all of the side, resized back (0 turns it off).
        cache: built pairs kept in memory (about 0.7 MB each at 256).
        statistics_pairs: pairs the part statistics are fitted on (a random subset when there are more).
        holdout: clips kept out of training (after a seeded shuffle); the sample images show them.
    """

    rest: str = "first"
    neutral_window: int = 30
    every: int = 10
    mouth_grow: float = 0.04
    flip: bool = True
    random_crop: float = 0.08
    cache: int = 2048
    statistics_pairs: int = 20_000
    holdout: int = 0

    def __post_init__(self) -> None:
        if self.rest not in REST_RULES:
            raise ConfigError(f"data.rest must be one of {', '.join(REST_RULES)}, got {self.rest!r}")
        if self.every < 1 or self.neutral_window < 1 or self.statistics_pairs < 1:
            raise ConfigError("data.every, data.neutral_window and data.statistics_pairs must be at least 1")
        if not 0 <= self.random_crop < 1 or self.mouth_grow < 0 or self.cache < 0 or self.holdout < 0:
            raise ConfigError("data.random_crop must be in [0, 1); data.mouth_grow, data.cache and data.holdout "
                              "must be 0 or more")


@dataclass
class WgGanTraining:
    """The adversarial stage (Eq. 3).

    Attributes:
        steps: generator updates.
        alpha: weight of the L1 term (Eq. 3: 0.004), on the per-image L1 sum. The critic's gradient per
            pixel shrinks as 1 / size (its norm is held near 1) while the L1's is alpha: at other sizes
            ``0.004 * 256 / size`` keeps the paper's balance.
        mode: ``gp`` (WGAN-GP, Adam) or ``clip`` (weight clipping, RMSProp).
        critic_steps: critic updates per generator update.
        lr_refiner, lr_critic: learning rates (Adam in ``gp``; RMSProp uses ``rmsprop_lr`` for both).
        betas: Adam's betas (``gp``).
        gp_weight: gradient penalty weight λ (``gp``).
        clip: critic weight bound (``clip``).
        rmsprop_lr: RMSProp's learning rate (``clip``).
        history: refined images kept for the critic (Shrivastava et al. 2017); 0 turns the history off.
        history_share: share of every critic batch's refined images drawn from the history.
    """

    steps: int = 100_000
    alpha: float = 0.004
    mode: str = "gp"
    critic_steps: int = 5
    lr_refiner: float = 1e-4
    lr_critic: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0
    clip: float = 0.01
    rmsprop_lr: float = 5e-5
    history: int = 256
    history_share: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"training.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.steps < 0 or self.critic_steps < 0 or self.history < 0:
            raise ConfigError("training.steps, training.critic_steps and training.history must be 0 or more")
        if not 0 <= self.history_share <= 1:
            raise ConfigError(f"training.history_share must be in [0, 1], got {self.history_share}")
        if min(self.lr_refiner, self.lr_critic, self.rmsprop_lr, self.clip) <= 0 or self.alpha < 0:
            raise ConfigError("training learning rates and clip must be positive, alpha 0 or more")


@dataclass
class WgGanConfig:
    """Everything ``puppetry train wggan`` reads from its YAML."""

    train: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=16))
    model: WgGanModel = field(default_factory=WgGanModel)
    data: WgGanData = field(default_factory=WgGanData)
    training: WgGanTraining = field(default_factory=WgGanTraining)

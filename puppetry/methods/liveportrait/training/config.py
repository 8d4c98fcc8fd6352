"""Hyper-parameters of ``puppetry train liveportrait`` (paper 001, Sec. 3.2-3.3 and Sec. 4 "Implementation
Details"); the defaults are the paper's where it gives them, else face vid2vid's (Wang et al., CVPR 2021,
and its public reimplementation's ``vox-256.yaml``), else ours. Every field says which.

Network sizes default to the release's, so that the exported files load with
``puppetry animate --engine liveportrait --checkpoint-dir RUN/liveportrait``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.methods.liveportrait.config import (AppearanceConfig, DecoderConfig, DenseMotionConfig, LivePortraitConfig,
                                          MotionConfig, RetargetingConfig, WarpingConfig)
from puppetry.training.config import ConfigError, TrainSettings

NUM_DOWN_BLOCKS = 2      # F and W downsample twice; G's two up-blocks assume it (release)


@dataclass
class ModelSettings:
    """Network sizes (the ``model:`` section). Defaults: the release's networks (``puppetry.methods.liveportrait.config``).

    Attributes:
        input_size: side of the images F and M see (paper: 256); G outputs ``input_size * upscale``.
        num_kp: K implicit keypoints (release: 21). num_bins: head-pose bins per angle (release: 66).
        block_expansion, max_features, reshape_channel, reshape_depth, num_resblocks: F, W and G (release:
            64, 512, 32, 16, 6); ``max_features`` must equal ``reshape_channel * reshape_depth``.
        dense_block_expansion, dense_max_features, dense_num_blocks, dense_compress: W's dense motion
            hourglass (release: 32, 1024, 5, 4).
        upscale: G's PixelShuffle factor (paper: 256 -> 512, i.e. 2).
        motion_depths, motion_dims: M's ConvNeXt-V2 backbone (paper: ConvNeXt-V2-Tiny).
        stitching_hidden, eyes_hidden, lip_hidden: hidden layers of S, R_eyes, R_lip (paper, Sec. 4).
        disc_block_expansion, disc_max_features, disc_num_blocks: each patch discriminator (FOMM / face
            vid2vid: 32, 512, 4).
        disc_scales: image scales each of D_global, D_face, D_lip looks at (ours: two, as face vid2vid's
            "multi-resolution patch GAN"; its reimplementation uses one).
        condition_channels: width of the eyes/lip-open regressor that stands in for the paper's unnamed
            condition extractor in Stage II (ours).
    """

    input_size: int = 256
    num_kp: int = 21
    num_bins: int = 66
    block_expansion: int = 64
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6
    dense_block_expansion: int = 32
    dense_max_features: int = 1024
    dense_num_blocks: int = 5
    dense_compress: int = 4
    upscale: int = 2
    motion_depths: tuple[int, ...] = (3, 3, 9, 3)
    motion_dims: tuple[int, ...] = (96, 192, 384, 768)
    stitching_hidden: tuple[int, ...] = (128, 128, 64)
    eyes_hidden: tuple[int, ...] = (256, 256, 128, 128, 64)
    lip_hidden: tuple[int, ...] = (128, 128, 64)
    disc_block_expansion: int = 32
    disc_max_features: int = 512
    disc_num_blocks: int = 4
    disc_scales: tuple[float, ...] = (1.0, 0.5)
    condition_channels: int = 32

    def __post_init__(self) -> None:
        sizes = (self.input_size, self.num_kp, self.num_bins, self.block_expansion, self.max_features,
                 self.reshape_channel, self.reshape_depth, self.num_resblocks, self.dense_block_expansion,
                 self.dense_max_features, self.dense_num_blocks, self.dense_compress, self.upscale,
                 self.disc_block_expansion, self.disc_max_features, self.disc_num_blocks, self.condition_channels)
        if min(sizes) < 1 or min(self.motion_depths + self.motion_dims) < 1:
            raise ConfigError("model sizes must be positive")
        if self.max_features != self.reshape_channel * self.reshape_depth:
            raise ConfigError(f"model.max_features ({self.max_features}) must equal model.reshape_channel x "
                              f"model.reshape_depth ({self.reshape_channel * self.reshape_depth})")
        if self.block_expansion * 2 ** NUM_DOWN_BLOCKS > self.max_features:
            raise ConfigError(f"model.block_expansion x 4 ({self.block_expansion * 4}) must not exceed "
                              f"model.max_features ({self.max_features}): W's output feeds G")
        if len(self.motion_depths) != len(self.motion_dims):
            raise ConfigError("model.motion_depths and model.motion_dims must have the same length")
        stride = 2 ** (NUM_DOWN_BLOCKS + self.dense_num_blocks)
        motion_stride = 4 * 2 ** (len(self.motion_dims) - 1)
        if self.input_size % stride or self.input_size % motion_stride:
            raise ConfigError(f"model.input_size ({self.input_size}) must be a multiple of "
                              f"{max(stride, motion_stride)} for {self.dense_num_blocks} dense-motion blocks and "
                              "M's backbone")
        if not self.disc_scales or not all(0 < s <= 1 for s in self.disc_scales):
            raise ConfigError("model.disc_scales must be scales in (0, 1]")

    @property
    def output_size(self) -> int:
        return self.input_size * self.upscale


@dataclass
class DataSettings:
    """Which pairs are drawn (the ``data:`` section).

    Attributes:
        min_frames: clips with fewer frames are not used (1 keeps single images as one-frame clips, the
            paper's mixed image-video training).
        max_frame_gap: source and driving frames at most this far apart (0: anywhere in the clip, as
            face vid2vid samples).
        fixed_pairs: train on this many fixed pairs only (0: random pairs; for overfitting checks).
    """

    min_frames: int = 1
    max_frame_gap: int = 0
    fixed_pairs: int = 0

    def __post_init__(self) -> None:
        if self.min_frames < 1 or self.max_frame_gap < 0 or self.fixed_pairs < 0:
            raise ConfigError("data.min_frames must be 1 or more; data.max_frame_gap and data.fixed_pairs 0 or more")


@dataclass
class LossSettings:
    """Stage I loss weights (Eq. 4 sums the terms; the paper gives no weights) and their parameters.

    Attributes:
        perceptual: lambda_P of the cascaded perceptual loss (face vid2vid: 10 per VGG layer and scale).
        perceptual_layers: per-layer weights of relu1_1 ... relu5_1 (FOMM / face vid2vid: all 1 x 10).
        perceptual_scales: image pyramid of the perceptual loss (FOMM / face vid2vid: 1, 1/2, 1/4, 1/8).
        regions: weights of the global, face and lip terms of both cascades (ours: equal).
        face_crop, lip_crop: side of the face and lip crops as a fraction of G's output (ours: 1/2, 1/4,
            i.e. 256 and 128 pixels at 512).
        gan: lambda_G of the cascaded hinge GAN loss (face vid2vid: 1).
        feature_matching: discriminator feature matching (face vid2vid's reimplementation: 10 per layer).
        equivariance: lambda_E (face vid2vid: 20).
        keypoint_prior: lambda_L (face vid2vid: 10), with its distance and depth targets D_t (0.1) and z_t (0.33).
        head_pose: lambda_H (face vid2vid: 20), L1 in degrees against the dataset's stored pose.
        deformation_prior: lambda_Delta (face vid2vid: 5).
        guide: weight of L_guide, Eq. 3 (ours: 1; errors measured in pixels of a 256-pixel image).
        wing_w, wing_epsilon: Wing loss parameters (Feng et al. 2018: w 10, epsilon 2 pixels).
        guide_pairs: (keypoint, MediaPipe landmark) pairs of Eq. 3 (paper: 10 from the eyes and lip).
        face_id: weight of L_faceid (ours: 10).
        pixel_l1: plain L1 between the generated and the driving image (not in the paper; 0 = off).
        pose_signs: signs applied to the dataset's (pitch, yaw, roll) before comparing with M's angles.
        tps_sigma_affine, tps_sigma_tps, tps_points: random warp of L_E (FOMM / face vid2vid: 0.05, 0.005, 5).
        vgg19_weights: VGG19 weights in torchvision's state-dict layout (``features.N.weight``); None
            turns the perceptual loss off (with a warning). Never downloaded.
        arcface_weights: ArcFace IResNet weights (insightface ``arcface_torch`` layout); None turns L_faceid off.
    """

    perceptual: float = 10.0
    perceptual_layers: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    perceptual_scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    regions: tuple[float, float, float] = (1.0, 1.0, 1.0)
    face_crop: float = 0.5
    lip_crop: float = 0.25
    gan: float = 1.0
    feature_matching: float = 10.0
    equivariance: float = 20.0
    keypoint_prior: float = 10.0
    keypoint_distance: float = 0.1
    keypoint_depth: float = 0.33
    head_pose: float = 20.0
    deformation_prior: float = 5.0
    guide: float = 1.0
    wing_w: float = 10.0
    wing_epsilon: float = 2.0
    # Eyes: upper / lower lid centres of the subject's right (159, 145) and left (386, 374) eye on the
    # release's eye keypoints; lip: outer top (0), inner top (13), inner bottom (14), outer bottom (17) and
    # corners (61, 291) on its lip keypoints (puppetry.methods.liveportrait.transfer.EYE_KEYPOINTS / LIP_KEYPOINTS).
    guide_pairs: tuple[tuple[int, int], ...] = ((11, 159), (13, 145), (15, 386), (16, 374),
                                                (6, 0), (12, 13), (14, 14), (17, 17), (19, 61), (20, 291))
    face_id: float = 10.0
    pixel_l1: float = 0.0
    pose_signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
    tps_sigma_affine: float = 0.05
    tps_sigma_tps: float = 0.005
    tps_points: int = 5
    vgg19_weights: str | None = None
    arcface_weights: str | None = None

    def __post_init__(self) -> None:
        if len(self.perceptual_layers) != 5:
            raise ConfigError("losses.perceptual_layers needs 5 weights (relu1_1 ... relu5_1)")
        if len(self.regions) != 3 or len(self.pose_signs) != 3:
            raise ConfigError("losses.regions and losses.pose_signs need 3 values")
        if not all(0 < s <= 1 for s in self.perceptual_scales) or not 0 < self.face_crop <= 1 \
                or not 0 < self.lip_crop <= 1:
            raise ConfigError("losses.perceptual_scales, face_crop and lip_crop must be in (0, 1]")
        if self.wing_w <= 0 or self.wing_epsilon <= 0 or self.tps_points < 2:
            raise ConfigError("losses.wing_w and wing_epsilon must be positive, tps_points at least 2")
        for path in ("vgg19_weights", "arcface_weights"):
            if getattr(self, path) is not None and not isinstance(getattr(self, path), str):
                raise ConfigError(f"losses.{path} must be a file path or null")
        for kp, lm in self.guide_pairs:
            if not (0 <= lm < 478 and kp >= 0):
                raise ConfigError(f"losses.guide_pairs: bad pair ({kp}, {lm}); landmarks are 0..477")


@dataclass
class Stage1Settings:
    """Stage I, base model (F, M, W, G; D_global, D_face, D_lip): Adam 2e-4, betas (0.5, 0.999) (paper).

    ``steps``: the paper trains for about 10 days on 8 A100s and gives no step count (ours: 400 000).
    """

    steps: int = 400_000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0:
            raise ConfigError("stage1.steps must be 0 or more and stage1.lr positive")


@dataclass
class Stage2Settings:
    """Stage II, stitching and retargeting (S, R_eyes, R_lip; F, M, W, G frozen), Eq. 5-6.

    Attributes:
        steps: the paper trains about 2 days and gives no step count (ours: 100 000).
        lr, betas: Adam (paper, as Stage I).
        stitching_reg: w_reg^st of Eq. 5 (paper: a hyper-parameter; ours 1).
        eyes_cond, eyes_reg, lip_cond, lip_reg: w_cond and w_reg of Eq. 6 (ours: 10, 1, 10, 1).
        eyes_range: range of the random driving eyes-open scalar (paper: [0, 0.8] in its own units; our
            ratio, lid gap over eye width, is about 0.3 for open eyes, so [0, 0.5]).
        lip_range: range of the random driving lip-open scalar (paper: [0, 0.8]).
        region_dilation: eye and lip regions grown by this fraction of the image side (ours).
        cross_identity: drive stitching with another person's motion (paper: yes).
    """

    steps: int = 100_000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    stitching_reg: float = 1.0
    eyes_cond: float = 10.0
    eyes_reg: float = 1.0
    lip_cond: float = 10.0
    lip_reg: float = 1.0
    eyes_range: tuple[float, float] = (0.0, 0.5)
    lip_range: tuple[float, float] = (0.0, 0.8)
    region_dilation: float = 0.03
    cross_identity: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0:
            raise ConfigError("stage2.steps must be 0 or more and stage2.lr positive")
        for name in ("eyes_range", "lip_range"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"stage2.{name} must be [low, high]")


@dataclass
class InitSettings:
    """``init.checkpoint_dir``: start from release weights (release network sizes only); None: from scratch."""

    checkpoint_dir: str | None = None


@dataclass
class LivePortraitTrainSettings(TrainSettings):
    """The ``train:`` section; ``batch_size`` per process defaults to the paper's 104 on 8 GPUs, i.e. 13."""

    batch_size: int = 13


@dataclass
class LivePortraitTrainConfig:
    """Everything ``puppetry train liveportrait`` reads from its YAML."""

    train: LivePortraitTrainSettings = field(default_factory=LivePortraitTrainSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    losses: LossSettings = field(default_factory=LossSettings)
    stage1: Stage1Settings = field(default_factory=Stage1Settings)
    stage2: Stage2Settings = field(default_factory=Stage2Settings)
    init: InitSettings = field(default_factory=InitSettings)


def liveportrait_config(m: ModelSettings) -> LivePortraitConfig:
    """The inference package's network config for these sizes (M's backbone sizes are not part of it)."""
    k = m.num_kp
    return LivePortraitConfig(
        appearance=AppearanceConfig(block_expansion=m.block_expansion, num_down_blocks=NUM_DOWN_BLOCKS,
                                    max_features=m.max_features, reshape_channel=m.reshape_channel,
                                    reshape_depth=m.reshape_depth, num_resblocks=m.num_resblocks),
        motion=MotionConfig(num_kp=k, num_bins=m.num_bins),
        warping=WarpingConfig(num_kp=k, block_expansion=m.block_expansion, max_features=m.max_features,
                              num_down_blocks=NUM_DOWN_BLOCKS, reshape_channel=m.reshape_channel,
                              dense_motion=DenseMotionConfig(block_expansion=m.dense_block_expansion,
                                                             max_features=m.dense_max_features,
                                                             num_blocks=m.dense_num_blocks,
                                                             reshape_depth=m.reshape_depth,
                                                             compress=m.dense_compress)),
        decoder=DecoderConfig(upscale=m.upscale, block_expansion=m.block_expansion, max_features=m.max_features,
                              num_down_blocks=NUM_DOWN_BLOCKS),
        retargeting=RetargetingConfig(stitching=(6 * k, *m.stitching_hidden, 3 * k + 2),
                                      lip=(3 * k + 2, *m.lip_hidden, 3 * k),
                                      eyes=(3 * k + 3, *m.eyes_hidden, 3 * k)),
        input_size=m.input_size)


def is_release_size(m: ModelSettings) -> bool:
    """Whether the networks have the release's sizes (the exported files then load with ``--engine liveportrait``)."""
    ref = ModelSettings()
    keys = [k for k in vars(ref) if not k.startswith(("disc_", "condition_")) and k != "input_size"]
    return all(getattr(m, k) == getattr(ref, k) for k in keys)

"""Hyper-parameters of the LivePortrait networks as released by its authors (paper 001, Sec. 3-4)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AppearanceConfig:
    """Appearance feature extractor F."""

    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True)
class MotionConfig:
    """Motion extractor M (ConvNeXt-V2-tiny backbone)."""

    num_kp: int = 21
    num_bins: int = 66


@dataclass(frozen=True)
class DenseMotionConfig:
    """Dense motion network inside W."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    """Warping module W."""

    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


@dataclass(frozen=True)
class DecoderConfig:
    """SPADE decoder G (PixelShuffle x2 at the end: 64x64 features -> 512x512 image)."""

    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2


@dataclass(frozen=True)
class RetargetingConfig:
    """Layer sizes of the stitching and retargeting MLPs (Sec. 4, implementation details)."""

    stitching: tuple[int, ...] = (126, 128, 128, 64, 65)
    lip: tuple[int, ...] = (65, 128, 128, 64, 63)
    eyes: tuple[int, ...] = (66, 256, 256, 128, 128, 64, 63)


@dataclass(frozen=True)
class LivePortraitConfig:
    """All networks of the release."""

    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    warping: WarpingConfig = field(default_factory=WarpingConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    retargeting: RetargetingConfig = field(default_factory=RetargetingConfig)
    input_size: int = 256

"""LD-Net hyper-parameters (paper 002, Sec. 3.1 and supplementary Sec. 6-7); defaults are the paper's."""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings

# Landmark sets LD-Net can be trained on: MediaPipe's 478 points (what the warp engine drives) or the
# 68-point iBUG layout from dlib (what the paper used).
LANDMARK_SETS = {"mediapipe478": 478, "dlib68": 68}


@dataclass
class LDNetModel:
    """Network sizes (supplementary Sec. 6: MLPs of 10 hidden layers x 512; codes of 64 and 128).

    Attributes:
        landmarks: ``mediapipe478`` or ``dlib68``.
        hidden: features per hidden layer.
        layers: hidden layers per MLP.
        pose_code: length of the pose/expression code (E_P's output).
        identity_code: length of the identity code (N_I's and E_I's output).
    """

    landmarks: str = "mediapipe478"
    hidden: int = 512
    layers: int = 10
    pose_code: int = 64
    identity_code: int = 128

    def __post_init__(self) -> None:
        if self.landmarks not in LANDMARK_SETS:
            raise ConfigError(f"model.landmarks must be one of {', '.join(LANDMARK_SETS)}, got {self.landmarks!r}")
        if min(self.hidden, self.layers, self.pose_code, self.identity_code) < 1:
            raise ConfigError("model sizes must be positive")

    @property
    def num_points(self) -> int:
        return LANDMARK_SETS[self.landmarks]


@dataclass
class LDNetStage1:
    """Stage 1 (E_P, N_I, G, C; Eq. 1-2): Adam 1e-4, batch 32, 4e5 iterations (Adam's betas are not given
    in the paper; PyTorch's defaults)."""

    steps: int = 400_000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lambda_rec: float = 1000.0
    lambda_c: float = 0.1


@dataclass
class LDNetStage2:
    """Stage 2 (E_I, G trained; D, C adversaries; E_P frozen; Eq. 3-7): Adam 5e-5, batch 32, 1e6 iterations."""

    steps: int = 1_000_000
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    lambda_rec: float = 1000.0
    lambda_cont: float = 0.01
    lambda_d: float = 0.1
    lambda_c: float = 0.1


@dataclass
class LDNetData:
    """Which clips train and which are held out for the Table 1 evaluation.

    Attributes:
        holdout: number of identities held out of training (the last ones in sorted order after a
            seeded shuffle), evaluated by ``puppetry train``'s report.
        min_frames: identities with fewer frames are not used.
        jitter: standard deviation of random similarity jitter (rotation in radians, log-scale)
            added to training landmarks; 0 keeps the paper's plain normalisation.
    """

    holdout: int = 3
    min_frames: int = 16
    jitter: float = 0.0


@dataclass
class LDNetConfig:
    """Everything ``puppetry train ldnet`` reads from its YAML."""

    train: TrainSettings = field(default_factory=TrainSettings)
    model: LDNetModel = field(default_factory=LDNetModel)
    data: LDNetData = field(default_factory=LDNetData)
    stage1: LDNetStage1 = field(default_factory=LDNetStage1)
    stage2: LDNetStage2 = field(default_factory=LDNetStage2)

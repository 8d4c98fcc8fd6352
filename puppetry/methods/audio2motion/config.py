"""Hyper-parameters of speech-driven motion (``puppetry train audio2motion``); the YAML mirrors them.

LivePortrait's App. C names the task (audio to motion, then the portrait renderer) but gives no network
or numbers; everything here is ours, chosen for a small CPU-trainable model (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puppetry.training.config import ConfigError, TrainSettings


@dataclass
class SpeechModel:
    """The temporal CNN (``networks.SpeechToMouth``).

    Attributes:
        n_mels: log-mel bands of the input (25 ms windows every 10 ms).
        channels: features per layer.
        dilations: one residual block per entry (kernel 3); the receptive field is
            ``1 + 2 * (1 + sum(dilations))`` rows of 10 ms, centred on the frame (sees past and future).
        dropout: dropout inside each block.
        energy_skip: add a learned multiple of the standardised loudness (log of the summed mel power,
            mean 0 and deviation 1 over the input) to the lip-open logit: the loudness rule is one
            weight away, and the blocks learn what it misses.
    """

    n_mels: int = 80
    channels: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)
    dropout: float = 0.1
    energy_skip: bool = False

    def __post_init__(self) -> None:
        if min(self.n_mels, self.channels) < 1 or not self.dilations or min(self.dilations) < 1:
            raise ConfigError("model.n_mels, model.channels and every model.dilations entry must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class SpeechData:
    """Which clips train, and how windows are drawn from them.

    Attributes:
        holdout: identities (or parts of their names, e.g. ``driving_d6``) held out of training and
            scored at the end (lip-open correlation and lip-sync offset against the loudness baseline).
        window: seconds of audio per training window.
        min_seconds: shorter clips are not used.
        silence_db: clips whose loudest tenth of frames stays below this many dBFS carry no speech and
            are not used (a silent or missing soundtrack).
        min_lip_motion: clips whose lip-open (0..1) varies by less than this standard deviation are not
            used (a still mouth over music).
        gain_db: training windows are played louder or softer by up to this many dB.
        noise_db: background noise up to this level (dBFS) is added to training windows.
        tilt_db: each training window's spectrum is tilted by up to this many dB from the lowest band to
            the highest (a brighter or duller microphone).
        band_masks: this many random runs of up to 8 mel bands are blanked per training window
            (SpecAugment's frequency masks).
    """

    holdout: list[str] = field(default_factory=list)
    window: float = 2.0
    min_seconds: float = 1.0
    silence_db: float = -50.0
    min_lip_motion: float = 0.04
    gain_db: float = 6.0
    noise_db: float = -50.0
    tilt_db: float = 0.0
    band_masks: int = 0

    def __post_init__(self) -> None:
        if self.window <= 0.2 or self.min_seconds <= 0:
            raise ConfigError("data.window must exceed 0.2 s and data.min_seconds must be positive")


@dataclass
class SpeechLosses:
    """Weights of the losses: L1 on lip-open first, then on the mouth's shape, then on lip-open's
    frame-to-frame change (sharper syllables); ``correlation_weight`` weighs ``1 - r``, the Pearson
    correlation of predicted and tracked lip-open within each window (the timing of the mouth, whatever
    its speaker's range; windows where the mouth hardly moves are left out)."""

    lip_weight: float = 1.0
    shape_weight: float = 10.0
    velocity_weight: float = 2.0
    correlation_weight: float = 0.0


@dataclass
class SpeechOptim:
    """Adam on all weights."""

    steps: int = 4000
    lr: float = 1e-3
    weight_decay: float = 1e-4


@dataclass
class Audio2MotionConfig:
    """Everything ``puppetry train audio2motion`` reads from its YAML."""

    train: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=16, checkpoint_every=1000,
                                                                       log_every=50, sample_every=500))
    model: SpeechModel = field(default_factory=SpeechModel)
    data: SpeechData = field(default_factory=SpeechData)
    losses: SpeechLosses = field(default_factory=SpeechLosses)
    optim: SpeechOptim = field(default_factory=SpeechOptim)

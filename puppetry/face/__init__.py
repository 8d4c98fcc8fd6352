"""Face analysis: landmarks, head pose, eye/lip openness, smoothing, crops and paste-back."""

from puppetry.face.crop import CropBox, crop_image, feather_mask, invert_affine, paste_back, square_crop_box
from puppetry.face.landmarks import DetectorConfig, FaceMeshDetector
from puppetry.face.pose import (FacePose, compose, decompose, euler_to_rotation, eye_open_ratio,
                                lip_open_ratio, rotation_to_euler)
from puppetry.face.smoothing import OneEuroConfig, OneEuroFilter
from puppetry.face.topology import to_ibug68

__all__ = [
    "CropBox", "DetectorConfig", "FaceMeshDetector", "FacePose", "OneEuroConfig", "OneEuroFilter",
    "compose", "crop_image", "decompose", "euler_to_rotation", "eye_open_ratio", "feather_mask",
    "invert_affine", "lip_open_ratio", "paste_back", "rotation_to_euler", "square_crop_box", "to_ibug68",
]

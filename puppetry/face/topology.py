"""Index sets of the 478-point MediaPipe Face Mesh (468 mesh points + 2 x 5 iris points).

"Right" and "left" are the subject's: the subject's right eye is on the image's left in a frontal photo.
Lid and lip lists are ordered from one corner to the other so that the i-th upper point faces the
i-th lower point (used for eye- and lip-open ratios and for closing lids and lips).
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 478
NUM_MESH = 468

# Closed contour of the face, starting at the top of the forehead.
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                      400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                      54, 103, 67, 109])
CHIN = 152
SUBNASALE = 2           # where the nose meets the upper lip
FOREHEAD = 10

# Eyes: corners, then upper and lower lids as facing pairs (corners excluded).
RIGHT_EYE_CORNERS = np.array([33, 133])      # outer, inner
LEFT_EYE_CORNERS = np.array([263, 362])      # outer, inner
RIGHT_EYE_UPPER = np.array([246, 161, 160, 159, 158, 157, 173])
RIGHT_EYE_LOWER = np.array([7, 163, 144, 145, 153, 154, 155])
LEFT_EYE_UPPER = np.array([466, 388, 387, 386, 385, 384, 398])
LEFT_EYE_LOWER = np.array([249, 390, 373, 374, 380, 381, 382])
# The skin fold above each upper lid follows the lid part of the way when the eye closes.
RIGHT_EYE_CREASE = np.array([247, 30, 29, 27, 28, 56, 190])
LEFT_EYE_CREASE = np.array([467, 260, 259, 257, 258, 286, 414])
RIGHT_IRIS = np.arange(468, 473)             # centre first
LEFT_IRIS = np.arange(473, 478)
IRIS_CENTERS = np.array([468, 473])          # subject's right, left

RIGHT_BROW = np.array([70, 63, 105, 66, 107, 55, 65, 52, 53, 46])
LEFT_BROW = np.array([300, 293, 334, 296, 336, 285, 295, 282, 283, 276])

# Lips: corners, and facing upper/lower pairs from the subject's right corner to the left one.
MOUTH_CORNERS = np.array([61, 291])
INNER_MOUTH_CORNERS = np.array([78, 308])
LIP_UPPER_OUTER = np.array([185, 40, 39, 37, 0, 267, 269, 270, 409])
LIP_LOWER_OUTER = np.array([146, 91, 181, 84, 17, 314, 405, 321, 375])
LIP_UPPER_INNER = np.array([191, 80, 81, 82, 13, 312, 311, 310, 415])
LIP_LOWER_INNER = np.array([95, 88, 178, 87, 14, 317, 402, 318, 324])
# Each lip's outer contour and the two rows of points between it and the inner contour.
LIP_UPPER_BODY = np.array([0, 11, 12, 37, 38, 39, 40, 41, 42, 72, 73, 74, 183, 184, 185,
                           267, 268, 269, 270, 271, 272, 302, 303, 304, 407, 408, 409])
LIP_LOWER_BODY = np.array([15, 16, 17, 77, 84, 85, 86, 89, 90, 91, 96, 146, 179, 180, 181,
                           307, 314, 315, 316, 319, 320, 321, 325, 375, 403, 404, 405])
# Closed polygon of the opening between the lips.
INNER_MOUTH = np.concatenate([[78], LIP_UPPER_INNER, [308], LIP_LOWER_INNER[::-1]])
OUTER_MOUTH = np.concatenate([[61], LIP_UPPER_OUTER, [291], LIP_LOWER_OUTER[::-1]])

# Points that move little with expression: used for head pose, face centre and face size.
RIGID = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 234, 454, 127, 356, 93, 323,
                  162, 389, 21, 251, 54, 284, 103, 332, 67, 297, 109, 338])

EYES = np.unique(np.concatenate([RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER,
                                 LEFT_EYE_UPPER, LEFT_EYE_LOWER, RIGHT_EYE_CREASE, LEFT_EYE_CREASE,
                                 RIGHT_IRIS, LEFT_IRIS]))
LIPS = np.unique(np.concatenate([MOUTH_CORNERS, INNER_MOUTH_CORNERS, LIP_UPPER_OUTER, LIP_LOWER_OUTER,
                                 LIP_UPPER_INNER, LIP_LOWER_INNER]))

# The 68-point iBUG / Multi-PIE layout expressed as Face Mesh indices (jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67), for methods trained on 68 points.
IBUG68 = np.array([
    234, 93, 132, 58, 172, 136, 150, 149, 152, 378, 379, 365, 397, 288, 361, 323, 454,  # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,                                     # brows
    168, 6, 197, 4, 98, 97, 2, 326, 327,                                                # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,                          # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,                                # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,                                                  # inner lips
])


def to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """Select the 68-point iBUG view of Face Mesh landmarks.

    Args:
        landmarks: ``... x 478 x D`` landmarks.
    Returns:
        ``... x 68 x D`` landmarks in iBUG order.
    """
    return landmarks[..., IBUG68, :]

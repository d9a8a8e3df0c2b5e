"""Posture from 17 COCO keypoints (ViTPose), by body geometry in image coordinates (y down).

- lying: the torso (shoulders' centre to hips' centre) is closer to horizontal than vertical;
- arms raised: both wrists above the head (or the shoulders, without a nose), e.g. climbing;
- crouching: the legs (hips to ankles, or to knees) are short next to the torso;
- standing: otherwise; unknown when too few keypoints are confident.
"""

from __future__ import annotations

import numpy as np

MIN_SCORE = 0.3
(NOSE, L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE) = (
    0,
    5,
    6,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
)


def _mean(points: np.ndarray, scores: np.ndarray, ids: tuple[int, ...]) -> np.ndarray | None:
    good = [i for i in ids if scores[i] >= MIN_SCORE]
    return points[good].mean(axis=0) if good else None


def posture(points: np.ndarray, scores: np.ndarray) -> str:
    shoulders = _mean(points, scores, (L_SHOULDER, R_SHOULDER))
    hips = _mean(points, scores, (L_HIP, R_HIP))
    if shoulders is None or hips is None:
        return "unknown"
    torso = hips - shoulders
    torso_len = float(np.hypot(*torso))
    if torso_len < 1e-6:
        return "unknown"
    if abs(torso[0]) > abs(torso[1]):
        return "lying"
    top = points[NOSE][1] if scores[NOSE] >= MIN_SCORE else shoulders[1]
    wrists = [points[i][1] for i in (L_WRIST, R_WRIST) if scores[i] >= MIN_SCORE]
    if len(wrists) == 2 and max(wrists) < top:
        return "arms raised"
    ankles = _mean(points, scores, (L_ANKLE, R_ANKLE))
    knees = _mean(points, scores, (L_KNEE, R_KNEE))
    if ankles is not None:
        legs = float(ankles[1] - hips[1])
        if legs < 0.6 * torso_len:
            return "crouching"
    elif knees is not None and float(knees[1] - hips[1]) < 0.25 * torso_len:
        return "crouching"
    return "standing"

"""Configuration of the edge face stage (the ``faces:`` section of a camera); no I/O here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import StrictModel


class FaceQualityConfig(StrictModel):
    """Thresholds a face must pass to be embedded and sent."""

    min_size: int = Field(40, ge=8, description="Shorter side of the face box, at least (pixels).")
    min_blur: float = Field(
        15.0,
        ge=0.0,
        description="Variance of the Laplacian of the aligned grey face, at least (lower "
        "is blurrier).",
    )
    max_yaw: float = Field(
        0.45,
        gt=0.0,
        description="Nose offset from the eyes' midpoint in inter-ocular distances, at most "
        "(0 is frontal).",
    )
    max_roll: float = Field(
        35.0, gt=0.0, le=90.0, description="Tilt of the eye line, at most (degrees)."
    )
    min_confidence: float = Field(0.7, ge=0.0, le=1.0, description="Detector confidence, at least.")


class FaceCropConfig(StrictModel):
    """The edge-only ring buffer of face crops (central may fetch one only on a match)."""

    max_count: int = Field(500, ge=1, description="Crops kept, at most; the oldest go first.")
    max_age_s: float = Field(
        900.0, gt=0.0, description="A crop is forgotten this many seconds after it was taken."
    )
    width: int = Field(160, ge=32, le=640, description="Crop width, at most (pixels).")
    quality: int = Field(85, ge=10, le=100, description="JPEG quality of the crops.")


class FacesConfig(StrictModel):
    """Face processing for one camera: off by default (road cameras rarely need it)."""

    enabled: bool = Field(False, description="Detect, track and embed faces on this camera.")
    detector: Literal["face-detection-retail-0004", "face-detection-adas-0001"] = Field(
        "face-detection-retail-0004",
        description="Face detector: retail-0004 for faces of about 60 px and more, adas-0001 "
        "where faces are small (slower).",
    )
    detector_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Detector score floor for a box to be tracked."
    )
    detect_fps: float = Field(
        5.0,
        ge=0.0,
        description="Run face detection at most this often on the camera (0: every frame).",
    )
    quality: FaceQualityConfig = Field(
        default_factory=FaceQualityConfig, description="Quality gate."
    )
    track_iou: float = Field(
        0.3, gt=0.0, le=1.0, description="Box overlap that continues a face track, at least."
    )
    track_timeout_s: float = Field(
        1.5, gt=0.0, description="A track unseen for this long ends and sends its best face."
    )
    track_max_age_s: float = Field(
        10.0,
        gt=0.0,
        description="A track older than this sends its best face and starts a new observation.",
    )
    crops: FaceCropConfig = Field(default_factory=FaceCropConfig, description="Crop buffer.")

"""Camera effects for synthetic plate scenes: light, night, glare, noise and blur.

:class:`Conditions` says how one plate is shown; :func:`expose` applies its photometric
part to a composed scene (the geometry is :mod:`bench.synth_scene`'s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    # Float32 pixels; OpenCV's stubs type its results loosely, so not narrowed further.
    Floats = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Conditions:
    """How one plate is shown (all drawn at random by :mod:`bench.synth`)."""

    scene: str  # "car" or "street"
    plate_px: float  # width of the plate in the output image before it is turned
    yaw: float  # degrees
    pitch: float
    roll: float
    night: bool
    infrared: bool
    blur: str  # "none", "motion" or "defocus"
    blur_px: float  # motion length or defocus radius
    dirt: float  # 0: clean, up to 1: caked
    occluded: bool
    uneven: bool  # a light gradient or a shadow edge
    jpeg_quality: int


def expose(scene: Floats, corners: Floats, cond: Conditions, rng: np.random.Generator) -> Floats:
    """What the camera makes of a scene: uneven light or a shadow edge, at night glare,
    a street-light cast, infrared monochrome and sensor noise, then motion or defocus
    blur (JPEG compression comes when the image is saved).

    Args:
        scene: The scene, BGR float pixels.
        corners: The plate's corners in it (tl, tr, br, bl): where lights and shadows go.
        cond: What to apply.
        rng: Random source.
    """
    import cv2
    import numpy as np

    height, width = scene.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    plate_w = float(np.linalg.norm(corners[1] - corners[0]))
    centre = corners.mean(axis=0)
    if cond.uneven:
        angle = rng.uniform(0, 2 * math.pi)
        along = (xx - centre[0]) * math.cos(angle) + (yy - centre[1]) * math.sin(angle)
        if rng.random() < 0.5:  # a soft shadow edge across the plate
            soft = rng.uniform(0.03, 0.2) * plate_w
            edge = 1 / (1 + np.exp(-(along - rng.uniform(-0.3, 0.3) * plate_w) / soft))
            scene *= (1 - rng.uniform(0.35, 0.6) * edge)[..., None]
        else:  # light falling off across the scene
            scene *= np.clip(1 + along / (rng.uniform(1.5, 4) * plate_w) * 0.5, 0.4, 1.3)[..., None]
    if cond.night:
        if not cond.infrared and rng.random() < 0.4:  # sodium street lights
            scene *= np.array([0.6, 0.85, 1.1], np.float32)
        if rng.random() < 0.85:
            scene = _glare(scene, corners, xx, yy, plate_w, rng)
        if cond.infrared:
            scene = np.repeat(scene.mean(axis=2, keepdims=True), 3, axis=2)
        noise = rng.normal(0, rng.uniform(4, 11), scene.shape[:2])[..., None]
        scene += noise + rng.normal(0, 3, scene.shape).astype(np.float32)
    else:
        scene = scene * rng.uniform(0.85, 1.15) + rng.normal(0, rng.uniform(0.5, 3), scene.shape)
    scene = np.clip(scene, 0, 255).astype(np.float32)
    if cond.blur == "motion":
        scene = cv2.filter2D(scene, -1, _motion_kernel(cond.blur_px, rng.normal(0, 15)))
    elif cond.blur == "defocus":
        r = max(cond.blur_px, 0.5)
        disk = np.zeros((2 * math.ceil(r) + 1,) * 2, np.float32)
        cv2.circle(disk, (math.ceil(r),) * 2, round(r), 1.0, -1, cv2.LINE_AA)
        scene = cv2.filter2D(scene, -1, disk / disk.sum())
    return scene


def _glare(
    scene: Floats, corners: Floats, xx: Floats, yy: Floats, plate_w: float, rng: np.random.Generator
) -> Floats:
    """Head- or tail-lights either side of the plate: a burnt-out core, a long bloom
    and a horizontal streak."""
    import numpy as np

    across = (corners[1] - corners[0]) / max(plate_w, 1e-6)
    up = np.array([across[1], -across[0]])
    centre = corners.mean(axis=0)
    # BGR: warm white headlights or red tail-lights.
    colour = np.array([205, 235, 255]) if rng.random() < 0.55 else np.array([70, 70, 255])
    spread, lift = rng.uniform(1.1, 1.6) * plate_w, rng.uniform(0.0, 0.8) * plate_w
    radius = rng.uniform(0.05, 0.13) * plate_w
    strength = rng.uniform(0.7, 1.4)
    for side in (-1, 1):
        x, y = centre + side * spread * across + lift * up
        dx, dy = xx - x, yy - y
        core = np.exp(-(dx**2 / (2 * radius**2) + dy**2 / (2 * (0.6 * radius) ** 2))) * 4
        bloom = 0.45 / (1 + np.sqrt(dx**2 + dy**2) / (1.5 * radius)) ** 2
        streak = 0.35 * np.exp(-(dy**2) / (2 * (0.1 * radius) ** 2) - np.abs(dx) / (5 * radius))
        scene = scene + ((core + bloom + streak) * strength)[..., None] * colour
    return scene


def _motion_kernel(length: float, angle: float) -> Floats:
    import cv2
    import numpy as np

    n = max(3, math.ceil(length) | 1)
    kernel = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(math.radians(angle)) * length / 2, math.sin(math.radians(angle)) * length / 2
    cv2.line(
        kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA
    )
    return kernel / kernel.sum()  # type: ignore[no-any-return]

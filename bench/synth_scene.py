"""Put a drawn plate into a real photo at a true scale and pose.

Backgrounds come from the shared data, read in place: ``car`` scenes are the plates-eu
photos of cars (front and rear views), whose own plate (its labelled box) is inpainted
away and replaced by the synthetic one at the same size, so the plate sits on a bumper
at a true scale; ``street`` scenes are the vehicles-street camera frames, with the plate
mounted low on a labelled car, truck or bus at the width a plate has on such a vehicle.

The plate's pose is a rotation of its plane (yaw, pitch, roll) seen by a pinhole camera;
a car photo turns with its plate, a street frame keeps its own perspective. At night
the photo is darkened and the retro-reflective plate much less; the camera's own effects
(light, glare, noise, blur) come from :mod:`bench.synth_camera`. Arrays are BGR.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.synth_camera import Conditions, expose
from bench.synth_plate import PlateSpec, render

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]
    # Working buffers (float32 pixels, float64 homographies); OpenCV's stubs type its
    # results loosely, so these are not narrowed further.
    Floats = npt.NDArray[Any]

Box = tuple[float, float, float, float]

_MAX_UPSCALE: Final = {"car": 2.0, "street": 1.6}
_STREET_RATIO: Final = (0.24, 0.3)  # plate width / labelled vehicle width
_STREET_TYPES: Final = frozenset({"car", "truck", "bus"})
_MAX_SIDE: Final = 1600  # longest side of an output image
_MARGIN: Final = 6.0  # pixels between the plate and the image edge


@dataclass(frozen=True, slots=True)
class Background:
    """A photo to put a plate in and the box that says where (see module docstring)."""

    path: Path
    kind: str  # "car" or "street"
    box: Box  # car: its own plate; street: the vehicle (x1, y1, x2, y2)

    @property
    def width(self) -> float:
        """Width of the box in pixels."""
        return self.box[2] - self.box[0]


def load_backgrounds(data: Path) -> list[Background]:
    """Car photos (plates-eu) and street frames (vehicles-street) with their boxes."""
    found: list[Background] = []
    with (data / "plates-eu" / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("bbox_w"):
                x, y, w, h = (float(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
                path = data / "plates-eu" / row["file"]
                found.append(Background(path, "car", (x, y, x + w, y + h)))
    frames: dict[str, list[tuple[str, Box]]] = {}
    with (data / "vehicles-street" / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            x1, y1, x2, y2 = (float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            frames.setdefault(row["file"], []).append((row["vehicle_type"], (x1, y1, x2, y2)))
    for file, boxes in frames.items():
        for kind, box in boxes:
            if kind in _STREET_TYPES and box[2] - box[0] >= 90 and not _hidden(box, boxes):
                found.append(Background(data / "vehicles-street" / file, "street", box))
    return found


def _hidden(box: Box, boxes: list[tuple[str, Box]]) -> bool:
    """Whether a nearer labelled vehicle (lower in the frame) covers where the plate goes."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    spot = (x1 + 0.25 * w, y1 + 0.6 * h, x2 - 0.25 * w, y2)
    return any(
        other != box
        and other[3] >= y2 - 0.05 * h
        and min(spot[2], other[2]) > max(spot[0], other[0])
        and min(spot[3], other[3]) > max(spot[1], other[1])
        for _, other in boxes
    )


def pick_background(
    backgrounds: list[Background], cond: Conditions, plate_mm: float, rng: np.random.Generator
) -> tuple[Background, float, float]:
    """A background of the wanted kind where the plate needs little upscaling.

    Returns:
        The background, the plate's pixels per millimetre in it and the factor that
        scales it to the wanted plate width.
    """
    ratio = float(rng.uniform(*_STREET_RATIO))
    options: list[tuple[Background, float, float]] = []
    for bg in backgrounds:
        if bg.kind != cond.scene:
            continue
        # A car's own plate box is 520 mm wide; ours is drawn 3 % wider to cover it.
        per_mm = bg.width / 520 * 1.03 if bg.kind == "car" else bg.width * ratio / 520
        options.append((bg, per_mm, cond.plate_px / (plate_mm * per_mm)))
    fitting = [o for o in options if o[2] <= _MAX_UPSCALE[cond.scene]]
    if not fitting:  # no photo is close enough: take the least upscaled
        fitting = [min(options, key=lambda o: o[2])]
    return fitting[int(rng.integers(len(fitting)))]


@functools.lru_cache(maxsize=48)
def _photo(path: Path, erase: Box | None) -> Image:
    """A background photo, its own plate inpainted away when ``erase`` is given."""
    import cv2
    import numpy as np

    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read background image {path}")
    if erase is not None:
        x1, y1, x2, y2 = erase
        dx, dy = 0.06 * (x2 - x1), 0.25 * (y2 - y1)
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.rectangle(mask, (int(x1 - dx), int(y1 - dy)), (int(x2 + dx), int(y2 + dy)), 255, -1)
        image = cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA)
    image.setflags(write=False)
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Scene:
    """A finished image and where its plate is.

    Attributes:
        image: BGR pixels.
        corners: The plate's corners (tl, tr, br, bl) in image pixels.
        turned: Share of the drawn yaw, pitch and roll the image shows (a car photo is
            turned less, or not at all, when turning it would cut the plate off).
    """

    image: Image
    corners: Floats
    turned: float


def compose(
    spec: PlateSpec,
    cond: Conditions,
    bg: Background,
    per_mm: float,
    scale: float,
    font: Path,
    rng: np.random.Generator,
) -> Scene | None:
    """The scene with the plate in it; None when the plate does not fit in the photo.

    Args:
        spec: What the plate shows.
        cond: How it is shown.
        bg: Where it is put.
        per_mm: The plate's pixels per millimetre in the background photo.
        scale: Factor from the background photo to the output image.
        font: Character font file.
        rng: Random source (the only one: the scene is a function of its state).
    """
    import cv2
    import numpy as np

    photo = _photo(bg.path, bg.box if bg.kind == "car" else None)
    size = (max(1, round(photo.shape[1] * scale)), max(1, round(photo.shape[0] * scale)))
    inter = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scene = cv2.resize(photo, size, interpolation=inter).astype(np.float32)
    x1, y1, x2, y2 = (v * scale for v in bg.box)
    if bg.kind == "car":
        centre = ((x1 + x2) / 2, (y1 + y2) / 2 + 0.05 * (y2 - y1))
    else:
        centre = ((x1 + x2) / 2 + rng.uniform(-0.05, 0.05) * (x2 - x1), y1 + 0.8 * (y2 - y1))
    if cond.night:  # dark scene, retro-reflective plate
        scene *= rng.uniform(0.08, 0.22) if not cond.infrared else rng.uniform(0.1, 0.3)
    # An upscaled photo is soft, a compressed street camera frame more so: soften the
    # plate (drawn at twice the output scale) to match.
    soften = 2 * max(0.0, scale - 1.0) + (1.5 if bg.kind == "street" else 0.0)
    plate = _plate_layer(spec, cond, font, per_mm * scale * 2, soften, rng)
    cx, cy = plate.centre
    place = _translate(*centre) @ np.diag([0.5, 0.5, 1.0]) @ _translate(-cx, -cy)
    focal = rng.uniform(1.2, 2.0) * max(size)
    turned = 1.0
    if bg.kind == "car":  # the car turns with its plate
        scene = _paste(scene, plate, place)
        for turned in (1.0, 0.5, 0.0):
            pose = _pose(cond, turned, focal, centre)
            done = _turn(scene, pose, _apply(pose @ place, plate.corners))
            if done is not None:
                scene, corners = done
                break
        else:
            return None
    else:
        pose = _pose(cond, 1.0, focal, centre)
        scene, corners = _paste(scene, plate, pose @ place), _apply(pose @ place, plate.corners)
        if not _inside(corners, (0.0, 0.0, float(size[0]), float(size[1]))):
            return None
    scene, corners = _crop(scene, corners, rng)
    scene = expose(scene, corners, cond, rng)
    return Scene(np.clip(scene, 0, 255).astype(np.uint8), corners, turned)


@dataclass(frozen=True, slots=True)
class _Layer:
    bgr: Floats
    alpha: Floats
    corners: Floats

    @property
    def centre(self) -> tuple[float, float]:
        c = self.corners.mean(axis=0)
        return float(c[0]), float(c[1])


def _plate_layer(
    spec: PlateSpec,
    cond: Conditions,
    font: Path,
    px_per_mm: float,
    soften: float,
    rng: np.random.Generator,
) -> _Layer:
    """The plate drawn at twice the output scale, dirtied, occluded, lit and blurred by
    ``soften`` pixels (of that scale) more than anti-aliasing needs."""
    import cv2
    import numpy as np

    drawn = render(spec, font, px_per_mm)
    bgr: Floats = drawn.rgba[:, :, 2::-1].astype(np.float32)  # RGB -> BGR
    alpha: Floats = drawn.rgba[:, :, 3].astype(np.float32) / 255
    h = alpha.shape[0]
    # Stamped characters and border: light catches one side of each edge, the other is
    # in shadow.
    emboss = np.zeros((3, 3), np.float32)
    corner = [(0, 0), (0, 2), (2, 0), (2, 2)][int(rng.integers(4))]
    emboss[corner], emboss[2 - corner[0], 2 - corner[1]] = 1.0, -1.0
    relief = cv2.filter2D(bgr.mean(axis=2), -1, emboss) * rng.uniform(0.1, 0.25)
    bgr = bgr + relief[..., None]
    if cond.dirt:
        bgr = _dirty(bgr, cond.dirt, px_per_mm, rng)
    if cond.occluded:  # a tow bar or bike-rack arm in front of the plate
        (left, top), (right, bottom) = drawn.corners[0], drawn.corners[2]
        x = left + rng.uniform(0.2, 0.85) * (right - left)
        half = rng.uniform(0.015, 0.035) * (right - left)
        y = top + rng.uniform(0.25, 0.6) * (bottom - top)
        shade = float(rng.uniform(25, 70))
        cv2.rectangle(bgr, (int(x - half), int(y)), (int(x + half), h), (shade,) * 3, -1)
        cv2.rectangle(alpha, (int(x - half), int(y)), (int(x + half), h), 1.0, -1)
    gain = rng.uniform(0.72, 1.0)
    if cond.night:
        gain = rng.uniform(0.8, 1.1) if cond.infrared else rng.uniform(0.35, 0.75)
    # Drawn at twice the output scale: smooth before the warp halves it.
    sigma = math.hypot(0.85, soften)
    bgr = cv2.GaussianBlur(bgr * gain, (0, 0), sigma)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    return _Layer(bgr.astype(np.float32), alpha.astype(np.float32), drawn.corners)


def _dirty(bgr: Floats, dirt: float, px_per_mm: float, rng: np.random.Generator) -> Floats:
    """Road grime, thicker low on the plate, and mud drops thrown up by the wheels."""
    import cv2
    import numpy as np

    h, w = bgr.shape[:2]
    field = cv2.resize(rng.normal(size=(max(2, h // 20), max(2, w // 20))), (w, h))
    fine = cv2.resize(rng.normal(size=(max(2, h // 5), max(2, w // 5))), (w, h))
    ramp = np.linspace(-0.3, 0.3, h)[:, None]
    mask = np.clip((field + 0.5 * fine) * 0.6 + ramp, 0, 1) * dirt
    for _ in range(int(dirt * 80)):
        x, y = rng.uniform(0, w), h * (1 - rng.random() ** 2)  # denser low down
        radius = max(1, round(rng.uniform(1.0, 4.0) * px_per_mm))
        cv2.circle(mask, (int(x), int(y)), radius, float(rng.uniform(0.4, 0.9)), -1, cv2.LINE_AA)
    mud = np.array([52, 66, 80], np.float32) * rng.uniform(0.6, 1.3)  # BGR brown-grey
    return bgr * (1 - mask[..., None]) + mud * mask[..., None]  # type: ignore[no-any-return]


def _translate(dx: float, dy: float) -> Floats:
    import numpy as np

    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)  # type: ignore[return-value]


def _inside(corners: Floats, area: Box) -> bool:
    """Whether the corners lie in ``area`` (x0, y0, x1, y1) with :data:`_MARGIN` to spare."""
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return bool(
        lo[0] >= area[0] + _MARGIN
        and lo[1] >= area[1] + _MARGIN
        and hi[0] <= area[2] - _MARGIN
        and hi[1] <= area[3] - _MARGIN
    )


def _pose(cond: Conditions, share: float, focal: float, centre: tuple[float, float]) -> Floats:
    """Homography of the plane turned by ``share`` of the yaw, pitch and roll about
    ``centre``, seen from ``focal`` pixels away by a camera with that focal length.

    Positive pitch is a camera above the plate looking down (its top edge shrinks).
    """
    import numpy as np

    y, p, r = (math.radians(a * share) for a in (cond.yaw, -cond.pitch, cond.roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = rz @ rx @ ry
    plane = np.array(
        [
            [rot[0, 0], rot[0, 1], 0],
            [rot[1, 0], rot[1, 1], 0],
            [rot[2, 0] / focal, rot[2, 1] / focal, 1],
        ]
    )
    return _translate(*centre) @ plane @ _translate(-centre[0], -centre[1])  # type: ignore[no-any-return]


def _apply(h: Floats, points: Floats) -> Floats:
    import numpy as np

    pts = np.hstack([points, np.ones((len(points), 1))]) @ h.T
    return (pts[:, :2] / pts[:, 2:]).astype(np.float32)  # type: ignore[no-any-return]


def _paste(scene: Floats, layer: _Layer, h: Floats) -> Floats:
    """Alpha-blend ``layer`` warped by ``h`` into ``scene``."""
    import cv2

    size = (scene.shape[1], scene.shape[0])
    bgr = cv2.warpPerspective(layer.bgr, h, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(layer.alpha, h, size, flags=cv2.INTER_LINEAR)[..., None]
    return scene * (1 - alpha) + bgr * alpha  # type: ignore[no-any-return]


def _turn(scene: Floats, h: Floats, corners: Floats) -> tuple[Floats, Floats] | None:
    """A whole photo warped by ``h``, cut to the upright rectangle inside the warped
    outline, and the (warped) plate corners in it; None when that cuts off the plate."""
    import cv2
    import numpy as np

    height, width = scene.shape[:2]
    quad = _apply(h, np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32))
    x0, x1 = float(max(quad[0, 0], quad[3, 0])), float(min(quad[1, 0], quad[2, 0]))
    y0, y1 = float(max(quad[0, 1], quad[1, 1])), float(min(quad[2, 1], quad[3, 1]))
    if not _inside(corners, (x0, y0, x1, y1)):
        return None
    size = (int(x1 - x0), int(y1 - y0))
    out = cv2.warpPerspective(scene, _translate(-x0, -y0) @ h, size, flags=cv2.INTER_LINEAR)
    return out, corners - np.array([x0, y0], np.float32)


def _crop(scene: Floats, corners: Floats, rng: np.random.Generator) -> tuple[Floats, Floats]:
    """A window of the photo's shape, at most :data:`_MAX_SIDE` pixels long, around the
    plate, placed at random."""
    height, width = scene.shape[:2]
    lo, hi = corners.min(axis=0) - _MARGIN, corners.max(axis=0) + _MARGIN
    shrink = min(1.0, _MAX_SIDE / max(width, height))  # keep the photo's aspect ratio
    box: list[int] = []
    for extent, a, b in ((width, lo[0], hi[0]), (height, lo[1], hi[1])):
        size = max(round(extent * shrink), math.ceil(b - a))
        first, last = max(0.0, float(b) - size), min(float(a), extent - size)
        box += [int(rng.uniform(first, max(first, last))), size]
    x, w, y, h = box
    return scene[y : y + h, x : x + w], corners - (x, y)

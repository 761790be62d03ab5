"""What the predicting verbs read and where they write: the inputs a user names, read one frame at a time, and the
numbered run folder that takes the annotated pictures. No PyTorch and no tritnet: ``tritnet-rt run`` uses this
as it is, and ``tritnet detector test``, ``classifier predict`` and ``run`` use the same.

Inputs (each verb takes several, so a shell glob works unquoted too)::

    dog.jpg            one image (any file Pillow reads, whatever its suffix)
    images/            the images in a folder, sorted by name; other files are skipped with a warning
    'images/*.jpg'     a glob (``**`` descends into folders)
    train.txt          a darknet list: one image path a line (relative to the current folder, else to the list's)
    clip.mp4           a video, frame by frame (OpenCV: the ``video`` extra)
    0                  camera 0 (OpenCV), when no file of that name exists

Outputs go into ``PROJECT/NAME`` (default ``runs/predict``), made when the first picture is written; if it exists,
``runs/predict2``, ``runs/predict3``, … as Ultralytics numbers its runs (``exist_ok`` writes into the folder
as it is).

:func:`predict` runs a verb's inference over every input: an image that cannot be read is one warning line and is
skipped (a single input that cannot be read is an error), each result is printed as text or one JSON line, and the
count, the frames per second and the output folder are printed to stderr at the end.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .detect.image import ImageError, read_rgb

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Source", "Frame", "expand_sources", "frames", "read_rgb",
           "new_run_dir", "predict", "draw_top", "warn", "OPENCV_MISSING"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tif", ".tiff", ".webp",
                  ".jfif", ".dib", ".tga", ".ico", ".mpo")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".flv", ".asf", ".ts",
                  ".3gp", ".mjpeg", ".mjpg")
LIST_SUFFIXES = (".txt", ".list")
OPENCV_MISSING = ("needs OpenCV, which is not installed: python -m pip install opencv-python-headless "
                  "(or the package's `video` extra)")


def warn(message: str) -> None:
    """One ``warning: …`` line on stderr, as tritnet prints skipped data entries."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Source:
    kind: str           # "image", "video" or "camera"
    path: str           # the file; for a camera its index as text
    camera: int = -1


def _cv2(what: str):
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")      # its own warnings would say again what we say once
    try:
        import cv2
    except ImportError:
        raise ValueError(f"{what}: reading videos and cameras {OPENCV_MISSING}") from None
    return cv2


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _from_file(path: Path, video: bool, explicit: bool) -> Optional[Source]:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        if not video:
            if explicit:
                raise ValueError(f"{path}: a video; videos and cameras are read by `tritnet run` and `tritnet-rt "
                                 "run` (export the model with `tritnet export`)")
            warn(f"{path}: a video, which this verb does not read (`tritnet run` does); skipped")
            return None
        return Source("video", str(path))
    if suffix in IMAGE_SUFFIXES or explicit:        # a file named on the command line is tried as an image
        return Source("image", str(path))
    warn(f"{path}: not an image ({suffix or 'no suffix'}); skipped")
    return None


def _read_list(path: Path, video: bool) -> list:
    """A darknet image list: one path a line; blank lines and ``#`` comments skipped. A path is taken as given
    (darknet reads it from the current folder), else next to the list."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text list of image paths (and not an image either)") from None
    out = []
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        if not p.is_absolute() and not p.exists() and (path.parent / p).exists():
            p = path.parent / p
        if not p.is_file():
            warn(f"{path}:{lineno}: {line}: no such image; skipped")
            continue
        s = _from_file(p, video, explicit=False)
        if s is not None:
            out.append(s)
    if not out:
        raise ValueError(f"{path}: the list names no image that exists")
    return out


def _is_list(path: Path) -> bool:
    """A ``.txt``/``.list`` file whose first non-blank line names an image or video (so a text file of something
    else is an image that fails to read, not an empty list)."""
    if path.suffix.lower() not in LIST_SUFFIXES:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if b"\0" in head:
        return False
    return True


def expand_sources(specs, video: bool = True) -> list:
    """The :class:`Source` list of the inputs named on a command line (see the module docstring). A name that
    is nothing (no file, folder, glob match or, with ``video``, camera index) is a ValueError naming it; folder
    entries that are not images (or videos, with ``video``) are skipped with a warning."""
    out = []
    for spec in specs:
        spec = str(spec)
        p = Path(spec)
        if p.exists() and not os.access(p, os.R_OK):
            raise ValueError(f"{spec}: cannot read it (permission denied)")
        if p.is_dir():
            found = []
            for child in sorted(p.iterdir()):
                if child.name.startswith("."):
                    continue
                if child.is_dir():
                    continue
                s = _from_file(child, video, explicit=False)
                if s is not None:
                    found.append(s)
            if not found:
                raise ValueError(f"{spec}: no images in this folder")
            out += found
        elif p.is_file():
            if _is_list(p):
                out += _read_list(p, video)
            else:
                out.append(_from_file(p, video, explicit=True))
        elif spec.strip().isdigit() and len(spec.strip()) < 4:
            if not video:
                raise ValueError(f"{spec}: no such file or folder (cameras are read by `tritnet run` and "
                                 "`tritnet-rt run`)")
            out.append(Source("camera", spec.strip(), int(spec)))
        elif _is_glob(spec):
            matches = sorted(m for m in glob.glob(spec, recursive=True) if Path(m).is_file())
            found = [s for s in (_from_file(Path(m), video, explicit=False) for m in matches) if s is not None]
            if not found:
                raise ValueError(f"{spec}: no image matches this pattern")
            out += found
        else:
            raise ValueError(f"{spec}: no such image, folder, list or glob")
    if video and any(s.kind != "image" for s in out):
        _cv2(next(s.path for s in out if s.kind != "image"))
    return out


# ---------------------------------------------------------------------------------------------- reading

@dataclass
class Frame:
    """One picture to predict on: ``rgb`` (H, W, 3) uint8; ``path`` the image file (None for a video frame);
    ``name`` what the output calls it (the path, or ``clip.mp4#12``, ``camera0#12``); ``index`` the frame
    number (0 for an image); ``source`` where it came from."""
    name: str
    rgb: np.ndarray
    path: Optional[str]
    index: int
    source: Source


class _Video:
    def __init__(self, source: Source):
        cv2 = _cv2(source.path)
        self.cv2 = cv2
        self.cap = cv2.VideoCapture(source.camera if source.kind == "camera" else source.path)
        if not self.cap.isOpened():
            what = f"camera {source.camera}" if source.kind == "camera" else source.path
            raise ValueError(f"{what}: OpenCV cannot open it")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frames = n if source.kind == "video" and n > 0 else None

    def __iter__(self):
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                return
            yield np.ascontiguousarray(bgr[:, :, ::-1])

    def close(self):
        self.cap.release()


def frames(sources, max_frames: Optional[int] = None, on_video=None) -> Iterator:
    """Every picture of ``sources``, in order; images that cannot be read are yielded as (source, error text)
    pairs so the caller decides between a warning and an error. ``on_video(source, video)`` is called when a
    video or camera opens (the caller's video writer needs its frame rate)."""
    for s in sources:
        if s.kind == "image":
            try:
                yield Frame(s.path, read_rgb(s.path), s.path, 0, s)
            except ValueError as e:
                yield s, str(e)
            continue
        video = _Video(s)
        if on_video is not None:
            on_video(s, video)
        stem = f"camera{s.camera}" if s.kind == "camera" else s.path
        try:
            for i, rgb in enumerate(video):
                if max_frames is not None and i >= max_frames:
                    break
                yield Frame(f"{stem}#{i}", rgb, None, i, s)
        finally:
            video.close()


# ---------------------------------------------------------------------------------------------- writing

def new_run_dir(project, name: str = "predict", exist_ok: bool = False) -> Path:
    """``project/name``, made now: with ``exist_ok`` as it is; else the first of name, name2, name3, … that does
    not exist yet (never an earlier run's folder)."""
    project = Path(project)
    if project.exists() and not project.is_dir():
        raise ValueError(f"{project}: is a file, not a project folder")
    project.mkdir(parents=True, exist_ok=True)
    if exist_ok:
        (project / name).mkdir(exist_ok=True)
        return project / name
    for i in range(1, 100_000):
        path = project / (name if i == 1 else f"{name}{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ValueError(f"{project}: too many runs named {name}")


def draw_top(image, top: list, key: str = "probability"):
    """A copy of ``image`` (PIL) with the top classes written in its top-left corner, one a line."""
    from PIL import ImageDraw, ImageFont
    im = image.convert("RGB")
    draw = ImageDraw.Draw(im)
    size = max(10, int(im.height * .04))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:                             # Pillow < 10.1
        font = ImageFont.load_default()
    y = 2
    for t in top:
        text = f"{t['class']} {t[key] * 100:.1f}%"
        l, tp, r, b = draw.textbbox((0, 0), text, font=font)
        draw.rectangle([0, y, r - l + 4, y + b - tp + 4], fill=(0, 0, 0))
        draw.text((2, y + 2 - tp), text, fill=(255, 255, 255), font=font)
        y += b - tp + 6
    return im


def _save_image(im, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG"}.get(path.suffix.lower())
    im.save(tmp, format=fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    os.replace(tmp, path)


class _Outputs:
    """Where each picture goes: ``out`` (one file, for a single input), else the run folder, made lazily."""

    def __init__(self, save: bool, out: Optional[str], project, name, exist_ok: bool):
        self.save, self.out, self.project, self.name, self.exist_ok = save, out, project, name, exist_ok
        self.dir: Optional[Path] = None
        self.used: set = set()
        self.writers: dict = {}

    def folder(self) -> Path:
        if self.dir is None:
            self.dir = new_run_dir(self.project, self.name, self.exist_ok)
        return self.dir

    def _unique(self, filename: str) -> Path:
        stem, suffix = os.path.splitext(filename)
        candidate, i = filename, 2
        while candidate in self.used:
            candidate, i = f"{stem}_{i}{suffix}", i + 1
        self.used.add(candidate)
        return self.folder() / candidate

    def image_path(self, source: Source) -> Optional[Path]:
        if not self.save:
            return None
        if self.out:
            return Path(self.out)
        p = Path(source.path)
        suffix = p.suffix.lower() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".jpg"
        return self._unique(p.stem + suffix)

    def video_frame(self, frame: Frame, fps: float, im) -> Optional[Path]:
        if not self.save:
            return None
        s = frame.source
        writer = self.writers.get(s)
        if writer is None:
            import cv2
            if self.out:
                path = Path(self.out)
            else:
                stem = f"camera{s.camera}" if s.kind == "camera" else Path(s.path).stem
                path = self._unique(stem + ".mp4")
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, im.size)
            if not writer.isOpened():
                raise ValueError(f"{path}: OpenCV cannot write this video (try a .mp4 or .avi name)")
            self.writers[s] = writer = (writer, path)
        w, path = writer
        w.write(np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1]))
        return path

    def close(self):
        for w, _ in self.writers.values():
            w.release()
        self.writers.clear()


def predict(sources, infer: Callable, *, as_json: bool = False, save: bool = True, out: Optional[str] = None,
            project="runs", name: str = "predict", exist_ok: bool = False, max_frames: Optional[int] = None,
            header: Callable[[Frame, float], str] = None) -> dict:
    """Run ``infer(frame) -> (record, lines, draw)`` on every picture of ``sources``.

    ``record``: the JSON fields of one result; ``lines``: its text lines; ``draw``: None, or a function from the
    PIL picture to the annotated one. Prints one JSON line (``as_json``) or a header and the lines per picture
    on stdout; warnings and the closing summary (pictures, frames per second, where the outputs went) on stderr.
    Saves annotated images (``save``) to ``out`` or the run folder; videos and cameras to an .mp4 each.
    Returns the summary as a dict."""
    from PIL import Image
    if out and (len(sources) > 1):
        raise ValueError(f"--out {out}: names one file, but {len(sources)} inputs were given; leave --out out to "
                         "write them all into the run folder (--project/--name)")
    outputs = _Outputs(save, out, project, name, exist_ok)
    fps_of: dict = {}
    single = len(sources) == 1 and sources[0].kind == "image"
    done = skipped = 0
    infer_s = 0.0
    start = time.perf_counter()
    header = header or (lambda f, s: f"{f.name}: Predicted in {s:f} seconds.")
    try:
        for item in frames(sources, max_frames, on_video=lambda s, v: fps_of.__setitem__(s, v.fps)):
            if isinstance(item, tuple):                       # an image that cannot be read
                src, problem = item
                if single:
                    raise ValueError(problem)
                warn(f"{problem}; skipped")
                skipped += 1
                continue
            t0 = time.perf_counter()
            try:
                record, lines, draw = infer(item)
            except ImageError as e:                           # an image the network cannot take
                if single:
                    raise ValueError(f"{item.name}: {e}") from None
                warn(f"{item.name}: {e}; skipped")
                skipped += 1
                continue
            took = time.perf_counter() - t0
            infer_s += took
            written = None
            if save and draw is not None:
                im = draw(Image.fromarray(item.rgb))
                if item.source.kind == "image":
                    written = outputs.image_path(item.source)
                    _save_image(im, written)
                else:
                    written = outputs.video_frame(item, fps_of.get(item.source, 30.0), im)
            done += 1
            if as_json:
                rec = {"image": item.name, **record}
                if item.source.kind != "image":
                    rec.update(source=item.source.path, frame=item.index)
                rec.update(output=str(written) if written is not None else None, seconds=took)
                print(json.dumps(rec), flush=True)
            else:
                print(header(item, took))
                for line in lines:
                    print(line)
                sys.stdout.flush()
    except KeyboardInterrupt:
        warn("interrupted; stopping")
    finally:
        outputs.close()
    wall = time.perf_counter() - start
    if done == 0:
        raise ValueError(f"none of the {skipped} images could be read")
    summary = {"images": done, "skipped": skipped, "seconds": wall, "fps": done / wall if wall > 0 else 0.0,
               "inference_fps": done / infer_s if infer_s > 0 else 0.0,
               "saved_to": str(outputs.dir) if outputs.dir is not None else (out or None)}
    kind = "picture" if any(s.kind != "image" for s in sources) else "image"
    where = f"; results saved to {summary['saved_to']}" if summary["saved_to"] else ""
    skip = f" ({skipped} skipped)" if skipped else ""
    print(f"{done} {kind}{'s' if done != 1 else ''}{skip} in {wall:.2f} s: {summary['fps']:.1f} frames per second "
          f"({summary['inference_fps']:.1f} counting the network alone){where}", file=sys.stderr, flush=True)
    return summary

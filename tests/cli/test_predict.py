"""The predicting verbs through the command line: many inputs (folders, globs, darknet lists, videos, a camera
index), numbered run folders, one JSON line per picture, warnings for what cannot be read, darknet's flags."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tritnet.cli import main
from tritnet_rt.cli import main as rt_main

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DN = SHARED / "darknet"
REF = DN / "reference"
pytestmark = pytest.mark.skipif(not REF.is_dir(), reason=f"darknet references not found at {REF}")
IMAGES = ["raccoon__raccoon-105", "raccoon__raccoon-128"]


def _run(argv, capsys, cli=main):
    rc = cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out, err


def _fails(argv, capsys, cli=main, prog="tritnet", warnings: int = 0) -> str:
    """The error line of a command that must fail with status 2 (after ``warnings`` warning lines)."""
    assert cli([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == warnings + 1 and all(ln.startswith("warning: ") for ln in lines[:-1]), err
    assert lines[-1].startswith(f"{prog}: error: ") and "Traceback" not in err, err
    return lines[-1]


def _ttt4():
    return [REF / "cfg" / "ttt4.data", REF / "cfg" / "ttt4_b1.cfg", DN / "weights" / "ttt4_minloss.weights"]


def _folder(tmp_path) -> Path:
    """Two real images, a text file and a file that claims to be a JPEG but is not."""
    d = tmp_path / "imgs"
    d.mkdir()
    for stem in IMAGES:
        (d / f"{stem}.png").write_bytes((REF / "inputs" / f"{stem}__stb_rgb.png").read_bytes())
    (d / "notes.md").write_text("not a picture")
    (d / "broken.jpg").write_text("not a jpeg")
    return d


def _lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines()]


def test_detector_test_reads_folders_globs_and_lists_into_numbered_run_folders(tmp_path, capsys):
    imgs = _folder(tmp_path)
    proj = tmp_path / "runs"
    single = {}
    for stem in IMAGES:                               # each image alone, as before: the reference results
        out, _ = _run(["detector", "test", *_ttt4(), imgs / f"{stem}.png", "--out", "", "--json"], capsys)
        single[stem] = json.loads(out)["detections"]
        assert single[stem]

    out, err = _run(["detector", "test", *_ttt4(), imgs, "--project", proj, "--json"], capsys)
    recs = _lines(out)                                # one JSON line per readable image, in name order
    assert [Path(r["image"]).stem for r in recs] == IMAGES
    assert [r["detections"] for r in recs] == [single[s] for s in IMAGES]
    assert [r["output"] for r in recs] == [str(proj / "predict" / f"{s}.png") for s in IMAGES]
    assert all(r["seconds"] > 0 for r in recs)
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert warnings == [f"warning: {imgs / 'notes.md'}: not an image (.md); skipped",
                        f"warning: {imgs / 'broken.jpg'}: not an image Pillow can read; skipped"]
    summary = err.splitlines()[-1]
    assert summary.startswith("2 images (1 skipped) in ") and "frames per second" in summary
    assert summary.endswith(f"results saved to {proj / 'predict'}") and "Traceback" not in err
    # the drawn picture: class 0's box is magenta (darknet's colour), on the box's left edge
    box = single[IMAGES[0]][0]["box"]
    im = np.asarray(Image.open(proj / "predict" / f"{IMAGES[0]}.png"))
    assert im.shape == (960, 720, 3) and tuple(im[(box["top"] + box["bottom"]) // 2, box["left"]]) == (255, 0, 255)

    # a glob (quoted, so tritnet expands it) and a darknet list: the next numbers, never the same folder
    out, _ = _run(["detector", "test", *_ttt4(), str(imgs / "raccoon*.png"), "--project", proj, "--json"], capsys)
    assert [r["detections"] for r in _lines(out)] == [single[s] for s in IMAGES]
    assert {Path(r["output"]).parent.name for r in _lines(out)} == {"predict2"}
    listing = tmp_path / "valid.txt"
    listing.write_text(f"imgs/{IMAGES[1]}.png\n\n{imgs / IMAGES[0]}.png\nimgs/gone.png\n")   # relative to the list
    out, err = _run(["detector", "test", *_ttt4(), listing, "--project", proj, "--json"], capsys)
    assert [Path(r["image"]).stem for r in _lines(out)] == [IMAGES[1], IMAGES[0]]
    assert f"warning: {listing}:4: imgs/gone.png: no such image; skipped" in err
    assert sorted(p.name for p in proj.iterdir()) == ["predict", "predict2", "predict3"]
    # text: darknet's lines per image; --exist-ok and --name choose the folder
    out, _ = _run(["detector", "test", *_ttt4(), imgs / f"{IMAGES[1]}.png", imgs / f"{IMAGES[0]}.png",
                   "--project", proj, "--name", "predict", "--exist-ok"], capsys)
    heads = [ln for ln in out.splitlines() if "Predicted in" in ln]
    assert [h.split(":")[0] for h in heads] == [str(imgs / f"{s}.png") for s in (IMAGES[1], IMAGES[0])]
    assert sorted(p.name for p in proj.iterdir()) == ["predict", "predict2", "predict3"]


def test_what_cannot_be_read_is_one_line(tmp_path, capsys):
    imgs = _folder(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("x")
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    for argv, needle, warned in [
        ([*_ttt4(), imgs / "broken.jpg"], f"{imgs / 'broken.jpg'}: not an image Pillow can read", 0),
        ([*_ttt4(), bad], "none of the 2 images could be read", 2),
        ([*_ttt4(), tmp_path / "nothing"], f"{tmp_path / 'nothing'}: no such image, folder, list or glob", 0),
        ([*_ttt4(), str(tmp_path / "*.gif")], "no image matches this pattern", 0),
        ([*_ttt4(), imgs / f"{IMAGES[0]}.png", imgs / f"{IMAGES[1]}.png", "--out", tmp_path / "one.jpg"],
         f"--out {tmp_path / 'one.jpg'}: names one file, but 2 inputs", 0),
        ([*_ttt4(), imgs / f"{IMAGES[0]}.png", "-tresh", ".3"],
         "unrecognized arguments: -tresh .3; did you mean --thresh?", 0),
    ]:
        got = _fails(["detector", "test", *argv, "--project", tmp_path / "p"], capsys, warnings=warned)
        assert needle in got, argv
    assert not (tmp_path / "p").exists()


def test_darknet_flags_are_aliases_and_display_flags_are_noted(tmp_path, capsys):
    imgs = _folder(tmp_path)
    image = imgs / f"{IMAGES[1]}.png"
    ref, _ = _run(["detector", "test", *_ttt4(), image, "--thresh", ".05", "--out", "", "--json"], capsys)
    out, err = _run(["detector", "test", *_ttt4(), image, "-thresh", ".05", "-dont_show", "-ext_output",
                     "-out", tmp_path / "result.json", "-out_filename", tmp_path / "boxes.jpg", "--json"], capsys)
    dets = json.loads(ref)["detections"]
    assert json.loads(out)["detections"] == dets and len(dets) > 1
    assert json.loads(out)["output"] == str(tmp_path / "boxes.jpg") and (tmp_path / "boxes.jpg").is_file()
    assert "note: -dont_show ignored: tritnet never opens a window" in err
    # AlexeyAB's -out file: frame_id, filename, objects with relative centre and size
    frames = json.loads((tmp_path / "result.json").read_text())
    assert [f["frame_id"] for f in frames] == [1] and frames[0]["filename"] == str(image)
    assert [(o["name"], o["confidence"]) for o in frames[0]["objects"]] == [(d["class"], d["probability"])
                                                                           for d in dets]
    assert frames[0]["objects"][0]["relative_coordinates"]["center_x"] == dets[0]["relative"]["x"]

    from tritnet.cli import build_parser
    p = build_parser()
    a = p.parse_args(["detector", "train", *map(str, _ttt4()[:2]), "-map", "-clear", "-gpus", "0,1", "-thresh", ".3",
                      "-dont_show"])
    assert (a.map, a.clear, a.gpus, a.thresh) == (True, True, "0,1", 0.3)
    a = p.parse_args(["detector", "map", *map(str, _ttt4()), "-thresh", ".1", "-iou_thresh", ".75", "-points", "11"])
    assert (a.thresh, a.iou_thresh) == (0.1, 0.75)
    a = p.parse_args(["detector", "valid", *map(str, _ttt4()), "-out", "mine_"])
    assert a.prefix == "mine_"
    a = p.parse_args(["classifier", "predict", "w.pt", "x.png", "-t", "3"])     # checked when it runs
    assert a.top == 3
    assert "note: -points ignored" in capsys.readouterr().err
    err = _fails(["detector", "map", *_ttt4(), "-iou_treshold", ".7"], capsys)
    assert "unrecognized arguments: -iou_treshold .7; did you mean --iou-thresh?" in err
    err = _fails(["detector", "train", *_ttt4()[:2], "-mapp"], capsys)
    assert "unrecognized argument: -mapp; did you mean --map?" in err
    # an option with an alias is named by its long form in errors
    assert "argument --thresh: must be a number between 0 and 1, got '2'" in _fails(
        ["detector", "test", *_ttt4(), image, "-thresh", "2"], capsys)


def _classifier_tnp(tmp_path, capsys):
    _run(["export", "resnet20", tmp_path / "r.tnp", "--random-weights"], capsys)
    return tmp_path / "r.tnp"


def test_classifiers_predict_many_images_and_save_with_save(tmp_path, capsys):
    """classifier predict (darknet order, a darknet cfg) and tritnet-rt run on a packed classifier."""
    z = np.load(REF / "cifar_minin" / "cifar_minin_20.npz")
    d = tmp_path / "cifar"
    d.mkdir()
    names = []
    for k in (0, 7):
        src = REF / "images" / "cifar10" / Path(str(z["image_paths"][k])).name
        (d / src.name).write_bytes(src.read_bytes())
        names.append(src.name)
    args = [REF / "cfg" / "cifar5_abs.data", REF / "cfg" / "cifar_minin_b1.cfg", DN / "weights" / "cifar_minin.weights"]
    single = []
    for n in sorted(names):
        out, _ = _run(["classifier", "predict", *args, d / n, "--json"], capsys)
        single.append(json.loads(out)["top"])
    out, err = _run(["classifier", "predict", *args, d, "--json", "--project", tmp_path / "runs"], capsys)
    recs = _lines(out)
    assert [r["top"] for r in recs] == single and [r["output"] for r in recs] == [None, None]
    assert not (tmp_path / "runs").exists()             # a classifier draws nothing unless --save
    out, _ = _run(["classifier", "predict", *args, d, "--save", "-t", "2", "--project", tmp_path / "runs"], capsys)
    assert sorted(p.name for p in (tmp_path / "runs" / "predict").iterdir()) == sorted(names)
    assert [ln for ln in out.splitlines() if "Predicted in" in ln][0].startswith(str(d / sorted(names)[0]))
    assert len([ln for ln in out.splitlines() if "%: " in ln]) == 4    # -t 2 on two images

    tnp = _classifier_tnp(tmp_path, capsys)
    out, err = _run(["run", tnp, d, "--json", "--top", "3", "--isa", "serial"], capsys, cli=rt_main)
    import tritnet_rt
    net = tritnet_rt.load(tnp)
    assert [r["top"] for r in _lines(out)] == [net.classify(str(d / n), 3) for n in sorted(names)]
    out, err = _run(["run", tnp, *[d / n for n in names], "--save", "--top", "1", "--project", tmp_path / "rt"],
                    capsys, cli=rt_main)
    with Image.open(tmp_path / "rt" / "predict" / names[0]) as im, Image.open(d / names[0]) as orig:
        drawn, orig = np.asarray(im.convert("RGB")), np.asarray(orig.convert("RGB"))
    assert drawn.shape == orig.shape == (32, 32, 3)
    assert (drawn[:12] != orig[:12]).any() and (drawn[:12] == 0).any()     # the label on its black band, on top
    assert (drawn[20:] == orig[20:]).all()                                  # the rest of the picture untouched
    assert "2 images in " in err and "frames per second" in err


def _video(path: Path, frames: int = 5):
    cv2 = pytest.importorskip("cv2")
    im = np.asarray(Image.open(SHARED / "bccd" / "JPEGImages" / "BloodImage_00007.jpg").convert("RGB")
                    .resize((320, 240)))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(frames):
        w.write(np.ascontiguousarray(np.roll(im, 8 * i, axis=1)[:, :, ::-1]))
    w.release()
    return cv2


def test_runtime_reads_a_video_frame_by_frame_and_writes_the_annotated_video(tmp_path, capsys):
    cv2 = _video(tmp_path / "clip.mp4")
    _run(["export", REF / "cfg" / "ttt4_b1.cfg", tmp_path / "d.tnp", "--weights",
          DN / "weights" / "ttt4_minloss.weights", "--method", "none"], capsys)
    for cli in (main, rt_main):
        proj = tmp_path / ("a" if cli is main else "b")
        out, err = _run(["run", tmp_path / "d.tnp", tmp_path / "clip.mp4", "--frames", 3, "--thresh", ".01",
                         "--json", "--project", proj], capsys, cli=cli)
        recs = _lines(out)
        assert [(r["image"], r["frame"]) for r in recs] == [(f"{tmp_path / 'clip.mp4'}#{i}", i) for i in range(3)]
        assert {r["output"] for r in recs} == {str(proj / "predict" / "clip.mp4")}
        cap = cv2.VideoCapture(str(proj / "predict" / "clip.mp4"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320
        cap.release()
        assert "3 pictures in " in err and "frames per second" in err
    # the frames are the video's own: frame 0 through the runtime directly gives the same detections
    import tritnet_rt
    cap = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    ok, bgr = cap.read()
    cap.release()
    want = [d.to_dict() for d in tritnet_rt.load(tmp_path / "d.tnp").detect(bgr[:, :, ::-1].copy(), .01, .45)]
    assert recs[0]["detections"] == want and want
    # a camera that is not there: one line
    assert "camera 9: OpenCV cannot open it" in _fails(["run", tmp_path / "d.tnp", "-c", "9"], capsys)
    assert "camera 9: OpenCV cannot open it" in _fails(["run", tmp_path / "d.tnp", "9"], capsys, cli=rt_main,
                                                       prog="tritnet-rt")


def test_without_opencv_a_video_is_one_clear_line(tmp_path, capsys):
    tnp = _classifier_tnp(tmp_path, capsys)
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 64)
    code = ("import sys; sys.modules['cv2'] = None; from tritnet_rt.cli import main; "
            f"sys.exit(main(['run', {str(tnp)!r}, {str(tmp_path / 'clip.mp4')!r}, '--project', {str(tmp_path)!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == (f"tritnet-rt: error: {tmp_path / 'clip.mp4'}: reading videos and cameras needs OpenCV, "
                        "which is not installed: python -m pip install opencv-python-headless (or the package's "
                        "`video` extra)\n")
    # detector test reads no video at all, and says which verb does
    err = _fails(["detector", "test", *_ttt4(), tmp_path / "clip.mp4"], capsys)
    assert "a video; videos and cameras are read by `tritnet run`" in err


def test_run_unknown_option_hints_the_closest(tmp_path, capsys):
    tnp = _classifier_tnp(tmp_path, capsys)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    err = _fails(["run", tnp, tmp_path / "x.png", "--thersh", ".3"], capsys, cli=rt_main, prog="tritnet-rt")
    assert "unrecognized arguments: --thersh .3; did you mean --thresh?" in err
    err = _fails(["run", tnp, tmp_path / "x.png", "--jsn"], capsys)
    assert "did you mean --json?" in err


def test_classifier_predict_of_a_checkpoint_on_a_folder_matches_one_image_at_a_time(tmp_path, capsys):
    import tritnet
    from tritnet.models import model_checkpoint, save_atomic
    names = [f"c{i}" for i in range(10)]
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    save_atomic(model_checkpoint(tritnet.create_model("resnet20"), class_names=names), tmp_path / "c.pt")
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(d / f"{i}.png")
    (d / "readme.txt").write_text("three random pictures\n")          # a .txt inside a folder is not a list
    single = [json.loads(_run(["classifier", "predict", tmp_path / "c.pt", d / f"{i}.png", "--json"], capsys)[0])
              for i in range(3)]
    out, err = _run(["classifier", "predict", tmp_path / "c.pt", d, "--json", "--top", "5"], capsys)
    assert [r["top"] for r in _lines(out)] == [s["top"] for s in single]
    assert all(t["class"] in names for s in single for t in s["top"])
    assert f"warning: {d / 'readme.txt'}: not an image (.txt); skipped" in err


def test_runtime_activations_option_runs_ternary_convs_on_float_activations(tmp_path, capsys):
    """`--activations float`: the ternary convs' float path (the library's Net(pm, activations="float")), whose
    probabilities are not the int8 path's; `time` reports the mode."""
    import tritnet_rt
    _run(["export", "resnet20", tmp_path / "r.tnp", "--random-weights", "--method", "twn"], capsys)
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    tops = {}
    for mode in ("int8", "float"):
        out, _ = _run(["run", tmp_path / "r.tnp", tmp_path / "x.png", "--json", "--activations", mode], capsys,
                      cli=rt_main)
        tops[mode] = _lines(out)[0]["top"]
        assert tops[mode] == tritnet_rt.load(tmp_path / "r.tnp", activations=mode).classify(str(tmp_path / "x.png"), 5)
    assert [t["probability"] for t in tops["int8"]] != [t["probability"] for t in tops["float"]]
    out, _ = _run(["time", tmp_path / "r.tnp", "--activations", "float", "--repeat", 2, "--json"], capsys, cli=rt_main)
    assert json.loads(out)["activations"] == "float"

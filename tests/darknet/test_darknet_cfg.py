"""tritnet.darknet.cfg / shapes: parsing, defaults, errors with file:line, shapes, counts, round trips."""
import json
import re
import warnings

import pytest

from tritnet.darknet import (CfgError, CfgWarning, Section, count_params, dump_cfg, infer_layers, layer_table,
                             parse_cfg, parse_cfg_string, set_ternary, ternary_layers)

NET = """
[net]
width=32
height=32
channels=3
"""


# Warnings the shared cfgs give, by design (file stem -> the lines warned about)
EXPECTED_WARNINGS = {
    "ttt4": [84],                          # 10 anchors for num=1: the heap overflow the reference README describes
    "efficientnet_b0-twn": [16, 17, 27, 28],   # [net] cutmix, mosaic (AlexeyAB's keys), momentum and decay twice
}


def _all_cfgs(root):
    """Every cfg in the shared data, both dialects."""
    return sorted(p for p in list((root / "cfg").glob("*.cfg")) + list((root / "weights").glob("*.cfg"))
                  + list((root / "reference" / "cfg").glob("*.cfg")))


def test_the_dialect_is_decided_by_the_file_and_can_be_given(darknet_data):
    """yolov4-tiny is AlexeyAB's (its route groups); efficientnet_b0-twn is darknetTWN's, read in the pjreddie
    dialect; a given dialect wins, and then no key is called ignored that the dialect reads."""
    y4 = parse_cfg(darknet_data / "cfg" / "yolov4-tiny.cfg")
    assert y4.dialect == "alexeyab" and y4.dialect_reason.endswith("[route] groups=2 at " +
                                                                  str(darknet_data / "cfg" / "yolov4-tiny.cfg:60"))
    assert all(s.dialect == "alexeyab" for s in y4)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        eff = parse_cfg(darknet_data / "cfg" / "efficientnet_b0-twn.cfg")
    assert eff.dialect == "pjreddie" and "efficientnet_b0-twn.cfg:87" not in " ".join(str(w.message) for w in rec)
    assert "[net]: unknown key 'mosaic' (pjreddie's darknet ignores it: 'Unused field'; AlexeyAB's darknet reads " \
           "it (--dialect alexeyab))" in str(rec[1].message)
    assert parse_cfg(darknet_data / "cfg" / "yolov3-tiny.cfg").dialect == "pjreddie"
    # given: yolov4-tiny as pjreddie's darknet reads it (the 6,256,350 parameters and its warnings)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        as_pj = parse_cfg(darknet_data / "cfg" / "yolov4-tiny.cfg", dialect="pjreddie")
    assert as_pj.dialect_reason == "given" and count_params(as_pj) == 6_256_350
    msgs = [str(w.message) for w in rec]
    assert "yolov4-tiny.cfg:60: [route]: unknown key 'groups' (pjreddie's darknet ignores it: 'Unused field'; " \
           "AlexeyAB's darknet reads it (--dialect alexeyab))" in msgs[0]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert parse_cfg(darknet_data / "cfg" / "efficientnet_b0-twn.cfg", dialect="alexeyab").dialect == "alexeyab"
    assert not any("cutmix" in str(w.message) or "mosaic" in str(w.message) for w in rec)
    with pytest.raises(ValueError, match="unknown darknet dialect 'darknet'"):
        parse_cfg(darknet_data / "cfg" / "yolov3-tiny.cfg", dialect="darknet")


@pytest.mark.parametrize("body,dialect,why", [
    ("[convolutional]\nfilters=3\n[route]\nlayers=-1\ngroups=3\ngroup_id=1\n", "alexeyab",
     "[route] groups=3 at x.cfg:11"),
    ("[convolutional]\nfilters=3\n[sam]\nfrom=-1\n", "alexeyab", "[sam] at x.cfg:9"),
    ("[convolutional]\nactivation=mish\n", "alexeyab", "[convolutional] activation=mish at x.cfg:8"),
    ("[convolutional]\nfilters=3\n[shortcut]\nfrom=-1,0\n", "alexeyab", "[shortcut] from=-1,0 at x.cfg:10"),
    ("[convolutional]\nfilters=3\n[shortcut]\nfrom=-1\nactivation=swish\n", "alexeyab",
     "[shortcut] activation=swish at x.cfg:11"),
    ("[convolutional]\nactivation=swish\nternary=1\n", "pjreddie", None),      # darknetTWN reads both
    ("[convolutional]\nfilters=3\n[avgpool]\n[scale_channels]\nfrom=0\n", "pjreddie", None),
    ("[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nscale_x_y=1.1\n", "pjreddie", None),
    ("[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nnms_kind=greedynms\n", "alexeyab",
     "[yolo] nms_kind=greedynms at x.cfg:13"),
])
def test_detect_dialect_names_the_first_alexeyab_feature(body, dialect, why):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CfgWarning)
        cfg = parse_cfg_string(NET.replace("channels=3", "channels=3\nmosaic=1") + body, path="x.cfg")
    assert cfg.dialect == dialect                        # [net] mosaic=1 (AlexeyAB's) does not decide
    assert cfg.dialect_reason == (why or "nothing in its layers is AlexeyAB's own")


def test_dialect_defaults_and_keys():
    """Each dialect's defaults: dropout .5/.2, yolo max 90/200, adam eps 1e-7/1e-6; keys only one reads."""
    text = NET + "[dropout]\n[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\n"
    pj, ab = parse_cfg_string(text), parse_cfg_string(text, dialect="alexeyab")
    assert (pj[1].param("probability"), ab[1].param("probability")) == (0.5, 0.2)
    assert (pj[3].param("max"), ab[3].param("max")) == (90, 200)
    assert (pj[0].param("eps"), ab[0].param("eps")) == (1e-7, 1e-6)
    assert ab[3].param("nms_kind") == "default" and ab[3].param("beta_nms") == 0.6
    with pytest.raises(KeyError, match="pjreddie's darknet does not read 'nms_kind'"):
        pj[3].param("nms_kind")
    assert pj[2].read("numload") == 0 and ab[2].read("numload") == 0       # numload: pjreddie's key only
    assert ab[2].param("ternary") == 0                                      # the project's key, in both dialects
    with pytest.warns(CfgWarning, match=r"x.cfg:9: \[shortcut\]: unknown key 'alpha' \(AlexeyAB's darknet ignores it: "
                                        r"'Unused field'; pjreddie's darknet reads it \(--dialect pjreddie\)\)"):
        parse_cfg_string(NET + "[convolutional]\n[shortcut]\nfrom=-1\nalpha=.5\n", path="x.cfg", dialect="alexeyab")


# ---- real files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,count", [
    ("yolov2-voc", 50_676_061), ("yolov3-voc", 61_678_657), ("yolov2-tiny-voc", 15_867_885),
    ("yolov3-tiny", 8_858_734), ("ttt5_224_160", 4_373_741), ("ttt5_pre", 5_301_824),
    ("yolov4-tiny", 6_062_814), ("efficientnet_b0-twn", 4_345_615)])
@pytest.mark.filterwarnings("ignore::tritnet.darknet.CfgWarning")     # efficientnet's [net] cutmix, mosaic...
def test_param_counts_darknet_implies(darknet_data, name, count):
    assert count_params(parse_cfg(darknet_data / "cfg" / f"{name}.cfg")) == count


def test_every_shared_cfg_parses(darknet_data):
    cfgs = _all_cfgs(darknet_data)
    assert len(cfgs) >= 24
    for p in cfgs:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            cfg = parse_cfg(p)
        msgs = [str(w.message) for w in rec]
        lines = EXPECTED_WARNINGS.get(p.stem, [])
        assert [m.split(":")[1] for m in msgs] == [str(n) for n in lines], (p, msgs)
        assert cfg.net.type == "net" and len(cfg) > 2
        assert cfg.dialect == ("alexeyab" if p.stem == "yolov4-tiny" else "pjreddie")


def test_staged_cfgs_keep_the_network(darknet_data):
    # M0..M3 differ from the original only by ternary flags and training keys
    for base, stages in (("yolov2-voc", "0123"), ("yolov3-voc", "012")):
        ref = infer_layers(parse_cfg(darknet_data / "cfg" / f"{base}.cfg"))
        for m in stages:
            cfg = parse_cfg(darknet_data / "cfg" / f"{base}_M{m}.cfg")
            got = infer_layers(cfg)
            assert [(i.type, i.out_shape, i.n_params) for i in got] == [(i.type, i.out_shape, i.n_params) for i in ref]
    m3 = parse_cfg(darknet_data / "cfg" / "yolov2-voc_M3.cfg")
    convs = [i.index for i in infer_layers(m3) if i.type == "convolutional"]
    assert ternary_layers(m3) == convs  # full ternary, the 1x1 detection head included
    m0 = parse_cfg(darknet_data / "cfg" / "yolov2-voc_M0.cfg")
    assert ternary_layers(m0) == [23, 24, 26, 29]


def test_set_ternary_writes_the_next_stage(darknet_data):
    m0 = parse_cfg(darknet_data / "cfg" / "yolov3-tiny-voc_M0.cfg")
    for m in "123":
        target = parse_cfg(darknet_data / "cfg" / f"yolov3-tiny-voc_M{m}.cfg")
        stage = m0.copy()
        set_ternary(stage, on=False)
        set_ternary(stage, ternary_layers(target))
        again = parse_cfg_string(dump_cfg(stage))
        assert ternary_layers(again) == ternary_layers(target)
        assert [[(o.key, o.value) for o in s.options] for s in again[1:]] == \
            [[(o.key, o.value) for o in s.options] for s in target[1:]]
    assert ternary_layers(m0) == [14, 15, 18, 21, 22]  # the copies did not touch M0


@pytest.mark.parametrize("tag,cfgname", [
    ("reference/ttt4/ttt4", "reference/cfg/ttt4_b1.cfg"),
    ("reference/cifar_minin/cifar_minin_20", "reference/cfg/cifar_minin_b1.cfg"),
    ("reference/yolov2-tiny-voc_random_seed0/yolov2-tiny-voc_random_seed0", "cfg/yolov2-tiny-voc.cfg"),
    ("reference/yolov3-tiny_random_seed0/yolov3-tiny_random_seed0", "cfg/yolov3-tiny.cfg"),
    # AlexeyAB's darknet and darknetTWN: route groups, depthwise convs, scale_channels, dropout, softmax
    ("reference-alexeyab/yolov4-tiny_random_seed0/yolov4-tiny_random_seed0", "cfg/yolov4-tiny.cfg"),
    ("reference-alexeyab/efficientnet_b0-twn_random_seed0_float/efficientnet_b0-twn_random_seed0_float",
     "cfg/efficientnet_b0-twn.cfg"),
    ("reference-alexeyab/yolov2-voc_M3_random_seed0_float/yolov2-voc_M3_random_seed0_float", "cfg/yolov2-voc_M3.cfg"),
    ("reference-alexeyab/yolov3-tiny-voc_M3_random_seed0_float/yolov3-tiny-voc_M3_random_seed0_float",
     "cfg/yolov3-tiny-voc_M3.cfg")])
@pytest.mark.filterwarnings("ignore::tritnet.darknet.CfgWarning")
def test_shapes_match_what_darknet_built(darknet_data, tag, cfgname):
    """The reference summaries hold darknet's own layer structs (w, h, c, out_*, n, size, pad, nweights...)."""
    layers = json.loads((darknet_data / f"{tag}__summary.json").read_text())["layers"]
    infos = infer_layers(parse_cfg(darknet_data / cfgname))
    assert len(infos) == len(layers)
    for info, ref in zip(infos, layers):
        assert info.type == ref["type"].lower() or (info.type, ref["type"]) == ("convolutional", "CONVOLUTIONAL")
        assert info.out_shape == (ref["out_c"], ref["out_h"], ref["out_w"]), info.index
        assert (info.inputs, info.outputs) == (ref["inputs"], ref["outputs"]), info.index
        if info.type in ("convolutional", "maxpool", "upsample", "yolo", "region", "avgpool"):
            assert info.in_shape == (ref["c"], ref["h"], ref["w"]), info.index
        a = info.attrs
        if info.type == "convolutional":
            assert (a["filters"], a["size"], a["stride"], a["padding"], a["groups"], a["nweights"]) == (
                ref["n"], ref["size"], ref["stride"], ref["pad"], ref["groups"], ref["nweights"])
            assert a["batch_normalize"] == bool(ref["batch_normalize"])
            assert a["activation"] == ref["activation"].lower()
        if info.type == "maxpool":
            assert (a["size"], a["stride"], a["padding"]) == (ref["size"], ref["stride"], ref["pad"])
        if info.type == "yolo":
            assert (len(a["mask"]), a["num"], a["classes"]) == (ref["n"], ref["total"], ref["classes"])
        if info.type == "region":
            assert (a["num"], a["classes"], a["coords"], a["softmax"]) == (
                ref["n"], ref["classes"], ref["coords"], bool(ref["softmax"]))
        if info.type == "route" and "groups" in a:
            assert a["groups"] == ref["groups"]


def test_layer_table_yolov4_tiny(darknet_data):
    """AlexeyAB's numbers: 6,062,814 parameters (the official .weights), route groups printed as group_id/groups."""
    t = layer_table(parse_cfg(darknet_data / "cfg" / "yolov4-tiny.cfg"))
    assert t.total_params == 6_062_814 and round(t.total_bflops, 3) == 6.908   # AlexeyAB prints 6.910 with its route
    r = t.rows[3]
    assert (r.type, r.note, r.output) == ("route", "2  1/2", (32, 104, 104))
    assert "    3 route 2  1/2" in str(t) and "Total: 6062814 params" in str(t)


def test_forced_dialects_refuse_what_that_darknet_lacks():
    base = NET.lstrip("\n")
    with pytest.raises(CfgError, match=r"^x.cfg:6: \[sam\]: pjreddie's darknet does not know this section \('Type not "
                                       r"recognized'\); AlexeyAB's darknet reads it \(--dialect alexeyab\)$"):
        parse_cfg_string(base + "[convolutional]\n[sam]\nfrom=-1\n", path="x.cfg", dialect="pjreddie")
    with pytest.raises(CfgError, match=r"x.cfg:5: \[region\]: AlexeyAB's \[region\] is not pjreddie's"):
        parse_cfg_string(base + "[region]\n", path="x.cfg", dialect="alexeyab")
    with pytest.raises(CfgError, match=r"x.cfg:5: section \[iseg\] is a layer of pjreddie's darknet that tritnet "):
        parse_cfg_string(base + "[iseg]\n", path="x.cfg", dialect="pjreddie")
    with pytest.raises(CfgError, match=r"x.cfg:6: \[activation\]: activation=swish: darknetTWN computes swish only in "
                                       r"\[convolutional\] layers"):
        parse_cfg_string(base + "[activation]\nactivation=swish\n", path="x.cfg", dialect="pjreddie")
    with pytest.raises(CfgError, match=r"x.cfg:5: .*'sgdr' is not a learning-rate policy"):
        parse_cfg_string(base.replace("channels=3", "channels=3\npolicy=sgdr") + "[avgpool]\n", path="x.cfg")
    cfg = parse_cfg_string(base.replace("channels=3", "channels=3\npolicy=sgdr") + "[avgpool]\n", dialect="alexeyab")
    assert cfg.net.param("policy") == "sgdr"


def test_layer_table_ttt5(darknet_data):
    t = layer_table(parse_cfg(darknet_data / "cfg" / "ttt5_224_160.cfg"))
    assert t.total_params == 4_373_741
    assert round(t.total_bflops, 3) == 0.457  # darknet_ttt netdump: 0.457 BFLOPs
    r = t.rows[8]
    assert (r.type, r.filters, r.size, r.stride, r.input, r.output) == ("conv", 256, 1, 1, (512, 5, 7), (256, 5, 7))
    assert r.bflops == pytest.approx(2 * 256 * 512 * 35 / 1e9)
    assert [r.type for r in t.rows[:4]] == ["conv", "max", "conv", "max"]
    assert t.rows[11].type == "detection" and not any(r.ternary for r in t.rows)
    text = str(t)
    assert "  224 x 160 x   3   ->   224 x 160 x  16" in text and "Total: 4373741 params" in text


def test_dump_parse_roundtrip_every_cfg(darknet_data):
    for p in _all_cfgs(darknet_data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)
            a = parse_cfg(p)
            b = parse_cfg_string(dump_cfg(a), path="dumped.cfg")
        assert [(s.type, s.header, [(o.key, o.value) for o in s.options]) for s in a] == \
               [(s.type, s.header, [(o.key, o.value) for o in s.options]) for s in b]
        ia, ib = infer_layers(a), infer_layers(b)
        assert [(i.in_shape, i.out_shape, i.n_params, i.attrs) for i in ia] == \
               [(i.in_shape, i.out_shape, i.n_params, i.attrs) for i in ib]
        assert dump_cfg(b) == dump_cfg(a)


# ---- syntax ------------------------------------------------------------------------------------------------
def test_syntax_comments_whitespace_aliases_lines(write_cfg):
    p = write_cfg(NET + """
        # comment
        ; also a comment
        [conv]
          filters = 8     
        size	=3
        pad=1
        activation = leaky

        [max]
        size=2
        stride=2
        [soft]
        [cost]
        """)
    cfg = parse_cfg(p)
    assert [s.type for s in cfg] == ["net", "convolutional", "maxpool", "softmax", "cost"]
    assert [s.header for s in cfg] == ["net", "conv", "max", "soft", "cost"]
    conv = cfg[1]
    assert conv.line == 8 and conv.line_of("filters") == 9 and conv.line_of("activation") == 12
    assert conv.get("filters") == "8" and conv.param("filters") == 8
    assert conv.path == str(p) and cfg.path == str(p)
    assert conv.param("stride") == 1 and conv.param("activation") == "leaky" and conv.param("ternary") == 0
    info = infer_layers(cfg)
    assert info[0].out_shape == (8, 32, 32) and info[1].out_shape == (8, 16, 16)
    assert info[2].outputs == 8 * 16 * 16 and info[3].out_shape == (0, 0, 0)


def test_anchor_values_lose_their_spaces():
    cfg = parse_cfg_string(NET + """
        [convolutional]
        filters=18
        size=1
        activation=linear
        [yolo]
        mask = 0, 1,2
        anchors = 10,14,  23,27,  37,58
        classes=1
        num=3
        """.replace("        ", ""))
    y = cfg[2]
    assert y.get("anchors") == "10,14,23,27,37,58"
    assert y.param("mask") == [0, 1, 2] and y.param("anchors") == [10, 14, 23, 27, 37, 58]


def test_defaults_follow_darknet():
    cfg = parse_cfg_string(NET + "[convolutional]\n[maxpool]\nstride=2\n[maxpool]\nsize=3\n[region]\n"
                           "[upsample]\n[yolo]\n", validate=False)  # shapes do not fit; only defaults are read
    net, conv, mp1, mp2 = cfg[0], cfg[1], cfg[2], cfg[3]
    assert (net.param("batch"), net.param("subdivisions"), net.param("decay"), net.param("policy")) == (
        1, 1, 0.0001, "constant")
    assert net.param("inputs") == 32 * 32 * 3 and net.param("max_crop") == 64 and net.param("power") == 4
    p = conv.params()
    assert (p["filters"], p["size"], p["stride"], p["pad"], p["padding"], p["groups"], p["activation"],
            p["batch_normalize"], p["ternary"]) == (1, 1, 1, 0, 0, 1, "logistic", 0, 0)
    assert (mp1.param("size"), mp1.param("padding")) == (2, 1)   # size defaults to stride, padding to size-1
    assert (mp2.param("stride"), mp2.param("padding")) == (1, 2)
    r = cfg[4].params()
    assert (r["coords"], r["classes"], r["num"], r["max"], r["thresh"], r["jitter"]) == (4, 20, 1, 30, 0.5, 0.2)
    assert cfg[5].param("stride") == 2 and cfg[6].param("max") == 90 and cfg[6].param("ignore_thresh") == 0.5
    with pytest.raises(KeyError):
        conv.param("output")


def test_first_key_wins_and_duplicates_warn():
    with pytest.warns(CfgWarning, match=r"t\.cfg:8: .*duplicate key 'filters'.*line 7"):
        cfg = parse_cfg_string(NET + "[convolutional]\nfilters=4\nfilters=9\n", path="t.cfg")
    assert cfg[1].param("filters") == 4


def test_unknown_key_warns_with_file_and_line(write_cfg):
    p = write_cfg(NET + "[convolutional]\nfilters=4\nfliters=9\n")
    with pytest.warns(CfgWarning, match=re.escape(f"{p}:7:") + r".*unknown key 'fliters'"):
        parse_cfg(p)


def test_ternary_on_connected_is_an_unknown_key():
    with pytest.warns(CfgWarning, match=r":8: .*unknown key 'ternary'"):
        parse_cfg_string(NET + "[connected]\noutput=4\nternary=1\n")


def test_crlf_warns_but_parses():
    with pytest.warns(CfgWarning, match="CRLF"):
        cfg = parse_cfg_string((NET + "[convolutional]\nactivation=leaky\n").replace("\n", "\r\n"))
    assert cfg[1].param("activation") == "leaky"


# ---- errors ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,line,pattern", [
    ("[convolutional]\nfilters=abc\n", 7, r"bad value for filters: 'abc' is not an integer"),
    ("[convolutional]\nfilters=16.0\n", 7, r"not an integer"),
    ("[convolutional]\nactivation=swishy\n", 7, r"bad value for activation: 'swishy' is not an activation of "
                                                 r"pjreddie's darknet \(logistic, .*, swish\)"),
    ("[activation]\nactivation=swish\n", 7, r"activation=swish: AlexeyAB's darknet computes swish only in "
                                            r"\[convolutional\] and \[shortcut\] layers "
                                            r"\(elsewhere its activate\(\) returns 0\)"),
    ("[activation]\nactivation=mish\n", 7, r"AlexeyAB's darknet computes mish only in \[convolutional\] and "
                                           r"\[shortcut\] layers"),
    ("[maxpool]\nsize=2\nstride=x\n", 8, r"bad value for stride"),
    ("[foo]\n", 6, r"unknown section \[foo\]"),
    ("[Convolutional]\n", 6, r"unknown section"),
    ("[lstm]\n", 6, r"does not support"),
    ("[convolutional]\nbinary=1\n", 7, r"binary=1 .* not supported"),
    ("[convolutional]\nxnor=1\n", 7, r"xnor=1 .* not supported"),
    ("[convolutional]\nsize=3\ndilation=2\n", 8, r"dilation=2 with padding 0: AlexeyAB's im2col fills 28x28 "
                                                r"positions of a 30x30 output"),
    ("[convolutional]\nantialiasing=1\n", 7, r"antialiasing=1 \(anti-aliased \(blurred\) strides\) is not supported"),
    ("[convolutional]\nshare_index=-1\n", 7, r"share_index=-1 \(shared weights\) is not supported"),
    ("[maxpool]\nmaxpool_depth=1\n", 7, r"maxpool_depth=1 \(max over channels\) is not supported"),
    ("[implicit]\n", 6, r"section \[implicit\] is a layer of AlexeyAB's darknet that tritnet does not support"),
    ("[convolutional]\nfilters=4\n[route]\nlayers=-1\ngroups=3\n", 10, r"groups=3 does not divide the 4 channels"),
    ("[convolutional]\nfilters=4\n[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", 11,
     r"group_id=2 must be below groups=2"),
    ("[convolutional]\nfilters=4\n[maxpool]\nsize=2\nstride=2\n[shortcut]\nfrom=-2,-1\n", 12,
     r"from: layer 0 \(32x32x4\) and the previous layer \(16x16x4\) differ in width or height"),
    ("[convolutional]\nfilters=4\n[shortcut]\nfrom=-1\nweights_type=per_pixel\n", 10,
     r"bad value for weights_type: 'per_pixel' is not one of none, per_feature, per_layer, per_channel"),
    ("[convolutional]\nfilters=4\n[sam]\nfrom=0\n[sam]\nfrom=-3\n", 11, r"does not exist"),
    ("[convolutional]\nfilters=4\n[avgpool]\n[convolutional]\nfilters=3\nsize=1\n[scale_channels]\nfrom=0\n",
     13, r"from: layer 0 \(32x32x4\) is scaled per channel: the previous layer must output 1x1x4, not 1x1x3"),
    ("[convolutional]\nfilters=4\n[scale_channels]\nfrom=0\nscale_wh=1\n", 10,
     r"scale_wh=1 scales layer 0 \(32x32x4\) per position: the previous layer must output 32x32x1"),
    ("[convolutional]\nfilters=4\n[maxpool]\nsize=2\nstride=2\n[sam]\nfrom=0\n", 12,
     r"from: layer 0 \(32x32x4\) and the previous layer \(16x16x4\) must have the same shape"),
    ("[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nnms_kind=soft\n", 12,
     r"bad value for nms_kind: 'soft' is not one of default, greedynms, diounms"),
    ("[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nembedding_layer=-2\nnew_coords=1\n", 12,
     r"embedding_layer=-2 \(tracking embeddings\) is not supported"),
    ("[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nnew_coords=2\n", 12,
     r"new_coords=2 is out of range: tritnet accepts 0 to 1"),
    ("[local_avgpool]\nsize=40\nstride=2\npadding=0\n", 6, r"a 40x40/2 local_avgpool \(padding 0\) does not fit"),
    ("[convolutional]\nsize=34\nstride_x=2\n", 6, r"a 34x34/2x1 conv \(padding 0\) does not fit a 32x32 input"),
    ("[convolutional]\nternary=2\n", 7, r"ternary must be 0 or 1"),
    ("[convolutional]\nfilters=4\n[route]\nlayers=-2\n", 9, r"layer -2 \(absolute -1\) does not exist"),
    ("[convolutional]\nfilters=4\n[route]\nlayers=1\n", 9, r"does not exist before layer 1"),
    ("[convolutional]\nfilters=4\n[route]\n", 8, r"needs layers="),
    ("[convolutional]\n[maxpool]\nstride=2\n[route]\nlayers=0,1\n", 10, r"width and height differ"),
    ("[convolutional]\n[shortcut]\nfrom=-5\n", 8, r"does not exist"),
    ("[convolutional]\nfilters=18\nsize=1\n[yolo]\nclasses=2\nnum=3\n", 9, r"len\(mask\)\*\(classes\+5\) = 21"),
    ("[convolutional]\nfilters=18\nsize=1\n[yolo]\nclasses=1\nmask=0,3\nnum=3\n", 11, r"mask value 3"),
    ("[convolutional]\nfilters=6\n[region]\nclasses=2\n", 8, r"has 6 channels but num\*\(classes\+coords\+1\) = 7"),
    ("[convolutional]\nsize=65\nstride=1\n", 6, r"does not fit a 32x32 input"),
    ("[maxpool]\nsize=40\nstride=2\npadding=0\n", 6, r"does not fit"),
    ("[convolutional]\ngroups=2\nfilters=4\n", 7, r"groups=2 must divide"),
    ("[reorg]\nstride=3\n", 7, r"divisible by 3"),
    ("[convolutional]\nfilters=6\n[reorg]\nstride=2\n", 9, r"channels divisible by 4, got 6"),
    ("[crop]\ncrop_height=40\ncrop_width=16\n", 7, r"a 16x40 crop does not fit the 32x32 input"),
    ("[maxpool]\nsize=2\nstride=3\n[upsample]\nstride=-2\n", 10, r"divisible by 2, got 11x11"),
    ("[softmax]\n[convolutional]\n", 7, r"must output an image"),
    ("[convolutional]\nfilters\n", 7, r"expected key=value"),
    ("[convolutional]\nfilters=\n", 7, r"expected key=value"),
    ("[convolutional\n", 6, r"bad section header"),
    ("[net]\n", 6, r"first section and appear only once"),
])
def test_errors_name_file_and_line(body, line, pattern):
    text = NET.lstrip("\n") + "\n" + body
    with pytest.raises(CfgError, match=rf"^x\.cfg:{line}: .*{pattern}") as e:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)
            parse_cfg_string(text, path="x.cfg")
    assert e.value.line == line and e.value.path == "x.cfg"
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("text,pattern", [
    ("", r"no sections"),
    ("batch=1\n", r"before the first \[section\]"),
    ("[convolutional]\n", r"first section must be \[net\]"),
    ("[net]\nwidth=2\n", r"no layers"),
    ("[net]\nbatch=1\n[convolutional]\n", r"No input parameters"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\npolicy=steps\nsteps=1,2\n[avgpool]\n", r"steps= and scales="),
    ("[net]\nwidth=8\nheight=8\nchannels=3\npolicy=step2\n[avgpool]\n", r"learning-rate policy"),
])
def test_structural_errors(text, pattern):
    with pytest.raises(CfgError, match=pattern):
        parse_cfg_string(text, path="y.cfg")


def test_unreadable_file(tmp_path):
    p = tmp_path / "bin.cfg"
    p.write_bytes(b"\xff\xfe\x00[net]")
    with pytest.raises(CfgError, match="not a text file"):
        parse_cfg(p)


# ---- shapes --------------------------------------------------------------------------------------------------
def test_conv_padding_and_stride_arithmetic():
    cfg = parse_cfg_string("[net]\nwidth=15\nheight=9\nchannels=4\n"
                           "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\ngroups=2\nbatch_normalize=1\n"
                           "[convolutional]\nfilters=5\nsize=3\nstride=1\npadding=0\n"
                           "[convolutional]\nfilters=2\nsize=4\nstride=1\npadding=2\npad=0\n")
    a, b, c = infer_layers(cfg)
    assert a.out_shape == (6, 5, 8) and a.attrs["padding"] == 1  # (9+2-3)/2+1, (15+2-3)/2+1
    assert a.n_params == 6 * 4 + 4 // 2 * 6 * 9                 # biases+BN triplet, weights c/groups*n*k*k
    assert a.bflops == (2.0 * 6 * 3 * 3 * 4 / 2 * 5 * 8) / 1e9
    assert b.out_shape == (5, 3, 6) and b.n_params == 5 + 6 * 5 * 9
    assert c.out_shape == (2, 4, 7)


def test_maxpool_route_reorg_upsample_shortcut_shapes():
    cfg = parse_cfg_string("[net]\nwidth=13\nheight=13\nchannels=8\n"
                           "[maxpool]\nsize=2\nstride=2\n"                 # 0: (13+1-2)/2+1 = 7
                           "[maxpool]\nsize=3\nstride=1\n"                 # 1: 7
                           "[upsample]\n"                                  # 2: 14
                           "[reorg]\nstride=2\n"                           # 3: 32x7x7
                           "[route]\nlayers=-1,1\n"                        # 4: 40x7x7
                           "[upsample]\nstride=-7\n"                       # 5: downsample to 1x1
                           "[shortcut]\nfrom=3\nactivation=leaky\n"        # 6: 7x7 -> 1x1: stride 7, ok
                           "[avgpool]\n[connected]\noutput=10\nbatch_normalize=1\n[dropout]\nprobability=.4\n"
                           "[softmax]\ngroups=2\n[cost]\ntype=masked\n")
    i = infer_layers(cfg)
    assert [x.out_shape for x in i[:7]] == [(8, 7, 7), (8, 7, 7), (8, 14, 14), (32, 7, 7), (40, 7, 7),
                                            (40, 1, 1), (40, 1, 1)]
    assert i[4].attrs["layers"] == [3, 1] and i[4].in_shape == (0, 0, 0) and i[4].outputs == 40 * 49
    assert i[6].attrs["from"] == 3 and i[6].attrs["activation"] == "leaky"
    assert i[8].in_shape == (40, 1, 1) and i[8].out_shape == (10, 1, 1)
    assert i[8].n_params == 10 + 40 * 10 + 30
    assert i[9].out_shape == (10, 1, 1) and i[10].out_shape == (0, 0, 0) and i[11].outputs == 10


def test_shortcut_needs_one_integer_scale():
    bad = ("[net]\nwidth=12\nheight=8\nchannels=2\n[convolutional]\nfilters=2\n[maxpool]\nsize=1\nstride=2\n"
           "[convolutional]\nfilters=2\nsize=3\n[shortcut]\nfrom=-2\n")   # 6x4 -> 4x2: w ratio 1, h ratio 2
    with pytest.raises(CfgError, match=r":14: .*integer scale"):
        parse_cfg_string(bad)


def test_reorg_reverse_and_extra():
    cfg = parse_cfg_string("[net]\nwidth=4\nheight=4\nchannels=8\n[reorg]\nstride=2\nreverse=1\n"
                           "[reorg]\nstride=1\nextra=5\n")
    a, b = infer_layers(cfg)
    assert a.out_shape == (2, 8, 8) and b.out_shape == (0, 0, 0) and b.outputs == 128 + 5


def test_anchor_count_warnings():
    text = NET + "[convolutional]\nfilters=7\nsize=1\n[region]\nclasses=2\nnum=1\nanchors=1,2,3,4\n"
    with pytest.warns(CfgWarning, match=r":12: .*4 anchor values for 1 anchors"):
        cfg = parse_cfg_string(text)
    assert infer_layers(cfg)[1].attrs["anchors"] == [1, 2]
    with pytest.warns(CfgWarning, match="rest at 0.5"):
        parse_cfg_string(text.replace("num=1\n", "num=2\n").replace("filters=7", "filters=14")
                         .replace("anchors=1,2,3,4", "anchors=1,2"))


# ---- sane limits: darknet would try to allocate these ------------------------------------------------------
@pytest.mark.parametrize("body,line,message", [
    ("[convolutional]\nfilters=1000000000\n", 7, "filters=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[convolutional]\nfilters=0\n", 7, "filters=0 is out of range: tritnet accepts 1 to 65536"),
    ("[convolutional]\nsize=100000\n", 7, "size=100000 is out of range: tritnet accepts 1 to 1024"),
    ("[convolutional]\nstride=0\n", 7, "stride=0 is out of range: tritnet accepts 1 to 16384"),
    ("[convolutional]\npadding=-1\n", 7, "padding=-1 is out of range: tritnet accepts 0 to 1024"),
    ("[convolutional]\ngroups=1000000000\n", 7, "groups=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[convolutional]\nfilters=4\nnumload=5\n", 8, "numload=5 is more than filters=4"),
    ("[convolutional]\nfilters=" + "9" * 30 + "\n", 7,
     "bad value for filters: '" + "9" * 30 + "' is not an integer"),
    ("[convolutional]\nfilters=" + "9" * 5000 + "\n", 7,
     "bad value for filters: '" + "9" * 40 + "...' is not an integer"),
    ("[convolutional]\nlearning_rate=1e999\n", 7, "bad value for learning_rate: '1e999' is not a finite number"),
    ("[maxpool]\nsize=100000\nstride=1\n", 7, "size=100000 is out of range: tritnet accepts 1 to 1024"),
    ("[maxpool]\nstride=100000\n", 7, "stride=100000 is out of range: tritnet accepts 1 to 16384"),
    ("[connected]\noutput=1000000000\n", 7, "output=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[region]\nclasses=1000000000\n", 7, "classes=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[region]\nnum=1000000000\n", 7, "num=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[region]\nanchors=1,1e999\n", 7,
     "bad value for anchors: '1,1e999' is not a comma-separated list of finite numbers"),
    ("[yolo]\nclasses=1000000000\n", 7, "classes=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[yolo]\nnum=1000000000\n", 7, "num=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[yolo]\nmax=1000000000\n", 7, "max=1000000000 is out of range: tritnet accepts 1 to 65536"),
    ("[upsample]\nstride=-100000\n", 7, "stride=-100000 is out of range: tritnet accepts -16384 to 16384"),
    ("[reorg]\nstride=100000\n", 7, "stride=100000 is out of range: tritnet accepts 1 to 16384"),
    ("[crop]\ncrop_width=100000\n", 7, "crop_width=100000 is out of range: tritnet accepts 1 to 16384"),
])
def test_values_beyond_sane_limits_name_file_and_line(body, line, message):
    text = NET.lstrip("\n") + "\n" + body
    with pytest.raises(CfgError) as e:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)
            parse_cfg_string(text, path="x.cfg")
    header = body.split("\n")[0]
    assert str(e.value) == f"x.cfg:{line}: {header}: {message}"


@pytest.mark.parametrize("key,value,limits", [
    ("width", "1000000000", "0 to 16384"), ("height", "-1", "0 to 16384"), ("channels", "1000000000", "0 to 65536"),
    ("inputs", "4294967296", "0 to 2147483648"), ("batch", "0", "1 to 65536"), ("subdivisions", "100000", "1 to 65536"),
    ("max_batches", "2147483648", "0 to 2147483647"), ("burn_in", "-1", "0 to 2147483647"),
])
def test_net_values_beyond_sane_limits_name_file_and_line(key, value, limits):
    text = f"[net]\n{key}={value}\nwidth=32\nheight=32\nchannels=3\n[convolutional]\n"   # the first value wins
    with pytest.raises(CfgError) as e:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)
            parse_cfg_string(text, path="n.cfg")
    assert str(e.value) == f"n.cfg:2: [net]: {key}={value} is out of range: tritnet accepts {limits}"


@pytest.mark.parametrize("text,line,message", [
    # two 1x1 convs of 32768 -> 32768 filters: 1,073,774,592 floats each, over 2^31 together
    ("[net]\nwidth=1\nheight=1\nchannels=32768\n[convolutional]\nfilters=32768\n[convolutional]\nfilters=32768\n",
     7, "[convolutional]: the network has 2,147,549,184 parameters up to this layer; tritnet refuses more than "
        "2,147,483,648 (8 GiB as float32)"),
    # 16384x16384x3 input + 16 such maps: 19 x 2^28 floats
    ("[net]\nwidth=16384\nheight=16384\nchannels=3\n[convolutional]\nfilters=16\nsize=3\npad=1\n",
     5, "[convolutional]: one 16384x16384x3 image needs 5,100,273,664 floats (19 GiB) in a forward pass up to this "
        "layer; tritnet refuses more than 2,147,483,648 (8 GiB)"),
    # a 1024 window pads every side by about 1024: input + output 2 x 416²·1024, padded copy 1439²·1024
    ("[net]\nwidth=416\nheight=416\nchannels=1024\n[maxpool]\nsize=1024\nstride=1\n",
     5, "[maxpool]: one 416x416x1024 image needs 2,474,836,992 floats (9.22 GiB) in a forward pass up to this "
        "layer; tritnet refuses more than 2,147,483,648 (8 GiB)"),
])
def test_networks_too_big_to_allocate_are_refused_before_allocating(text, line, message):
    with pytest.raises(CfgError) as e:
        parse_cfg_string(text, path="big.cfg")
    assert str(e.value) == f"big.cfg:{line}: {message}"


@pytest.mark.parametrize("name,line", [("yolov2-voc", 60), ("yolov3-voc", 92)])
def test_real_cfgs_load_up_to_2048_pixels_and_are_refused_at_4096(darknet_data, name, line):
    cfg = parse_cfg(darknet_data / "cfg" / f"{name}.cfg")
    for size in (608, 2048, 4096):
        cfg.net.set("width", size)
        cfg.net.set("height", size)
        if size < 4096:
            assert infer_layers(parse_cfg_string(dump_cfg(cfg)))[0].in_shape == (3, size, size)
    with pytest.raises(CfgError) as e:
        parse_cfg_string(dump_cfg(cfg), path=f"{name}.cfg")
    assert str(e.value) == (f"{name}.cfg:{line}: [convolutional]: one 4096x4096x3 image needs 2,197,815,296 floats "
                            f"(8.19 GiB) in a forward pass up to this layer; tritnet refuses more than 2,147,483,648 "
                            f"(8 GiB)")


# ---- editing -----------------------------------------------------------------------------------------------
def test_set_clear_ternary_and_dump():
    cfg = parse_cfg_string(NET + "[convolutional]\nfilters=4\n[maxpool]\n[convolutional]\nfilters=2\nternary=0\n")
    assert ternary_layers(cfg) == []
    assert set_ternary(cfg) == [0, 2]
    assert ternary_layers(cfg) == [0, 2] and cfg[3].get("ternary") == "1"
    assert [o.key for o in cfg[3].options] == ["filters", "ternary"]  # replaced in place, not appended
    set_ternary(cfg, [2], on=False)
    assert ternary_layers(cfg) == [0]
    with pytest.raises(ValueError, match="only exists in \\[convolutional\\]"):
        set_ternary(cfg, [1])
    with pytest.raises(IndexError):
        set_ternary(cfg, [3])
    cfg[1].ternary = False
    text = dump_cfg(cfg)
    assert text.startswith("[net]\nwidth=32\n") and "[convolutional]\nfilters=4\nternary=0\n" in text
    assert ternary_layers(parse_cfg_string(text)) == []


def test_section_set_and_remove():
    s = Section("convolutional")
    s.set("filters", 8)
    s.set("anchors", [1.5, 2])
    s.set("batch_normalize", True)
    assert s.get("anchors") == "1.5,2" and s.param("batch_normalize") == 1 and s.param("filters") == 8
    s.options.append(type(s.options[0])("filters", "9"))
    s.set("filters", 3)
    assert [o.key for o in s.options].count("filters") == 1 and s.param("filters") == 3
    s.remove("filters")
    assert "filters" not in s and s.param("filters") == 1
    with pytest.raises(ValueError):
        s.set("activation", "a=b")
    assert "[convolutional]" in dump_cfg([s], canonical=True)


def test_layer_features_name_what_goes_beyond_the_plain_layers(darknet_data):
    """What an exporter must know (or refuse) per layer; pjreddie's cfgs have none."""
    from tritnet.darknet import layer_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CfgWarning)
        feats = {p.stem: sorted({f for i in infer_layers(parse_cfg(p)) for f in layer_features(i)})
                 for p in (darknet_data / "cfg").glob("*.cfg")}
    assert feats.pop("yolov4-tiny") == ["batchnorm:alexeyab", "route:groups", "yolo:nms_kind", "yolo:scale_x_y"]
    assert feats.pop("efficientnet_b0-twn") == ["activation:swish", "conv:groups", "section:scale_channels"]
    assert all(not f for f in feats.values()), feats
    cfg = parse_cfg_string(NET + "[convolutional]\nfilters=4\nstride_x=2\ndilation=2\nsize=3\npad=1\nactivation=mish\n"
                           "[maxpool]\nstride_y=2\nsize=2\n[shortcut]\nfrom=-1,-1\nweights_type=per_feature\n"
                           "[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nclasses=1\nnew_coords=1\n[batchnorm]\n"
                           "[sam]\nfrom=-1\n[local_avgpool]\n[empty]\n")
    assert [layer_features(i) for i in infer_layers(cfg)] == [
        ["activation:mish", "conv:dilation", "conv:strides"], ["maxpool:strides"],
        ["shortcut:sources", "shortcut:weights"], [], ["yolo:new_coords"],
        ["batchnorm:alexeyab", "batchnorm:biases"], ["section:sam"], ["section:local_avgpool"], ["section:empty"]]

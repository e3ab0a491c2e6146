"""Bad inspection images: refused with a reason (never decoded when they declare too many
pixels), odd sizes and modes normalised and kept, labels checked against the classes and
against the images that exist; records in = kept + quarantined."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile

from mfg_pipeline.cleaning import image as image_cleaning
from mfg_pipeline.cleaning.partition import read_images
from mfg_pipeline_tests.landing_kit import DAY, IMAGE_RULES, Drop, png_bytes, png_header_only

LABELS_HEADER = "file,label,machine_id,timestamp"


def _labels(*rows: str) -> str:
    return "\n".join([LABELS_HEADER, *rows]) + "\n"


@pytest.fixture
def drop(tmp_path):
    drop = Drop(tmp_path)
    drop.write("image", f"{DAY}/good-1.png", png_bytes((16, 16)))
    drop.write("image", f"{DAY}/good-2.png", png_bytes((16, 16), color=30))
    return drop


def test_truncated_and_corrupt_images_are_quarantined(drop):
    noise = Image.effect_noise((64, 64), 40).convert("RGB")
    png, jpeg = io.BytesIO(), io.BytesIO()
    noise.save(png, "PNG")
    noise.save(jpeg, "JPEG")
    png, jpeg = png.getvalue(), jpeg.getvalue()
    middle = len(png) // 2
    drop.write("image", f"{DAY}/truncated.png", png[:middle])
    drop.write("image", f"{DAY}/bad-crc.png", png[:middle] + bytes(b ^ 0xFF for b in png[middle:middle + 16]) + png[middle + 16:])
    drop.write("image", f"{DAY}/truncated.jpg", jpeg[:700])
    out = drop.run("image")
    out.assert_accounting()
    for name in ("truncated.png", "bad-crc.png", "truncated.jpg"):
        [reason] = out.reasons(f"{DAY}/{name}")
        assert reason.startswith("corrupt or truncated image: "), (name, reason)
    assert sorted(out.kept["file"]) == [f"{DAY}/good-1.png", f"{DAY}/good-2.png"]


def test_images_of_any_size_and_mode_are_normalised_and_kept(drop):
    variants = {"rgb.png": png_bytes((100, 50), "RGB", color=(1, 2, 3)), "rgba.png": png_bytes((70, 70), "RGBA"),
                "palette.png": png_bytes((30, 90), "P"), "sixteen-bit.png": png_bytes((64, 64), "I;16"),
                "bilevel.png": png_bytes((64, 64), "1"), "cmyk.jpg": png_bytes((20, 20), "CMYK", "JPEG"),
                "photo.jpeg": png_bytes((300, 200), "RGB", "JPEG"), "scan.bmp": png_bytes((17, 33), "RGB", "BMP")}
    for name, data in variants.items():
        drop.write("image", f"{DAY}/{name}", data)
    out = drop.run("image")
    out.assert_accounting()
    assert out.clean.quarantined == 0
    images, index = read_images(drop.work / "clean" / "image" / DAY)
    assert tuple(images.shape) == (len(variants) + 2, 1, IMAGE_RULES.size, IMAGE_RULES.size)
    assert str(images.dtype) == "torch.uint8" and len(index) == len(images)


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding(drop, monkeypatch):
    decoded = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original(self))
    for width, height in ((20000, 20000), (5000, 5000)):
        with pytest.raises(ValueError, match="decompression bomb refused"):
            image_cleaning.decode_image(png_header_only(width, height), 16)
    assert decoded == []
    drop.write("image", f"{DAY}/bomb.png", png_header_only(20000, 20000))
    drop.write("image", f"{DAY}/bomb-below-pil-limit.png", png_header_only(5000, 5000))
    out = drop.run("image")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/bomb-below-pil-limit.png") == ["decompression bomb refused: 5000x5000 pixels declared"]
    [reason] = out.reasons(f"{DAY}/bomb.png")
    assert reason.startswith("decompression bomb refused")
    assert decoded and set(decoded) == {(16, 16)}  # only the good images were ever decoded
    assert len(out.kept) == 2


def test_zero_byte_tiny_and_non_image_files_with_image_extensions(drop):
    drop.write("image", f"{DAY}/empty.png", b"")
    drop.write("image", f"{DAY}/notes.png", "this is a text file\n")
    drop.write("image", f"{DAY}/script.jpg", b"#!/bin/sh\nrm -rf /\n")
    drop.write("image", f"{DAY}/icon.png", png_bytes((4, 4)))
    drop.write("image", f"{DAY}/readme.txt", "not an image\n")
    out = drop.run("image")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/empty.png") == ["empty file (0 bytes)"]
    assert out.reasons(f"{DAY}/notes.png") == ["not an image (unidentified format)"]
    assert out.reasons(f"{DAY}/script.jpg") == ["not an image (unidentified format)"]
    assert out.reasons(f"{DAY}/icon.png") == ["image too small: 4x4"]
    assert out.reasons(f"{DAY}/readme.txt") == ["unsupported file type '.txt'; expected one of .png, .jpg, .jpeg, .bmp"]
    assert len(out.kept) == 2


@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "EPS", "ICO"])
def test_formats_outside_the_contract_are_not_decoded_even_behind_an_image_extension(drop, fmt):
    # Pillow would otherwise sniff the content (EPS even runs Ghostscript when installed).
    data = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n" if fmt == "EPS"
            else png_bytes((16, 16), "RGB", fmt))
    with pytest.raises(ValueError, match="unidentified format"):
        image_cleaning.decode_image(data, 16)
    drop.write("image", f"{DAY}/disguised.png", data)
    out = drop.run("image")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/disguised.png") == ["not an image (unidentified format)"]


def test_unknown_classes_and_labels_of_missing_images(drop):
    drop.write("image", f"{DAY}/labels.csv", _labels(
        f"good-1.png,Scratch,M01,{DAY}T01:00:00Z",        # case is normalised: kept
        f"good-2.png,crack,M01,{DAY}T01:01:00Z",          # not a class: quarantined
        f"ghost.png,none,M01,{DAY}T01:02:00Z",            # no such image
        "half-a-line",                                    # malformed labels.csv line
    ))
    out = drop.run("image")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/good-2.png") == ["label names an unknown class: crack"]
    assert out.reasons(f"{DAY}/labels.csv") == ["label row references missing image 'ghost.png'",
                                               "malformed CSV line: expected 4 fields, got 1"]
    assert out.kept[["file", "label", "machine_id"]].values.tolist() == [[f"{DAY}/good-1.png", "scratch", "M01"]]


def test_a_labels_file_without_the_label_column_quarantines_its_rows(drop):
    drop.write("image", f"{DAY}/labels.csv", "file,machine_id\ngood-1.png,M01\n")
    out = drop.run("image")
    out.assert_accounting()
    assert out.reasons(f"{DAY}/labels.csv") == ["labels.csv lacks column(s) ['label']"]
    assert len(out.kept) == 2 and out.kept["label"].isna().all()


def test_odd_image_names_are_quarantined(drop):
    drop.write("image", f"{DAY}/x;rm -rf ~.png", png_bytes())
    drop.write("image", f"{DAY}/line\nbreak.png", png_bytes())
    out = drop.run("image")
    out.assert_accounting()
    for name in ("x;rm -rf ~.png", "line\nbreak.png"):
        assert out.reasons(f"{DAY}/{name}") == [f"unsafe file name component {name!r} (path traversal or odd characters)"]
    assert len(out.kept) == 2

"""``mois-sam2-nf segment``: round trip on a `tiny` scan with the oracle, propagation output, and bad clicks."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mois_sam2_nf.cli.main import main
from mois_sam2_nf.data.instances import size_ordered_components
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segment_scan import read_clicks, segment_scan


@pytest.fixture(scope="module")
def tiny_scan(tiny_cohort: Path) -> tuple[Path, Path, np.ndarray]:
    """(image path, label path, size-ordered 26-components of the label) of the first ts1 case."""
    image = sorted((tiny_cohort / "imagesTs_1").glob("*.nii.gz"))[0]
    label = tiny_cohort / "labelsTs_1_instance" / image.name
    components, _ = size_ordered_components(load_label(label).array > 0)
    return image, label, components


def _inside(components: np.ndarray, lesion: int) -> list[int]:
    return [int(v) for v in np.argwhere(components == lesion)[0]]


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_oracle_round_trip_writes_lesion_ids_in_image_space(tiny_scan, tmp_path: Path, capsys) -> None:
    image, label, components = tiny_scan
    assert components.max() >= 3
    clicks = _write(tmp_path / "clicks.json", {"lesions": [
        {"id": 5, "clicks": [[*_inside(components, 1), 1], [0, 0, 0, 0]]},
        {"id": 9, "clicks": [[*_inside(components, 3), 1]]},
    ]})  # fmt: skip
    out = tmp_path / "out"
    code = main(["segment", "--image", str(image), "--clicks", str(clicks), "--model", "oracle",
                 "--label", str(label), "--out", str(out)])  # fmt: skip
    assert code == 0
    assert str(out / "combined.nii.gz") in capsys.readouterr().out.strip().splitlines()[-1]
    assert sorted(p.name for p in out.iterdir()) == ["combined.nii.gz", "lesions.nii.gz"]
    img = nib.load(str(image))
    lesions = nib.load(str(out / "lesions.nii.gz"))
    np.testing.assert_array_equal(lesions.affine, img.affine)
    assert lesions.shape == img.shape
    assert int(lesions.header["sform_code"]) == int(img.header["sform_code"])
    values = np.asarray(lesions.dataobj)
    assert values.dtype.kind == "i"
    expected = np.where(components == 1, 5, 0) + np.where(components == 3, 9, 0)
    np.testing.assert_array_equal(values, expected)
    combined = np.asarray(nib.load(str(out / "combined.nii.gz")).dataobj)
    assert combined.dtype == np.uint8
    np.testing.assert_array_equal(combined, (expected > 0).astype(np.uint8))


def test_propagating_model_writes_the_propagated_mask(tiny_scan, tmp_path: Path) -> None:
    image, label, components = tiny_scan
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    outputs = segment_scan(image, clicks, "imperfect_oracle", tmp_path / "out", label_path=label,
                           propagates=True, miss_every=0, margin=0, fp_edge=0)  # fmt: skip
    propagated = load_nifti(outputs.propagated).array
    np.testing.assert_array_equal(propagated, (components > 1).astype(np.uint8))
    combined = load_nifti(outputs.combined).array
    np.testing.assert_array_equal(combined, (components > 0).astype(np.uint8))
    np.testing.assert_array_equal(load_nifti(outputs.lesions).array, (components == 1).astype(np.int32))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"lesions": [{"id": 1, "clicks": [[999, 0, 0, 1]]}]}', "outside the volume"),
        ('{"lesions": [{"id": 1, "clicks": [[0, 0, 0, 1]]}', "not valid JSON"),
        ('{"points": []}', 'expected {"lesions"'),
        (
            '{"lesions": [{"id": 1, "clicks": [[0, 0, 0, 1]]}, {"id": 1, "clicks": [[1, 0, 0, 1]]}]}',
            "duplicate lesion id 1",
        ),
        ('{"lesions": [{"id": 0, "clicks": [[0, 0, 0, 1]]}]}', "id must be an integer >= 1"),
        ('{"lesions": [{"id": 2, "clicks": [[0, 0, 1]]}]}', "must be [i, j, k, 1 or 0]"),
        ('{"lesions": [{"id": 2, "clicks": [[0, 0, 0, 2]]}]}', "must be [i, j, k, 1 or 0]"),
        ('{"lesions": [{"id": 2, "clicks": [[0, 0, 0, 0]]}]}', "no positive click"),
        ('{"lesions": [{"id": 2, "click": [[0, 0, 0, 1]]}]}', 'exactly "id" and "clicks"'),
        ('{"lesions": []}', "is empty"),
    ],
)
def test_bad_clicks_give_one_error_line_and_write_nothing(tiny_scan, tmp_path: Path, capsys, content, message) -> None:
    image, label, _ = tiny_scan
    clicks = tmp_path / "clicks.json"
    clicks.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["segment", "--image", str(image), "--clicks", str(clicks), "--model", "oracle",
                 "--label", str(label), "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"error: {clicks}") and message in err[0]
    assert not out.exists()


def test_read_clicks_keeps_file_order_and_polarity(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", {"lesions": [{"id": 3, "clicks": [[1, 2, 3, 1], [0, 1, 2, 0]]},
                                                    {"id": 1, "clicks": [[4, 4, 4, 1]]}]})  # fmt: skip
    lesions = read_clicks(path, (5, 5, 5))
    assert [lesion.lesion_id for lesion in lesions] == [3, 1]
    assert [tuple(c) for c in lesions[0].clicks] == [(1, 2, 3, True), (0, 1, 2, False)]
    with pytest.raises(InputError, match="outside the volume of shape"):
        read_clicks(path, (4, 5, 5))


def test_model_that_cannot_be_created_is_one_error_line(tiny_scan, tmp_path: Path, capsys) -> None:
    image, _, components = tiny_scan
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    code = main(["segment", "--image", str(image), "--clicks", str(clicks), "--model", "no_such_model",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _segment(image: Path, clicks: Path, out: Path, *extra: str) -> list[str]:
    return ["segment", "--image", str(image), "--clicks", str(clicks), "--out", str(out), *extra]


def _one_error_line(capsys, *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(word in err[0] for word in words), err[0]


def test_rgb24_image_and_junk_checkpoint_are_one_error_line(tiny_scan, tmp_path: Path, capsys) -> None:
    image, _, components = tiny_scan
    shape = nib.load(str(image)).shape
    rgb = tmp_path / "rgb.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), np.eye(4)), rgb)
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    assert main(_segment(rgb, clicks, tmp_path / "out", "--model", "mois_sam2")) == 1
    _one_error_line(capsys, str(rgb), "R/G/B record of 24 bits is not supported")
    junk = tmp_path / "junk.pt"
    junk.write_text("hello", encoding="utf-8")
    assert main(_segment(image, clicks, tmp_path / "out", "--model", "mois_sam2", "--checkpoint", str(junk))) == 1
    _one_error_line(capsys, str(junk), "not a readable torch checkpoint")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("device", "words"), [("bogus", "is not a torch device"), ("cuda:99", "cuda:99")])
def test_unusable_device_is_one_error_line(tiny_scan, tmp_path: Path, capsys, device: str, words: str) -> None:
    image, label, components = tiny_scan
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    assert main(_segment(image, clicks, tmp_path / "out", "--model", "oracle", "--label", str(label),
                         "--device", device)) == 1
    _one_error_line(capsys, "--device", words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout", ["out_is_a_file", "parent_is_a_file"])
def test_bad_out_is_refused_before_the_model_runs(tiny_scan, tmp_path: Path, capsys, monkeypatch,
                                                  layout: str) -> None:
    import mois_sam2_nf.segment_scan as segment_module

    image, label, components = tiny_scan
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    blocker = tmp_path / "taken"
    blocker.write_text("a file", encoding="utf-8")
    out = blocker if layout == "out_is_a_file" else blocker / "sub" / "out"

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was created before --out was checked")

    monkeypatch.setattr(segment_module, "create_segmenter", no_model)
    assert main(_segment(image, clicks, out, "--model", "oracle", "--label", str(label))) == 1
    _one_error_line(capsys, str(out), "is a file" if layout == "parent_is_a_file" else "not a folder")
    assert blocker.read_text(encoding="utf-8") == "a file"


def test_deeply_nested_clicks_and_limits_are_one_error_line(tiny_scan, tmp_path: Path, capsys) -> None:
    image, label, components = tiny_scan
    nested = tmp_path / "nested.json"
    nested.write_text('{"lesions": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    oracle = ["--model", "oracle", "--label", str(label)]
    assert main(_segment(image, nested, tmp_path / "out", *oracle)) == 1
    _one_error_line(capsys, str(nested), "nested too deeply")

    inside = _inside(components, 1)
    many_clicks = _write(tmp_path / "many.json", {"lesions": [{"id": 1, "clicks": [[*inside, 1]] * 101}]})
    assert main(_segment(image, many_clicks, tmp_path / "out", *oracle)) == 1
    _one_error_line(capsys, str(many_clicks), "101 clicks", "limit of 100", "--max-clicks-per-lesion")
    three = _write(tmp_path / "three.json", {"lesions": [{"id": n, "clicks": [[*inside, 1]]} for n in (1, 2, 3)]})
    assert main(_segment(image, three, tmp_path / "out", *oracle, "--max-lesions", "2")) == 1
    _one_error_line(capsys, str(three), "3 lesions", "limit of 2", "--max-lesions")
    assert not (tmp_path / "out").exists()
    assert main(_segment(image, many_clicks, tmp_path / "out", *oracle, "--max-clicks-per-lesion", "101")) == 0


def test_outputs_are_all_or_nothing(tiny_scan, tmp_path: Path, monkeypatch) -> None:
    import mois_sam2_nf.segment_scan as segment_module

    image, label, components = tiny_scan
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    written: list[str] = []
    save = segment_module.save_nifti

    def fail_on_the_last_file(path: Path, *args: object, **kwargs: object) -> Path:
        if Path(path).name == "propagated.nii.gz":
            raise OSError("No space left on device")
        written.append(Path(path).name)
        return save(path, *args, **kwargs)

    monkeypatch.setattr(segment_module, "save_nifti", fail_on_the_last_file)
    options = {"label_path": label, "propagates": True, "miss_every": 0, "margin": 0, "fp_edge": 0}
    with pytest.raises(OSError, match="No space left"):
        segment_scan(image, clicks, "imperfect_oracle", tmp_path / "out", **options)
    assert written == ["lesions.nii.gz", "combined.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.json"]  # no output folder, no temporary sibling

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OSError):
        segment_scan(image, clicks, "imperfect_oracle", existing, **options)
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]
    monkeypatch.setattr(segment_module, "save_nifti", save)
    segment_scan(image, clicks, "imperfect_oracle", existing, **options)
    assert sorted(p.name for p in existing.iterdir()) == ["combined.nii.gz", "lesions.nii.gz", "notes.txt",
                                                           "propagated.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.json", "existing"]
    # a later run of a model that does not propagate leaves no stale propagated mask beside its own outputs
    segment_scan(image, clicks, "imperfect_oracle", existing, **{**options, "propagates": False})
    assert sorted(p.name for p in existing.iterdir()) == ["combined.nii.gz", "lesions.nii.gz", "notes.txt"]


def test_outputs_keep_qform_sform_and_their_codes(tiny_scan, tmp_path: Path) -> None:
    image, label, components = tiny_scan
    source = nib.load(str(image))
    moved = source.affine.copy()
    moved[:3, 3] += [7.0, -3.0, 5.0]  # the qform lies 9 mm away from the sform
    odd = nib.Nifti1Image(np.asarray(source.dataobj), source.affine)
    odd.header.set_qform(moved, code=3)
    odd.header.set_sform(source.affine, code=4)
    odd_path = tmp_path / "odd.nii.gz"
    nib.save(odd, odd_path)
    clicks = _write(tmp_path / "clicks.json", {"lesions": [{"id": 1, "clicks": [[*_inside(components, 1), 1]]}]})
    assert main(_segment(odd_path, clicks, tmp_path / "out", "--model", "oracle", "--label", str(label))) == 0
    written = nib.load(str(odd_path)).header
    for name in ("lesions.nii.gz", "combined.nii.gz"):
        header = nib.load(str(tmp_path / "out" / name)).header
        for field in ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                      "qoffset_z", "srow_x", "srow_y", "srow_z"):
            np.testing.assert_array_equal(header[field], written[field], err_msg=f"{name} {field}")


@pytest.mark.parametrize("command", [
    ["synth", "--preset", "tiny"],
    ["slice", "--raw", "{raw}"],
    ["split", "--raw", "{raw}"],
    ["export-nnunet", "--raw", "{raw}"],
    ["preview", "--raw", "{raw}"],
    ["report", "{raw}"],
    ["train-nnunet", "--raw", "{raw}", "--out", "{ok}", "--work"],
])
@pytest.mark.parametrize("layout", ["out_is_a_file", "parent_is_a_file"])
def test_every_command_refuses_an_output_folder_that_cannot_be_one(tiny_cohort: Path, tmp_path: Path, capsys,
                                                                    command: list[str], layout: str) -> None:
    """Like segment, every command with an output folder (``--out``, ``--work``) gives one error line and exit 1 for
    an existing file or a path under a file, before doing any work."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file", encoding="utf-8")
    out = blocker if layout == "out_is_a_file" else blocker / "sub"
    argv = [arg.format(raw=tiny_cohort, ok=tmp_path / "fine") for arg in command]
    argv += [str(out)] if argv[-1] == "--work" else ["--out", str(out)]
    assert main(argv) == 1
    _one_error_line(capsys, str(out), "is a file" if layout == "parent_is_a_file" else "not a folder")
    assert blocker.read_text(encoding="utf-8") == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]

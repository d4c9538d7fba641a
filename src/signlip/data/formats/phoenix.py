"""RWTH-PHOENIX-Weather 2014 (Koller et al. 2015) and 2014-T (Camgoz et al. 2018): German weather-forecast sentences
signed in continuous DGS, each a folder of 210×260 PNG frames at 25 fps with its gloss sentence.

The layouts as the downloads unpack (and as VAC's / CorrNet's `preprocess/dataset_preprocess*.py` read them):

    phoenix2014-release/phoenix-2014-multisigner/            variant=multisigner
        annotations/manual/{train,dev,test}.corpus.csv       id|folder|signer|annotation
        features/fullFrame-210x260px/{train,dev,test}/<id>/1/*.png    (folder column: <id>/1/*.png)
    phoenix2014-release/phoenix-2014-signerindependent-SI5/  variant=si5 (signer 5 only in dev/test)
        annotations/manual/{train,dev,test}.SI5.corpus.csv   id|folder|signer|annotation
        features/fullFrame-210x260px/…                        as multisigner
    PHOENIX-2014-T-release-v3/PHOENIX-2014-T/                 variant=t
        annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv   name|video|start|end|speaker|orth|translation
        features/fullFrame-210x260px/{train,dev,test}/<name>/*.png      (video column: <name>/*.png)

`data.root` may be the corpus folder or the release folder above it; `variant=auto` takes the corpus found there
(multisigner before si5 when the release holds both). The CSVs are `|`-separated; dev becomes val.

Raw manifest: `path,glosses,split,signer,id,fps[,translation]` with `path` the sentence's frame folder (a missing
folder stays in, so the prepare report lists it as "frame folder not found") and `fps` the frame rate the holistic
preparer times MediaPipe's tracking with and the RGB clip preparer resamples from (`data.prepare.fps`). Both data
modules read it: holistic landmarks (task=cslr_landmarks, MediaPipe) and RGB sentence clips (data=clips_rgb with
data.prepare.n_frames=null: whole sentences resized to `data.prepare.size`).

Glosses (`glosses=clean`, the default) are the annotation with the per-gloss rewrites of RWTH's evaluation script
(`preprocess.sh`, which VAC and CorrNet run on their hypotheses before sclite) applied to the reference itself:
the prefixes `loc-`, `cl-`, `qu-`, `poss-`, `lh-` removed, `S0NNE` → `SONNE`, `HABEN2` → `HABEN`, `-PLUSPLUS`
removed; and every `__…__` token dropped (`__ON__`, `__OFF__` — hands rising into / leaving the signing space —,
`__EMOTION__`, `__PU__`, `__LEFTHAND__`, `__EPENTHESIS__`: no sign). A sentence left with no gloss is left out
(counted in the summary line). The script's sentence-level rewrites (joining spelled letters `A B` → `A+B`,
`WIE AUSSEHEN` → `WIE-AUSSEHEN`, merging repeated glosses) undo habits of recogniser output and are not applied.
`neg-` / `negalp-` (2014-T) stay: they change the meaning. `glosses=raw` keeps the annotation as published — what
VAC and CorrNet train on and score against (`__ON__` / `__OFF__` included), for WERs comparable with theirs.
VAC and CorrNet also drop row 2390 of the multisigner train CSV (a broken sample); here every row is kept and the
prepare report says why a sentence could not be used.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from signlip.data.formats import FORMATS, write_csv
from signlip.errors import SignlipError

FPS = 25  # every PHOENIX video
FRAMES = "fullFrame-210x260px"
SPLITS = {"train": "train", "dev": "val", "test": "test"}  # PHOENIX's split name → signlip's
GLOSS_MODES = ("clean", "raw")
# variant → (corpus folder, annotation file per split, its columns: id, frame folder, signer, glosses[, translation])
VARIANTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "multisigner": ("phoenix-2014-multisigner", "{split}.corpus.csv", ("id", "folder", "signer", "annotation")),
    "si5": ("phoenix-2014-signerindependent-SI5", "{split}.SI5.corpus.csv", ("id", "folder", "signer", "annotation")),
    "t": ("PHOENIX-2014-T", "PHOENIX-2014-T.{split}.corpus.csv", ("name", "video", "speaker", "orth", "translation")),
}
NAMES = {"multisigner": "PHOENIX-2014", "si5": "PHOENIX-2014 SI5", "t": "PHOENIX-2014-T"}
HEADERS = {"multisigner": "id|folder|signer|annotation", "si5": "id|folder|signer|annotation",
           "t": "name|video|start|end|speaker|orth|translation"}  # as published
_SPECIAL = re.compile(r"^__\w*__$")
_PREFIXES = re.compile(r"loc-|cl-|qu-|poss-|lh-")
_SPELLING = (("S0NNE", "SONNE"), ("HABEN2", "HABEN"), ("-PLUSPLUS", ""))


def clean_glosses(annotation: str) -> str:
    """One annotation → its glosses under the rules of the module docstring (`glosses=clean`)."""
    out = []
    for gloss in annotation.split():
        if _SPECIAL.match(gloss):
            continue
        gloss = _PREFIXES.sub("", gloss)
        for old, new in _SPELLING:
            gloss = gloss.replace(old, new)
        if gloss:
            out.append(gloss)
    return " ".join(out)


def _annotation_file(corpus: Path, variant: str, split: str) -> Path:
    return corpus / "annotations" / "manual" / VARIANTS[variant][1].format(split=split)


def _candidates(root: Path, variant: str) -> list[Path]:
    """Where the corpus folder of `variant` may be: `root` itself or its subfolder of the corpus's name."""
    return [root, root / VARIANTS[variant][0]]


def find_corpora(root: Path) -> dict[str, Path]:
    """variant → corpus folder, for every PHOENIX corpus whose train CSV lies at `root` or one level below."""
    found = {}
    for variant in VARIANTS:
        for corpus in _candidates(root, variant):
            if _annotation_file(corpus, variant, "train").is_file():
                found[variant] = corpus
                break
    return found


def is_phoenix(root: Path) -> bool:
    return bool(find_corpora(root))


def read_corpus_csv(path: Path, columns: tuple[str, ...], expected: str) -> list[dict[str, str]]:
    """Rows of a PHOENIX annotation CSV (`|`-separated, a header line); SignlipError when a column is missing."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="|", quoting=csv.QUOTE_NONE)
            header = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise SignlipError(f"{path} is not UTF-8 text (byte {exc.start}) — restore it from the PHOENIX download") \
            from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise SignlipError(f"{path} lacks column(s) {', '.join(missing)} (its header: {'|'.join(header) or 'none'}) "
                           f"— expected the |-separated header {expected}; restore the file from the download")
    return rows


def _frame_folder(features: Path, split: str, pattern: str) -> Path:
    """The frame folder a CSV row names: its folder column (`<id>/1/*.png`) without the file pattern, under the
    split's feature folder."""
    rel = Path(pattern.strip())
    if "*" in rel.name or "?" in rel.name:
        rel = rel.parent
    folder = features / split / rel
    # PHOENIX-2014-T's CSV names `<name>/1/*.png` while its frames lie in `<name>/` itself: the folder that exists.
    if not folder.is_dir() and rel.name == "1" and folder.parent.is_dir():
        return folder.parent
    return folder


def _choose(root: Path, variant: str) -> tuple[str, Path]:
    found = find_corpora(root)
    if variant == "auto":
        if not found:
            looked = [str(_annotation_file(c, v, "train")) for v in VARIANTS for c in _candidates(root, v)]
            raise SignlipError(f"no PHOENIX annotation CSV under {root} (looked for {', '.join(looked)}) — point "
                               f"data.root at the release folder or the corpus folder (phoenix-2014-multisigner, "
                               f"phoenix-2014-signerindependent-SI5 or PHOENIX-2014-T)")
        variant = next(iter(found))  # VARIANTS' order: multisigner before si5
        return variant, found[variant]
    if variant not in VARIANTS:
        raise SignlipError(f"data.format_options.variant={variant} — use one of auto, {', '.join(VARIANTS)}")
    if variant not in found:
        looked = [str(_annotation_file(c, variant, "train")) for c in _candidates(root, variant)]
        there = f" (it holds variant {', '.join(found)})" if found else ""
        raise SignlipError(f"no {NAMES[variant]} annotation CSV under {root}{there} — looked for {' and '.join(looked)}"
                           f"; point data.root at the folder holding {VARIANTS[variant][0]}/")
    return variant, found[variant]


@FORMATS.register("phoenix2014", detect=is_phoenix, modalities=("holistic", "clips"),
                  help="PHOENIX-2014 / -T: annotations/manual/*.corpus.csv + frame folders under features/; "
                       "variant=auto|multisigner|si5|t, glosses=clean|raw, fps=25")
def phoenix2014(root: Path, out: Path, variant: str = "auto", glosses: str = "clean", fps: float = FPS,
                frames: str = FRAMES) -> Path:
    """Raw manifest of the PHOENIX sentences under `root` (see the module). `variant`: which corpus (auto: the one
    the folder holds); `glosses`: clean | raw (the rules of the module docstring); `fps`: the frames' rate (PHOENIX:
    25); `frames`: the folder of `features/` to read (a resized copy such as VAC's fullFrame-256x256px)."""
    from signlip.run_logger import console

    if glosses not in GLOSS_MODES:
        raise SignlipError(f"data.format_options.glosses={glosses} — use one of {', '.join(GLOSS_MODES)}")
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        fps = 0.0
    if not 0 < fps <= 1000:
        raise SignlipError("data.format_options.fps must be the frames' rate in frames per second (PHOENIX: 25)")
    root = root.absolute()  # the raw manifest's paths are read relative to its own folder: they must not be relative
    variant, corpus = _choose(root, str(variant))
    id_col, folder_col, signer_col, gloss_col, *translation = VARIANTS[variant][2]
    features = corpus / "features" / frames
    rows, empty, missing = [], [], 0
    for split, split_name in SPLITS.items():
        path = _annotation_file(corpus, variant, split)
        if not path.is_file():
            raise SignlipError(f"{path} not found — the {NAMES[variant]} download has one annotation CSV per split "
                               f"(train, dev, test); restore it")
        for rec in read_corpus_csv(path, VARIANTS[variant][2], HEADERS[variant]):
            annotation = " ".join((rec.get(gloss_col) or "").split())
            sentence = clean_glosses(annotation) if glosses == "clean" else annotation
            if not sentence:
                empty.append(rec.get(id_col) or "?")
                continue
            folder = _frame_folder(features, split, rec.get(folder_col) or rec.get(id_col) or "")
            missing += not folder.is_dir()
            rows.append([str(folder), sentence, split_name, (rec.get(signer_col) or "").strip(),
                         (rec.get(id_col) or "").strip(), f"{fps:g}",
                         *((rec.get(c) or "").strip() for c in translation)])
    if not rows:
        raise SignlipError(f"the annotation CSVs of {corpus} list no sentence with a gloss — restore them from the "
                           f"{NAMES[variant]} download")
    if missing == len(rows):
        raise SignlipError(f"none of the {len(rows)} frame folders is under {features} — unpack the frames there "
                           f"(features/{frames}/<split>/<id>/), or name another folder of features/ with "
                           f"+data.format_options.frames=…")
    write_csv(out, ["path", "glosses", "split", "signer", "id", "fps", *translation], rows)
    counts = {s: sum(r[2] == s for r in rows) for s in SPLITS.values()}
    also = [v for v in find_corpora(root) if v != variant]
    console.print(f"{NAMES[variant]}: {len(rows)} sentence(s) (train {counts['train']}, val {counts['val']}, test "
                  f"{counts['test']}), glosses {glosses}, {missing} frame folder(s) missing"
                  + (" (listed in the prepare report)" if missing else "")
                  + (f"; {len(empty)} left out with no gloss after cleaning (first: {empty[0]})" if empty else "")
                  + (f"; the folder also holds variant {', '.join(also)} (+data.format_options.variant={also[0]})"
                     if also else ""), soft_wrap=True)
    return out

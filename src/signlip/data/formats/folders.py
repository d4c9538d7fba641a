"""Class folders (torchvision's ImageFolder convention): `DIR/<label>/<file>`, optionally `DIR/<split>/<label>/<file>`.

    DIR/doctor/s01_take1.mp4            DIR/train/doctor/s01_take1.mp4
    DIR/doctor/s02_take1.mp4     or     DIR/val/doctor/s07_take1.mp4
    DIR/pillow/s01_take1.mp4            DIR/test/pillow/s09_take2.mp4

The label is the folder name; files may sit deeper inside it (ImageFolder walks it too). Split folders are named
train / val / test (`valid`, `validation` and `dev` mean val). The files are videos (`VIDEO_SUFFIXES`, any case) for
clips and holistic landmarks, or `.npy` landmark arrays. `speaker_pattern` (a regex searched in the file stem, its
one group or its group `speaker` is the person) adds a speaker column, so signlip's seeded split keeps people apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from signlip.data.clips.reader import VIDEO_SUFFIXES
from signlip.data.formats import FORMATS, write_csv
from signlip.errors import SignlipError

ARRAY_SUFFIXES = (".npy",)
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


def _visible(path: Path | str) -> bool:
    return not Path(path).name.startswith(".")


def _subfolders(folder: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _visible(p) and p.is_dir() and p.resolve() not in skip)


def _own_folders(root: Path, out: Path) -> tuple[Path, ...]:
    """The folders under `root` that signlip itself writes when it runs from inside the dataset (the manifest's
    `data/`, the run folders' `outputs/`): never class folders."""
    written = [Path(out).absolute()]
    try:
        from hydra.core.hydra_config import HydraConfig

        written.append(Path(HydraConfig.get().runtime.output_dir))
    except (ImportError, ValueError):  # not inside a Hydra run
        pass
    root = root.resolve()
    own = []
    for path in written:
        path = path.resolve()
        if root in path.parents:
            own.append(root / path.relative_to(root).parts[0])
    return tuple(dict.fromkeys(own))


def _files(folder: Path, suffixes: tuple[str, ...], recursive: bool = True) -> list[Path]:
    """Visible files of `folder` (and below it) with one of `suffixes`, sorted. Broken links count as files: the
    prepare report then lists them as "file not found" instead of them vanishing."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in suffixes and not p.is_dir()
                  and all(_visible(part) for part in p.relative_to(folder).parts))


def _split_layout(root: Path, skip: tuple[Path, ...] = ()) -> bool:
    """True when every subfolder of `root` is a split folder (train/val/test…); a mix of split and class folders
    is refused rather than guessed."""
    subs = _subfolders(root, skip)
    splits = [p.name for p in subs if p.name.lower() in SPLIT_FOLDERS]
    if splits and len(splits) < len(subs):
        others = [p.name for p in subs if p.name.lower() not in SPLIT_FOLDERS]
        raise SignlipError(f"{root} mixes split folders ({', '.join(splits)}) with other folders "
                           f"({', '.join(others[:5])}) — put every class folder inside train/val/test, or none")
    return bool(splits)


def looks_like_class_folders(root: Path) -> bool:
    """Two or more folders, at the top or one split folder down, at least one of them holding videos or `.npy` files
    directly (two: a classifier needs two classes, and one folder of videos is how other layouts ship, WLASL's
    `videos/`)."""
    suffixes = (*VIDEO_SUFFIXES, *ARRAY_SUFFIXES)
    tops = _subfolders(root)
    splits = [t for t in tops if t.name.lower() in SPLIT_FOLDERS]
    classes = [f for t in splits for f in _subfolders(t)] if splits else tops
    return len({c.name for c in classes}) >= 2 and any(_files(c, suffixes, recursive=False) for c in classes)


def _speaker_of(stem: str, pattern: re.Pattern, source: Path, pattern_text: str) -> str:
    match = pattern.search(stem)
    group = "speaker" if "speaker" in pattern.groupindex else 1
    speaker = match.group(group) if match else None
    if not speaker:
        raise SignlipError(f"{source}: its name {stem!r} does not match data.format_options.speaker_pattern="
                           f"'{pattern_text}' — rename the file or change the pattern (it is searched in the file "
                           f"name without extension)")
    return speaker


def _compile(speaker_pattern: str) -> re.Pattern:
    try:
        pattern = re.compile(speaker_pattern)
    except re.error as exc:
        raise SignlipError(f"data.format_options.speaker_pattern='{speaker_pattern}' is not a valid regex ({exc})") \
            from None
    if "speaker" not in pattern.groupindex and pattern.groups != 1:
        raise SignlipError(f"data.format_options.speaker_pattern='{speaker_pattern}' has {pattern.groups} groups — "
                           f"give it one group, or name the speaker's (?P<speaker>…), e.g. '^(s\\d+)_'")
    return pattern


def _suffixes(extensions: list[str] | None, label_folders: list[Path]) -> tuple[str, ...]:
    """The suffixes to collect: `extensions` as given, else videos when the folders hold any, else `.npy`."""
    if extensions:
        return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    has_videos = any(_files(f, VIDEO_SUFFIXES) for f in label_folders)
    has_arrays = any(_files(f, ARRAY_SUFFIXES) for f in label_folders)
    if has_videos and has_arrays:
        raise SignlipError("the class folders hold both videos and .npy files — choose one with "
                           "data.format_options.extensions=[.npy] (or [.mp4])")
    return ARRAY_SUFFIXES if has_arrays else VIDEO_SUFFIXES


@FORMATS.register("folders", detect=looks_like_class_folders, modalities=("clips", "holistic", "landmarks"),
                  help="class folders DIR/<label>/*.mp4|*.npy, optionally DIR/<train|val|test>/<label>/…")
def folders(root: Path, out: Path, speaker_pattern: str | None = None, extensions: list[str] | None = None) -> Path:
    """Write the raw manifest (`path,label[,split][,speaker]`, absolute paths, sorted) of the class folders under
    `root`. `speaker_pattern`: regex over file stems giving the speaker/signer (one group or `(?P<speaker>…)`);
    `extensions`: the file suffixes to take (default: the videos, or the `.npy` files when there is no video)."""
    from signlip.run_logger import console

    root = Path(root)
    pattern = _compile(speaker_pattern) if speaker_pattern else None
    own = _own_folders(root, out)
    if own:
        console.print(f"note: left out signlip's own folder(s) {', '.join(p.name for p in own)} in {root} (this run "
                      f"writes there)", soft_wrap=True, markup=False)
    split_layout = _split_layout(root, own)
    # (split, label folder): the label is the folder's name, the split its parent's (when split folders are used).
    labelled = [(SPLIT_FOLDERS[s.name.lower()], f) for s in _subfolders(root, own) for f in _subfolders(s)] \
        if split_layout else [("", f) for f in _subfolders(root, own)]
    if not labelled:
        raise SignlipError(f"{root} has no class folders — lay it out as {root}/<label>/<file> (or "
                           f"{root}/<train|val|test>/<label>/<file>)")
    suffixes = _suffixes(extensions, [f for _, f in labelled])
    rows, empty = [], []
    for split, folder in labelled:
        files = _files(folder, suffixes)
        if not files:
            empty.append(folder)
        for path in files:
            speaker = _speaker_of(path.stem, pattern, path, speaker_pattern) if pattern else None
            rows.append((str(path.absolute()), folder.name,
                         *([split] if split_layout else []), *([speaker] if pattern else [])))
    if empty:
        shown = ", ".join(str(f) for f in empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
        raise SignlipError(f"no {'/'.join(suffixes)} file in {shown} — add files there or remove the folder")
    header = ["path", "label", *(["split"] if split_layout else []), *(["speaker"] if pattern else [])]
    out = write_csv(out, header, rows)
    speakers = {r[-1] for r in rows} if pattern else set()
    if not split_layout and not pattern:
        console.print("note: no split folders and no data.format_options.speaker_pattern — signlip splits the files "
                      "at random, so val/test hold people seen in training and cannot tell how it does on new "
                      "people; give a speaker_pattern (e.g. '^(s\\d+)_') to keep people apart", soft_wrap=True)
    elif not split_layout and len(speakers) < 3:
        console.print(f"note: speaker_pattern found only {len(speakers)} speaker(s) — too few to give val and test "
                      f"their own people, so signlip splits the files at random", soft_wrap=True)
    console.print(f"class folders: {len(rows)} file(s), {len({r[1] for r in rows})} label(s)"
                  f"{f', {len(speakers)} speaker(s)' if pattern else ''} → {out}", soft_wrap=True)
    return out

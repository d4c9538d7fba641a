"""WLASL (Word-Level American Sign Language, Li et al. WACV 2020): `WLASL_v0.3.json` + `videos/<video_id>.mp4`.

The JSON is a list of glosses, each `{"gloss": str, "instances": [{"video_id", "split", "signer_id", "frame_start",
"frame_end", "bbox": [x0, y0, x1, y1], "fps", "url", …}]}`. What the WLASL authors define, and this adapter follows:

- WLASL100/300/1000/2000 are the first N glosses of the JSON (their README, "Constituting subsets"):
  `data.format_options.subset=100`.
- `frame_start` is 1-based, `frame_end` inclusive, -1 = to the last frame, counted in decoded frames (their
  `preprocess.py` keeps `frames[frame_start - 1:frame_end]`). That script already cut every YouTube instance out of
  its long source video into `videos/<video_id>.mp4`, and copied the other sources whole; so by default
  (`ranges=auto`) a YouTube instance's file is taken whole and every other one is cut to its range. `ranges=all`
  cuts every file (videos you cut no further yourself), `ranges=none` none.
- `bbox` is the signer's box from YOLOv3, (xmin, ymin, xmax, ymax) in pixels of the source video (cutting keeps the
  resolution): written as `x,y,w,h`, what `data.prepare.roi=box` crops.

Raw manifest: `path,label,split,signer,frame_start,frame_end,x,y,w,h`. Videos the JSON names but the folder lacks
(WLASL's URLs expire: a known gap of every copy) stay in it, so the prepare report lists them as "file not found".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signlip.data.formats import FORMATS, write_csv
from signlip.errors import SignlipError

SPLITS = ("train", "val", "test")
RANGES = ("auto", "all", "none")
COLUMNS = ("path", "label", "split", "signer", "frame_start", "frame_end", "x", "y", "w", "h")
_LAYOUT = ('a list of {"gloss": …, "instances": [{"video_id", "split", "signer_id", "frame_start", "frame_end", '
           '"bbox", …}]} as in WLASL_v0.3.json')


def _index_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("WLASL_v*.json") if p.is_file())


def is_wlasl(root: Path) -> bool:
    return bool(_index_files(root))


def _is_youtube(url: Any) -> bool:
    return isinstance(url, str) and ("youtube" in url or "youtu.be" in url)


def read_wlasl_index(path: Path) -> list[dict[str, Any]]:
    """The glosses of a WLASL JSON, checked for the fields the adapter reads; SignlipError (one line) otherwise."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignlipError(f"{path} is not JSON ({exc}) — download WLASL_v0.3.json again from the WLASL repo") from None
    if not isinstance(content, list) or not content:
        raise SignlipError(f"{path} is not {_LAYOUT}")
    for i, entry in enumerate(content):
        if not isinstance(entry, dict) or not isinstance(entry.get("gloss"), str) or \
                not isinstance(entry.get("instances"), list):
            raise SignlipError(f"{path}: entry {i} has no gloss / instances list — expected {_LAYOUT}")
        for inst in entry["instances"]:
            missing = [k for k in ("video_id", "split") if not isinstance(inst, dict) or k not in inst]
            if missing:
                raise SignlipError(f"{path}: an instance of gloss {entry['gloss']!r} lacks {', '.join(missing)} — "
                                   f"expected {_LAYOUT}")
            if inst["split"] not in SPLITS:
                raise SignlipError(f"{path}: video {inst['video_id']} has split {inst['split']!r} — WLASL's splits "
                                   f"are {', '.join(SPLITS)}")
    return content


def _box(bbox: Any) -> list[str]:
    """(xmin, ymin, xmax, ymax) → x, y, w, h as text; empty when the instance has no usable box (roi=box then lists
    it in the report)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return [""] * 4
    return [f"{v:g}" for v in (x0, y0, x1 - x0, y1 - y0)] if x1 > x0 and y1 > y0 else [""] * 4


@FORMATS.register("wlasl", detect=is_wlasl, modalities=("clips", "holistic"),
                  help="WLASL_v0.3.json + videos/<video_id>.mp4; subset=100|300|1000|2000, ranges=auto|all|none")
def wlasl(root: Path, out: Path, subset: int | None = None, ranges: str = "auto", index: str | None = None) -> Path:
    """Raw manifest of the WLASL instances under `root` (`videos/<video_id>.mp4`, or `<video_id>.mp4` beside the
    JSON). `subset`: the first N glosses (WLASL100 …); `ranges`: which files to cut to their frame range (see the
    module); `index`: the JSON's name when the folder holds several versions (default: the newest)."""
    from signlip.run_logger import console

    if ranges not in RANGES:
        raise SignlipError(f"data.format_options.ranges={ranges} — use one of {', '.join(RANGES)}")
    files = _index_files(root) if index is None else [root / index]
    if not files or not files[-1].is_file():
        raise SignlipError(f"no {index or 'WLASL_v*.json'} in {root} — data.root must be the folder holding WLASL's "
                           f"JSON (and its videos/ folder)")
    path = files[-1]
    glosses = read_wlasl_index(path)
    if subset is not None:
        subset = int(subset) if str(subset).isdigit() else subset
        if not isinstance(subset, int) or not 0 < subset <= len(glosses):
            raise SignlipError(f"data.format_options.subset={subset} — give 1..{len(glosses)} glosses (WLASL100: 100, "
                               f"…, WLASL2000: 2000)")
        glosses = glosses[:subset]
    videos = root / "videos" if (root / "videos").is_dir() else root
    rows, missing, boxes = [], 0, 0
    for entry in glosses:
        for inst in entry["instances"]:
            video = videos / f"{inst['video_id']}.mp4"
            missing += not video.is_file()
            whole = ranges == "none" or (ranges == "auto" and _is_youtube(inst.get("url")))
            start, end = (1, -1) if whole else (inst.get("frame_start", 1), inst.get("frame_end", -1))
            box = _box(inst.get("bbox"))
            boxes += bool(box[0])
            rows.append([str(video), entry["gloss"], inst["split"], str(inst.get("signer_id", "")), start, end, *box])
    if missing == len(rows):
        raise SignlipError(f"none of the {len(rows)} videos {path.name} names is in {videos} — put them there as "
                           f"<video_id>.mp4 (WLASL's start_kit: video_downloader.py, then preprocess.py)")
    write_csv(out, COLUMNS, rows)
    name = f"WLASL{subset}" if subset else path.stem
    console.print(f"{name}: {len(rows)} instance(s) of {len(glosses)} gloss(es), {missing} video(s) missing"
                  + (" (listed in the prepare report as 'file not found')" if missing else "")
                  + f"; {boxes} with a signer box (data.prepare.roi=box crops it for RGB tasks)", soft_wrap=True)
    return out

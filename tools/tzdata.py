"""`just build-component`'s time-zone step: the IANA data of the `tzdata` package.

Fetches the pinned wheel with pip (checked against its SHA-256), and unpacks the zone
files it lists in `tzdata/zones` into `<cache>/tzdata-<version>-<hash>/`, linked from
`target/tzdata`; the guest build packs them into the component for `zoneinfo`.
<cache> is $PYEVAL_CACHE_DIR (the justfile sets it). A second run with nothing changed
does nothing.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "2025.2"
WHEEL = f"tzdata-{VERSION}-py2.py3-none-any.whl"
SHA256 = "1a403fada01ff9221ca8044d701868fa132215d84beb92242d9acd2147f667a8"
REPO = Path(__file__).resolve().parent.parent


def main():
    if not os.environ.get("PYEVAL_CACHE_DIR"):
        sys.exit("[pyeval] PYEVAL_CACHE_DIR is not set: run `just build-component`")
    cache = Path(os.environ["PYEVAL_CACHE_DIR"])
    out = cache / f"tzdata-{VERSION}-{SHA256[:16]}"
    if not (out / "zones").is_file():
        build(cache, out)
    link = REPO / "target" / "tzdata"
    link.parent.mkdir(exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == out.resolve():
            print(f"[pyeval] tzdata {VERSION} is up to date: {out}")
            return
        link.unlink()
    link.symlink_to(out)
    print(f"[pyeval] tzdata {VERSION} linked: {link} -> {out}")


def build(cache, out):
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = wheels / WHEEL
    if not wheel.is_file() or sha256(wheel) != SHA256:
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:
            pins.write(f"tzdata=={VERSION} --hash=sha256:{SHA256}\n")
            pins.flush()
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--require-hashes", "-r", pins.name,
                 "-d", str(wheels)],
                check=True)
    if sha256(wheel) != SHA256:
        sys.exit(f"[pyeval] {wheel} does not have the pinned SHA-256; update the pin in {__file__}")
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".tzdata-"))
    with zipfile.ZipFile(wheel) as archive:
        zones = archive.read("tzdata/zones").decode().split()
        for zone in zones:
            target = staging / "zoneinfo" / zone
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(f"tzdata/zoneinfo/{zone}"))
    (staging / "zones").write_text("\n".join(zones) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    print(f"[pyeval] tzdata {VERSION}: {len(zones)} zones unpacked into {out}")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    main()

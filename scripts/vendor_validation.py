"""Copy the measured-data tables into data/validation/ as xz files, with a checksum list.

    .venv/bin/python scripts/vendor_validation.py [SOURCE]   (default: ../shared/validation)

Each ``SOURCE/<dir>/<name>.csv`` becomes ``data/validation/<dir>/<name>.csv.xz`` (xz, preset
9e: 1.6 MB for the 8.9 MB of CSV, against 2.3 MB with gzip -9; the ``lzma`` reader is in
Python's standard library). ``SHA256SUMS`` lists the digest of every original, uncompressed
file, so a test can prove that what the loaders read is byte for byte what was measured.
The README and licence texts in data/validation/ are kept by hand (they carry the
attribution); this script does not touch them.
"""

from __future__ import annotations

import hashlib
import lzma
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "data" / "validation"
PRESET = 9 | lzma.PRESET_EXTREME


def vendor(source: Path) -> list[str]:
    """Compress every CSV under ``source`` into DEST; return the SHA256SUMS lines."""
    sums = []
    for csv_path in sorted(source.rglob("*.csv")):
        rel = csv_path.relative_to(source)
        raw = csv_path.read_bytes()
        out = DEST / rel.with_name(rel.name + ".xz")
        out.parent.mkdir(parents=True, exist_ok=True)
        # xz stores no time stamp or file name: the same input gives the same bytes.
        out.write_bytes(lzma.compress(raw, format=lzma.FORMAT_XZ, preset=PRESET))
        sums.append(f"{hashlib.sha256(raw).hexdigest()}  {rel.as_posix()}")
    return sums


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "validation"
    if not (source / "a100").is_dir():
        print(f"error: {source} has no a100/ folder (expected the measured-data folder)",
              file=sys.stderr)
        return 2
    sums = vendor(source)
    (DEST / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print(f"wrote {len(sums)} tables to {DEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

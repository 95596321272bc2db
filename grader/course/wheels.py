"""Packing files into the zips a course platform takes: wheels (PEP 427) and bundles.

Shared by the Gradescope bundle and the PrairieLearn question; a leaf of course/.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same drill makes the same zip


def record_hash(data: bytes) -> str:
    """The hash a wheel's RECORD gives a file (PEP 376)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def with_record(files: dict[str, bytes], info: str) -> dict[str, bytes]:
    """files plus the RECORD of the wheel whose .dist-info folder is info."""
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files.items())
    return {**files, f"{info}/RECORD": (record + f"{info}/RECORD,,\n").encode()}


def zip_files(files: dict[str, bytes], executable: tuple[str, ...] = ()) -> bytes:
    """A zip of files (name -> bytes), dated ZIP_DATE; those named in executable get mode 755."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buffer.getvalue()

"""Small, valid one-page PDFs made by code, for demo data and tests.

A hand-built PDF 1.4 file (Helvetica text, correct cross-reference table) keeps demo data free
of heavy rendering; WeasyPrint renders the real certificates elsewhere.
"""

from __future__ import annotations

import os


def _escape(text: str) -> str:
    # PDF literal strings: escape the delimiters; Helvetica's WinAnsi covers Latin-1 letters.
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return safe.encode("latin-1", "replace").decode("latin-1")


def make_pdf(
    title: str, lines: list[str] | tuple[str, ...] = (), *, total_size: int | None = None
) -> bytes:
    """A one-page A4 PDF showing title in bold and each line below it.

    With total_size, an unreferenced stream of random bytes makes the file exactly that long:
    a realistic large document (scans do not compress) for size limits and benchmarks.
    """
    text_ops = ["BT", "/F2 16 Tf", "56 780 Td", f"({_escape(title)}) Tj", "/F1 11 Tf"]
    for line in lines:
        text_ops += ["0 -22 Td", f"({_escape(line)}) Tj"]
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title (" + _escape(title).encode("latin-1") + b") /Producer (eBox) >>",
    ]
    if total_size is None:
        return _assemble(objects)
    # The offsets' digits grow with the filler, so aim a few bytes short and pad the trailer.
    length = total_size - len(_assemble([*objects, _filler(0)])) - 16
    if length < 0:
        raise ValueError(f"a PDF cannot be as small as {total_size} bytes")
    objects.append(_filler(length))
    return _assemble(objects, trailer_padding=total_size - len(_assemble(objects)))


def _filler(length: int) -> bytes:
    return b"<< /Length %d >>\nstream\n" % length + os.urandom(length) + b"\nendstream"


def _assemble(objects: list[bytes], trailer_padding: int = 0) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R%s >>\n" % (
        len(objects) + 1,
        b" " * trailer_padding,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)

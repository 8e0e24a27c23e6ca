"""A 10 MB document goes through in chunks: peak Python memory stays far below its size."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Callable

from ebox.storage.services import open_content, store_content

SIZE = 10 * 1024 * 1024
# Chunks, spooled buffers and cipher state: a few MiB at most. Holding the document even
# once more in memory would cross this bound.
PEAK_BOUND = SIZE // 2


def _peak_memory(action: Callable[[], object]) -> tuple[object, int]:
    """What `action` returns and the peak of memory it allocated while running."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        result = action()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return result, peak


def _sha256_in_chunks(stored) -> str:
    digest = hashlib.sha256()
    with open_content(
        storage_key=stored.storage_key,
        content_key=stored.content_key,
        content_key_id=stored.content_key_id,
    ) as opened:
        while chunk := opened.read(256 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_10_mb_document_round_trips_with_bounded_memory(app):
    document = os.urandom(SIZE)
    stored, store_peak = _peak_memory(lambda: store_content(document))
    read_sha256, open_peak = _peak_memory(lambda: _sha256_in_chunks(stored))

    assert stored.size_bytes == SIZE
    assert read_sha256 == stored.sha256 == hashlib.sha256(document).hexdigest()
    print(f"peak Python memory for {SIZE} bytes: store {store_peak}, open {open_peak}")
    assert store_peak < PEAK_BOUND
    assert open_peak < PEAK_BOUND


def test_a_10_mb_document_round_trips_through_s3(s3_app):
    document = os.urandom(SIZE)
    stored = store_content(document)
    assert _sha256_in_chunks(stored) == hashlib.sha256(document).hexdigest()

"""Encrypted storage: throughput and peak Python memory for storing and reading documents.

    .venv/bin/python benchmarks/storage.py [--size-mb 10] [--count 20]

Runs against the local backend in a temporary directory (the embedded default). Prints MB/s for
store (encrypt + write) and read (read + authenticate + decrypt), and the peak memory Python
allocated for one document, which must stay far below the document's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ebox import create_app
from ebox.config import Settings
from ebox.storage.services import delete_content, open_content, store_content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    size = int(args.size_mb * 1024 * 1024)

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "document.bin"
        source.write_bytes(os.urandom(size))
        settings = Settings(instance_path=Path(folder), storage_path=str(Path(folder) / "store"))
        settings.database_url = f"sqlite:///{folder}/unused.sqlite3"
        app = create_app(settings)
        with app.app_context():
            stored = []
            started = time.perf_counter()
            for _ in range(args.count):
                with source.open("rb") as stream:
                    stored.append(store_content(stream))
            store_seconds = time.perf_counter() - started

            started = time.perf_counter()
            for item in stored:
                with open_content(
                    storage_key=item.storage_key,
                    content_key=item.content_key,
                    content_key_id=item.content_key_id,
                ) as plain:
                    while plain.read(1024 * 1024):
                        pass
            read_seconds = time.perf_counter() - started

            tracemalloc.start()
            with source.open("rb") as stream:
                one = store_content(stream)
            store_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            with open_content(
                storage_key=one.storage_key,
                content_key=one.content_key,
                content_key_id=one.content_key_id,
            ) as plain:
                while plain.read(1024 * 1024):
                    pass
            read_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            for item in [*stored, one]:
                delete_content(item.storage_key)

    megabytes = size * args.count / 1024 / 1024
    print(f"documents: {args.count} x {args.size_mb:g} MB, local backend")
    print(
        f"store: {megabytes / store_seconds:8.1f} MB/s  ({args.count / store_seconds:.1f} docs/s)"
    )
    print(f"read:  {megabytes / read_seconds:8.1f} MB/s  ({args.count / read_seconds:.1f} docs/s)")
    print(
        f"peak Python memory for one document: store {store_peak / 1024 / 1024:.2f} MB, "
        f"read {read_peak / 1024 / 1024:.2f} MB"
    )


if __name__ == "__main__":
    main()

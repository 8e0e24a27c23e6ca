"""Proofs of delivery: signed PDFs rendered per second on one core, and peak memory.

    .venv/bin/python benchmarks/proofs.py [--count 200] [--warm-up 5] [--language nl]
        [--tsa-url http://127.0.0.1:8318/tsa] [--no-pin]

Makes a demo seal (root CA and seal certificate, RSA 3072) and one document's chain of three
sealed evidence XMLs (accepted, consigned, opened) in a temporary directory, then calls
ebox.evidence.proofs.render_proof in a loop in this process, as the worker does: Jinja
template, WeasyPrint with the three XMLs attached, PAdES seal with pyHanko. --warm-up proofs
first (templates, fonts and the seal's key loaded once), then --count measured ones. The
process is pinned to one CPU unless --no-pin. No database is used.

Prints proofs per second (wall clock and CPU time: the first suffers from neighbours on a
shared machine, the second does not), where the time goes, the size of a proof, and the peak
resident size of the process (ru_maxrss) after the warm-up and after the loop: the two must
stay close, or the loop leaks. --tsa-url adds an RFC 3161 timestamp (PAdES-B-T) from that
authority to every proof (e.g. `python tests/evidence/tsa_server.py --port 8318`).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ebox import create_app
from ebox.config import Settings
from ebox.evidence import proofs
from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.xml import EvidenceFacts, build_and_seal, digest

TARGET_PER_SECOND = 10
EVENTS = ("SubmissionAcceptance", "ContentConsignment", "ContentHandover")
# (label, attribute of ebox.evidence.proofs): what render_proof calls, timed where it looks it up.
STAGES = (
    ("read and check the chain", "read_chain"),
    ("Jinja template", "render_template"),
    ("WeasyPrint (HTML to PDF, attachments)", "_write_pdf"),
    ("pyHanko PAdES seal", "_seal_pdf"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="proofs measured (at least 1)")
    parser.add_argument("--warm-up", type=int, default=5, help="proofs made before measuring")
    parser.add_argument("--language", default="nl", choices=proofs.LANGUAGES)
    parser.add_argument("--tsa-url", default=None, help="timestamp every proof (PAdES-B-T)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        print(f"pinned to CPU {core}")

    with tempfile.TemporaryDirectory(prefix="ebox-bench-") as folder_name:
        folder = Path(folder_name)
        settings = Settings(
            instance_path=folder / "instance",
            storage_path=str(folder / "documents"),
            database_url=f"sqlite:///{folder}/unused.sqlite3",
        )
        app = create_app(settings)
        seal = demo_seal(folder / "seal")
        chain = evidence_chain(seal)
        make = functools.partial(
            proofs.render_proof,
            chain,
            language=args.language,
            version=1,
            seal=seal,
            tsa_url=args.tsa_url,
        )
        with app.app_context():
            for _ in range(args.warm_up):
                make()
            rss_after_warm_up = peak_rss_mb()
            stages: defaultdict[str, float] = defaultdict(float)
            size = 0
            with timed(stages):
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.count):
                    size = len(make())
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report(args, wall=wall, cpu=cpu, stages=stages, size=size, rss_after_warm_up=rss_after_warm_up)


def evidence_chain(seal: Seal) -> list[bytes]:
    """Three sealed evidence XMLs of one document, each naming the digest of the one before."""
    submitted = datetime.now(UTC) - timedelta(days=2)
    message_id = str(uuid.uuid4())
    chain: list[bytes] = []
    for position, event in enumerate(EVENTS):
        facts = EvidenceFacts(
            evidence_id=str(uuid.uuid4()),
            event=event,
            event_time=submitted + timedelta(hours=position * 7),
            issuer_name="eBox",
            issuer_url="https://ebox.example.test",
            sender_enterprise_number="0123456749",
            sender_name="Federale Pensioendienst",
            sender_application="eBox RegisteredMail v1",
            recipient_national_number="85073003328",
            platform_message_id=message_id,
            sender_ticket="PENSION-2026-000123",
            sender_sequence=3,
            submission_time=submitted,
            document_sha256="4f" * 32,
            previous_evidence_sha256=digest(chain[-1]) if chain else None,
            document_title="Beslissing over uw pensioen",
            document_file_name="pensioenbeslissing-2026.pdf",
        )
        chain.append(build_and_seal(facts, seal))
    return chain


@contextmanager
def timed(seconds: defaultdict[str, float]) -> Iterator[None]:
    """Add the time spent in each of STAGES to seconds while the block runs."""
    originals = {name: getattr(proofs, name) for _, name in STAGES}

    def timing(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started

        return measured

    for label, name in STAGES:
        setattr(proofs, name, timing(label, originals[name]))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(proofs, name, function)


def report(
    args: Any,
    *,
    wall: float,
    cpu: float,
    stages: defaultdict[str, float],
    size: int,
    rss_after_warm_up: float,
) -> None:
    kind = "PAdES-B-T, timestamped" if args.tsa_url else "PAdES-B-B"
    print(
        f"{args.count} proofs ({args.language}, 3 events, {kind}) in {wall:.2f} s "
        f"({cpu:.2f} s CPU), {size / 1024:.0f} KB each"
    )
    print(f"  {args.count / wall:6.1f} proofs/s (wall clock)")
    print(f"  {args.count / cpu:6.1f} proofs/s per CPU second (target >= {TARGET_PER_SECOND})")
    print(f"  {wall / args.count * 1000:6.1f} ms per proof, of which:")
    for label, _ in STAGES:
        share = stages[label] / wall * 100
        print(f"    {stages[label] / args.count * 1000:6.1f} ms  {share:4.1f}%  {label}")
    rest = wall - sum(stages.values())
    share = rest / wall * 100
    print(f"    {rest / args.count * 1000:6.1f} ms  {share:4.1f}%  the rest (garbage collection)")
    print(
        f"peak RSS: {rss_after_warm_up:.0f} MB after the warm-up, "
        f"{peak_rss_mb():.0f} MB after {args.count} proofs"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


if __name__ == "__main__":
    main()

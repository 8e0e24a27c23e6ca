"""Publish one PDF to a citizen's eBox through the EboxMessage v1 SOAP service.

    python examples/publish_example.py --url https://ebox.example --key backoffice-key.pem \
        --cert backoffice-cert.pem --recipient 85073003328 --pdf letter.pdf --message-type TAX

--url is the eBox base address (the WSDL is read from URL/soap/EboxMessage/v1?wsdl). The
certificate must be the one registered for your institution. Prints the id eBox gives the
message; a refusal prints its Fault code and message and exits with status 1.

--registered sends it as registered mail instead (RegisteredMail v1, for senders approved for
it) and also prints the sealed evidence of acceptance; examples/proof_example.py later fetches
the proof of delivery.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date
from pathlib import Path

import zeep

# Run as a script: ebox_client.py sits next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ebox_client import fault_code, make_client, publish_pdf, send_registered_pdf


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Publish a PDF to a citizen's eBox.")
    parser.add_argument("--url", required=True, help="eBox base URL, e.g. https://ebox.example")
    parser.add_argument("--key", required=True, type=Path, help="private key (PEM)")
    parser.add_argument("--cert", required=True, type=Path, help="registered certificate (PEM)")
    parser.add_argument("--recipient", required=True, help="national register number")
    parser.add_argument("--pdf", required=True, type=Path, help="the PDF document")
    parser.add_argument("--message-type", required=True, help="one of your message type codes")
    parser.add_argument("--title", help="title shown to the citizen (default: the file name)")
    parser.add_argument("--language", default="nl", choices=["nl", "fr", "de", "en"])
    parser.add_argument("--ticket", help="your reference, 1-25 characters (default: random)")
    parser.add_argument("--sequence", type=int, help="optional sequence, 0-99999")
    parser.add_argument("--expiration-date", type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument(
        "--registered", action="store_true", help="send as registered mail (RegisteredMail v1)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    service = "RegisteredMail" if args.registered else "EboxMessage"
    wsdl = f"{args.url.rstrip('/')}/soap/{service}/v1?wsdl"
    client = make_client(wsdl, args.key.read_bytes(), args.cert.read_bytes())
    ticket = args.ticket or uuid.uuid4().hex[:25]
    call = send_registered_pdf if args.registered else publish_pdf
    try:
        result = call(
            client,
            recipient=args.recipient,
            message_type=args.message_type,
            title=args.title or args.pdf.stem,
            pdf=args.pdf.read_bytes(),
            file_name=args.pdf.name,
            ticket=ticket,
            sequence=args.sequence,
            language=args.language,
            expiration_date=args.expiration_date,
        )
    except zeep.exceptions.Fault as fault:
        print(f"Refused: {fault_code(fault)}: {fault.message}", file=sys.stderr)
        return 1
    print(f"Published: EboxMessageId={result.EboxMessageId} ticket={ticket}")
    print(f"Expires after: {result.ExpirationDate}")
    print(f"Citizen has activated the eBox: {'yes' if result.CitizenActivated else 'no'}")
    if args.registered:
        evidence = result.SubmissionAcceptance
        print(f"Evidence: {evidence.Type} {evidence.EvidenceId} at {evidence.Time}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

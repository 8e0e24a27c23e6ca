"""Fetch the latest proof of delivery of a registered message and keep it in a folder.

    python examples/proof_example.py --url https://ebox.example --key backoffice-key.pem \\
        --cert backoffice-cert.pem --message-id EBOX_MESSAGE_ID --out proofs/

Writes the signed PDF and every sealed evidence XML, byte for byte as eBox made them, and
prints their paths. Check them offline with `flask --app app ebox evidence verify FILE ...`
(docs/integration/registered-mail.md). The proof is made a few seconds after each event: until
then the answer is PROOF_NOT_READY (exit status 1): ask again a minute later.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zeep

# Run as a script: ebox_client.py sits next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ebox_client import fault_code, make_client, save_proof_of_delivery


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Save the proof of a registered message.")
    parser.add_argument("--url", required=True, help="eBox base URL, e.g. https://ebox.example")
    parser.add_argument("--key", required=True, type=Path, help="private key (PEM)")
    parser.add_argument("--cert", required=True, type=Path, help="registered certificate (PEM)")
    parser.add_argument("--message-id", required=True, help="the EboxMessageId eBox answered")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files to")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    wsdl = f"{args.url.rstrip('/')}/soap/RegisteredMail/v1?wsdl"
    client = make_client(wsdl, args.key.read_bytes(), args.cert.read_bytes())
    try:
        saved = save_proof_of_delivery(client, args.message_id, args.out)
    except zeep.exceptions.Fault as fault:
        print(f"Refused: {fault_code(fault)}: {fault.message}", file=sys.stderr)
        return 1
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

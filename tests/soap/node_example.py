"""Running examples/node/publish_example.js (node-soap, default WS-Security) from a test.

Its packages are installed by `scripts/setup --dev` (npm ci in examples/node)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.soap.wss_helpers import Identity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node" / "publish_example.js"


def run_node_example(
    url: str, identity: Identity, folder: Path, pdf: bytes, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """Publish pdf to url, signed with identity's key; arguments are the script's others."""
    assert (EXAMPLE.parent / "node_modules" / "soap").is_dir(), "run: scripts/setup --dev"
    (folder / "key.pem").write_bytes(identity.key_pem)
    (folder / "cert.pem").write_bytes(identity.cert_pem)
    (folder / "letter.pdf").write_bytes(pdf)
    command = ["node", str(EXAMPLE), "--url", url, "--key", str(folder / "key.pem")]
    command += ["--cert", str(folder / "cert.pem"), "--pdf", str(folder / "letter.pdf")]
    return subprocess.run(
        [*command, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_without_proxies(),
    )


def _without_proxies() -> dict[str, str]:
    """Only the live server on loopback is contacted, whatever proxy the machine names."""
    return {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}

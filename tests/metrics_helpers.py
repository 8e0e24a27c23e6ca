"""Reading eBox's /metrics as Prometheus does, in the text format."""

from __future__ import annotations

from flask.testing import FlaskClient


def scrape(client: FlaskClient) -> str:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    return answer.get_data(as_text=True)


def sample_value(exposed: str, sample: str) -> float:
    """A sample's value in the text format, 0 when it is not there yet."""
    for line in exposed.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0

"""The installable portal: its manifest, and a service worker that caches nothing."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_the_manifest_is_linked_from_every_page_and_describes_the_portal(
    client: FlaskClient,
) -> None:
    page = client.get("/auth/login").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert manifest["theme_color"] == "#16325c"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_the_service_worker_shows_pushes_and_handles_no_fetch(client: FlaskClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    script = response.get_data(as_text=True)
    assert 'addEventListener("push"' in script
    assert 'addEventListener("notificationclick"' in script
    assert '"fetch"' not in script and "caches." not in script

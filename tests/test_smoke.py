from tests.factories import create_citizen, create_document, login
from tests.soap.wss_helpers import REDIS_URL
from tests.storage.helpers import changed_settings


def test_healthz_answers_ok(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_database_storage_and_redis(app, client):
    with changed_settings(app, redis_url=REDIS_URL):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "storage": "ok", "redis": "ok"}


def test_readyz_is_unavailable_while_the_embedded_redis_is_not_running(app, client):
    # The test settings name no Redis URL, and no worker started the embedded one.
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"] == "failed"


def test_a_published_document_reads_back_decrypted(app):
    from ebox.storage.services import open_content

    citizen = create_citizen()
    from ebox.demo.pdf import make_pdf

    pdf = make_pdf("Smoke test", ["hello"])
    document = create_document(citizen, content=pdf)
    stream = open_content(
        storage_key=document.storage_key,
        content_key=document.content_key,
        content_key_id=document.content_key_id,
    )
    assert stream.read() == pdf


def test_login_helper_gives_a_session(client):
    citizen = create_citizen()
    login(client, citizen)
    assert client.get("/").status_code == 200

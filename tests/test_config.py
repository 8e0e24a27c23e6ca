import base64
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ebox import create_app
from ebox.config import Settings
from ebox.errors import ConfigError
from ebox.log_config import mask_national_numbers
from ebox.push import keys
from tests.pki import Issued, issue, make_ca

# Real files for production's key settings: eBox reads and checks them at start.
PRODUCTION_SEAL_ROOT = make_ca("Production seal root")
PRODUCTION_PKI = {
    "sp": make_ca("Production SP"),
    "seal": issue(PRODUCTION_SEAL_ROOT, "Production seal"),
    "seal_root": PRODUCTION_SEAL_ROOT,
}


def write_pem(path: Path, *pems: bytes) -> str:
    path.write_bytes(b"".join(pems))
    return str(path)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    """The SAML SP's key pairs and a seal under its root, as production's files hold them."""
    seal_root = make_ca("Seal root")
    return {
        "sp": make_ca("eBox SP 2025"),
        "sp_next": make_ca("eBox SP 2026"),
        "sp_expired": make_ca("eBox SP 2020", valid_for=timedelta(minutes=-3)),
        "seal_root": seal_root,
        "seal": issue(seal_root, "eBox seal"),
        "seal_expired": issue(seal_root, "eBox seal 2020", valid_for=timedelta(minutes=-3)),
        "other_root": make_ca("Another root"),
    }


def key_files(folder: Path, pki: dict[str, Issued]) -> dict[str, str]:
    """Production's key and certificate settings, pointing to real files in folder."""
    return {
        "saml_sp_key": write_pem(folder / "sp-key.pem", pki["sp"].key_pem),
        "saml_sp_cert": write_pem(folder / "sp-cert.pem", pki["sp"].cert_pem),
        "seal_key": write_pem(folder / "seal-key.pem", pki["seal"].key_pem),
        "seal_cert": write_pem(folder / "seal-cert.pem", pki["seal"].cert_pem),
        "seal_ca_cert": write_pem(folder / "seal-root.pem", pki["seal_root"].cert_pem),
    }


def production_settings(tmp_path, **changes):
    settings = Settings(
        env="production",
        instance_path=tmp_path,
        secret_key="s" * 40,
        master_key="cHJvZHVjdGlvbi1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=",
        database_url="postgresql+psycopg://ebox@db/ebox",
        saml_idp="federation",
        saml_idp_metadata="/etc/ebox/idp.xml",
        smtp_url="smtp://mail.internal:25",
        cookie_secure=True,
        **key_files(tmp_path, PRODUCTION_PKI),
    )
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


def test_production_settings_without_demo_parts_pass_the_check(tmp_path):
    production_settings(tmp_path).check()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"saml_idp": "demo"}, "EBOX_SAML_IDP is 'demo'"),
        ({"secret_key": "dev-secret-key-not-for-production"}, "EBOX_SECRET_KEY"),
        ({"master_key": Settings().master_key}, "EBOX_MASTER_KEY"),
        ({"database_url": "sqlite:///x.db"}, "SQLite"),
        ({"saml_sp_key": ""}, "EBOX_SAML_SP_KEY"),
        ({"master_key": "dG9vIHNob3J0"}, "exactly 32 bytes"),
        ({"tsa_url": "https://tsa.internal/tsr"}, "EBOX_TSA_CA_CERT"),
    ],
)
def test_production_refuses_to_start_with_demo_settings_and_says_why(tmp_path, change, reason):
    with pytest.raises(ConfigError, match=reason):
        create_app(production_settings(tmp_path, **change))


def test_production_registers_no_demo_blueprints(tmp_path):
    app = create_app(production_settings(tmp_path))
    assert not any(rule.rule.startswith("/demo") for rule in app.url_map.iter_rules())


def test_national_numbers_are_masked_in_log_lines():
    line = mask_national_numbers("login of 85073003328 and 85.07.30-033.28 ok")
    assert "85073003328" not in line and "85.07.30" not in line
    assert line.count("*******3328") == 2


def test_the_wsgi_entry_point_refuses_production_with_defaults_and_says_why(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "EBOX_ENV": "production", "EBOX_INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import app"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "eBox cannot start" in result.stderr
    assert "EBOX_SAML_IDP is 'demo'" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_come_from_ebox_variables_with_their_declared_types(tmp_path):
    settings = Settings.from_environment(
        {
            "EBOX_INSTANCE_PATH": str(tmp_path),
            "EBOX_SESSION_IDLE_MINUTES": "30",
            "EBOX_STORAGE": "s3",
            "EBOX_COOKIE_SECURE": "yes",
            "EBOX_PUBLIC_URL": "https://ebox.example/",
        }
    )
    assert settings.session_idle_minutes == 30
    assert settings.storage_backend == "s3"
    assert settings.cookie_secure is True
    assert settings.public_url == "https://ebox.example"
    # Defaults that follow from other settings.
    assert settings.database_url == f"sqlite:///{tmp_path / 'ebox.sqlite3'}"
    assert settings.storage_path == str(tmp_path / "documents")
    assert settings.saml_sp_entity_id == "https://ebox.example/auth/saml/metadata"


def test_secure_cookies_are_on_in_production_unless_turned_off():
    assert Settings.from_environment({"EBOX_ENV": "production"}).cookie_secure is True
    assert Settings.from_environment({}).cookie_secure is False
    off = Settings.from_environment({"EBOX_ENV": "production", "EBOX_COOKIE_SECURE": "0"})
    assert off.cookie_secure is False


def test_a_number_setting_that_is_not_a_number_is_refused_by_name():
    with pytest.raises(ConfigError, match="EBOX_INBOX_PAGE_SIZE must be a whole number"):
        Settings.from_environment({"EBOX_INBOX_PAGE_SIZE": "twenty"})


def test_the_redis_timeout_takes_fractions_of_a_second():
    assert Settings.from_environment({}).redis_timeout_seconds == 1.0
    assert (
        Settings.from_environment({"EBOX_REDIS_TIMEOUT_SECONDS": "0.5"}).redis_timeout_seconds
        == 0.5
    )
    with pytest.raises(ConfigError, match="EBOX_REDIS_TIMEOUT_SECONDS must be a number"):
        Settings.from_environment({"EBOX_REDIS_TIMEOUT_SECONDS": "one"})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"env": "staging"}, "EBOX_ENV must be one of"),
        ({"storage_backend": "ftp"}, "EBOX_STORAGE must be one of"),
        ({"alert_hour": 24}, "EBOX_ALERT_HOUR must be from 0 to 23"),
        ({"session_max_hours": 0}, "EBOX_SESSION_MAX_HOURS must be from 1"),
        ({"redis_timeout_seconds": 0}, "EBOX_REDIS_TIMEOUT_SECONDS must be from 0.1 to 60"),
        ({"max_message_bytes": 1024}, "EBOX_MAX_MESSAGE_BYTES .* must be at least"),
    ],
)
def test_values_out_of_their_range_are_refused_by_variable_name(tmp_path, change, reason):
    settings = Settings(instance_path=tmp_path)
    for name, value in change.items():
        setattr(settings, name, value)
    with pytest.raises(ConfigError, match=reason):
        settings.check()


KEY_2024 = "MjAyNC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWV4YWM="
KEY_2026 = "MjAyNi1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWV4YWM="


def test_the_single_master_key_is_one_key_under_its_id(tmp_path):
    settings = production_settings(tmp_path, master_key_id="2024", master_key=KEY_2024)
    settings.check()
    assert settings.master_key_ring() == {"2024": KEY_2024}
    assert settings.current_master_key == KEY_2024


def test_several_master_keys_by_id_with_the_current_one_named(tmp_path):
    settings = production_settings(
        tmp_path,
        master_key=Settings().master_key,
        master_keys=f" 2024:{KEY_2024} , 2026:{KEY_2026}",
        master_key_id="2026",
    )
    settings.check()
    assert settings.master_key_ring() == {"2024": KEY_2024, "2026": KEY_2026}
    assert settings.current_master_key == KEY_2026


@pytest.mark.parametrize(
    ("keys", "current", "reason"),
    [
        (f"2024:{KEY_2024}", "2026", "EBOX_MASTER_KEY_ID is '2026', which EBOX_MASTER_KEYS does"),
        (f"2024:{KEY_2024},2024:{KEY_2026}", "2024", "names master key '2024' twice"),
        (f"2024:{KEY_2024},2026:c2hvcnQ=", "2024", "key '2026' must be base64 of exactly 32"),
        (f"2024:{KEY_2024},2026:not base64!", "2024", "key '2026' is not valid base64"),
        (f"2024:{KEY_2024},{KEY_2026}", "2024", "entry 2 is not ID:BASE64"),
        (f"20 24:{KEY_2024}", "20 24", "entry 1's id is '20 24'"),
        (f"2024:{KEY_2024},:{KEY_2026}", "2024", "entry 2 is not ID:BASE64"),
    ],
)
def test_master_keys_that_cannot_be_used_are_refused_at_start(tmp_path, keys, current, reason):
    settings = production_settings(
        tmp_path, master_key=Settings().master_key, master_keys=keys, master_key_id=current
    )
    with pytest.raises(ConfigError, match=reason) as refused:
        create_app(settings)
    assert KEY_2024 not in str(refused.value) and KEY_2026 not in str(refused.value)


def test_both_master_key_settings_at_once_are_refused(tmp_path):
    settings = production_settings(tmp_path, master_keys=f"2024:{KEY_2024}", master_key_id="2024")
    with pytest.raises(ConfigError, match="EBOX_MASTER_KEY and EBOX_MASTER_KEYS are both set"):
        settings.check()


def test_production_refuses_the_default_key_among_several(tmp_path):
    settings = production_settings(
        tmp_path,
        master_key=Settings().master_key,
        master_keys=f"k1:{Settings().master_key},2026:{KEY_2026}",
        master_key_id="2026",
    )
    with pytest.raises(ConfigError, match="EBOX_MASTER_KEYS holds the embedded default key"):
        settings.check()


def test_several_master_keys_come_from_the_environment(tmp_path):
    settings = Settings.from_environment(
        {"EBOX_MASTER_KEYS": f"2024:{KEY_2024},2026:{KEY_2026}", "EBOX_MASTER_KEY_ID": "2026"}
    )
    assert settings.master_key_ring() == {"2024": KEY_2024, "2026": KEY_2026}


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (lambda d, k: {"saml_sp_key": str(d / "missing.pem")}, "EBOX_SAML_SP_KEY: cannot read"),
        (
            lambda d, k: {"saml_sp_key": write_pem(d / "k.pem", k["sp_next"].key_pem)},
            "EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT: the private key is not the key of",
        ),
        (
            lambda d, k: {"saml_sp_cert": write_pem(d / "c.pem", b"not a certificate")},
            "EBOX_SAML_SP_CERT: .* holds no PEM certificate",
        ),
        (
            lambda d, k: {
                "saml_sp_key": write_pem(d / "k.pem", k["sp_expired"].key_pem),
                "saml_sp_cert": write_pem(d / "c.pem", k["sp_expired"].cert_pem),
            },
            "EBOX_SAML_SP_CERT: the certificate 'CN=eBox SP 2020,O=eBox tests' .* expired on",
        ),
        (lambda d, k: {"saml_sp_cert": ""}, "EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT go together"),
        (
            lambda d, k: {"saml_sp_next_cert": str(d / "missing.pem")},
            "EBOX_SAML_SP_NEXT_CERT: cannot read",
        ),
        (
            lambda d, k: {"saml_sp_next_cert": write_pem(d / "n.pem", k["sp_expired"].cert_pem)},
            "EBOX_SAML_SP_NEXT_CERT: the certificate .* expired on",
        ),
        (
            lambda d, k: {"saml_sp_next_cert": write_pem(d / "n.pem", k["sp"].cert_pem)},
            "EBOX_SAML_SP_NEXT_CERT is the certificate of EBOX_SAML_SP_CERT",
        ),
        (
            lambda d, k: {"seal_key": write_pem(d / "k.pem", k["sp"].key_pem)},
            "EBOX_SEAL_KEY and EBOX_SEAL_CERT: the private key is not the key of",
        ),
        (
            lambda d, k: {
                "seal_key": write_pem(d / "k.pem", k["seal_expired"].key_pem),
                "seal_cert": write_pem(d / "c.pem", k["seal_expired"].cert_pem),
            },
            "EBOX_SEAL_CERT: the certificate 'CN=eBox seal 2020,O=eBox tests' .* expired on",
        ),
        (
            lambda d, k: {"seal_ca_cert": write_pem(d / "r.pem", k["other_root"].cert_pem)},
            "EBOX_SEAL_CERT: the certificate 'CN=eBox seal,O=eBox tests' .* does not chain to "
            "EBOX_SEAL_CA_CERT",
        ),
        (
            lambda d, k: {"seal_previous_certs": write_pem(d / "p.pem", k["seal"].cert_pem)},
            "EBOX_SEAL_PREVIOUS_CERTS holds the current seal certificate",
        ),
        (
            lambda d, k: {
                "seal_previous_certs": write_pem(
                    d / "p.pem", issue(k["other_root"], "Someone's seal").cert_pem
                )
            },
            "EBOX_SEAL_PREVIOUS_CERTS: the certificate 'CN=Someone's seal,O=eBox tests' .* "
            "chains to neither EBOX_SEAL_CA_CERT nor a root of EBOX_SEAL_PREVIOUS_CA_CERTS",
        ),
        (
            lambda d, k: {"seal_previous_ca_certs": str(d / "missing.pem")},
            "EBOX_SEAL_PREVIOUS_CA_CERTS: cannot read",
        ),
        (
            lambda d, k: {"seal_ca_cert": ""},
            "EBOX_SEAL_KEY, EBOX_SEAL_CERT and EBOX_SEAL_CA_CERT go",
        ),
    ],
)
def test_key_files_that_cannot_serve_are_refused_at_start(tmp_path, pki, files, reason):
    settings = Settings(instance_path=tmp_path, **key_files(tmp_path, pki))
    settings.check()  # the files as they should be
    for name, value in files(tmp_path, pki).items():
        setattr(settings, name, value)

    with pytest.raises(ConfigError, match=reason):
        create_app(settings)


def test_earlier_seal_certificates_may_have_expired_and_have_another_root(tmp_path, pki):
    earlier_root = make_ca("Earlier seal root")
    earlier = [
        issue(earlier_root, "eBox seal 2020", valid_for=timedelta(minutes=-3)),
        pki["seal_expired"],
    ]
    settings = Settings(
        instance_path=tmp_path,
        seal_previous_certs=write_pem(tmp_path / "p.pem", *(item.cert_pem for item in earlier)),
        seal_previous_ca_certs=write_pem(tmp_path / "r.pem", earlier_root.cert_pem),
        **key_files(tmp_path, pki),
    )
    settings.check()

    settings.seal_previous_ca_certs = ""  # the other root is needed
    with pytest.raises(ConfigError, match="chains to neither EBOX_SEAL_CA_CERT"):
        settings.check()


def vapid_key_file(folder: Path, mode: int = 0o600, curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    path = folder / "vapid.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(mode)
    return str(path)


def test_pushes_are_on_by_default_except_in_production():
    assert Settings.from_environment({}).push_enabled is True
    assert Settings.from_environment({"EBOX_ENV": "production"}).push_enabled is False
    on = Settings.from_environment({"EBOX_ENV": "production", "EBOX_PUSH": "1"})
    assert on.push_enabled is True
    assert Settings.from_environment({"EBOX_PUSH": "0"}).push_enabled is False


def test_production_with_pushes_needs_its_own_key_and_subject(tmp_path):
    key = vapid_key_file(tmp_path)
    subject = "mailto:operations@ebox.example"
    production_settings(
        tmp_path, push_enabled=True, push_vapid_key=key, push_vapid_subject=subject
    ).check()
    with pytest.raises(ConfigError, match="EBOX_PUSH is on without EBOX_PUSH_VAPID_KEY"):
        production_settings(tmp_path, push_enabled=True, push_vapid_subject=subject).check()
    with pytest.raises(ConfigError, match="EBOX_PUSH_VAPID_SUBJECT is the default"):
        production_settings(tmp_path, push_enabled=True, push_vapid_key=key).check()


@pytest.mark.parametrize(
    ("mode", "curve", "reason"),
    [
        (0o644, None, "may be read by any user"),
        (0o600, ec.SECP384R1(), "not a P-256"),
    ],
)
def test_production_refuses_a_push_key_that_cannot_serve(tmp_path, mode, curve, reason):
    settings = production_settings(
        tmp_path,
        push_enabled=True,
        push_vapid_key=vapid_key_file(tmp_path, mode, curve),
        push_vapid_subject="https://ebox.example/contact",
    )
    with pytest.raises(ConfigError, match=reason):
        settings.check()


def test_the_push_subject_is_a_mailto_address_or_an_https_page(tmp_path):
    with pytest.raises(ConfigError, match="EBOX_PUSH_VAPID_SUBJECT must be a mailto"):
        Settings(instance_path=tmp_path, push_vapid_subject="ops@ebox.example").check()


def test_the_allowed_push_services_are_host_names():
    settings = Settings.from_environment(
        {"EBOX_PUSH_SERVICES": "push.example.org, *.Push.Example.NET"}
    )
    assert settings.push_services == ("push.example.org", "*.push.example.net")
    for wrong in ("https://push.example.org", "10.0.0.1", "*", "push.example.org:443"):
        with pytest.raises(ConfigError, match="EBOX_PUSH_SERVICES must be host names"):
            Settings.from_environment({"EBOX_PUSH_SERVICES": wrong})


def test_the_embedded_push_key_is_made_once_readable_by_its_owner_only(tmp_path):
    settings = Settings(instance_path=tmp_path)
    public = keys.public_key(settings)
    path = tmp_path / "push" / "vapid-private.pem"
    assert path.stat().st_mode & 0o077 == 0
    assert keys.public_key(Settings(instance_path=tmp_path)) == public
    assert len(base64.urlsafe_b64decode(public + "=")) == 65

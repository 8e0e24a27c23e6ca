import pytest

from ebox import create_app
from ebox.config import ConfigError, Settings
from ebox.log_config import mask_national_numbers


def production_settings(tmp_path, **changes):
    settings = Settings(
        env="production",
        instance_path=tmp_path,
        secret_key="s" * 40,
        master_key="cHJvZHVjdGlvbi1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=",
        database_url="postgresql+psycopg://ebox@db/ebox",
        saml_idp="federation",
        saml_idp_metadata="/etc/ebox/idp.xml",
        saml_sp_key="/etc/ebox/sp-key.pem",
        saml_sp_cert="/etc/ebox/sp-cert.pem",
        seal_key="/etc/ebox/seal-key.pem",
        seal_cert="/etc/ebox/seal-cert.pem",
        seal_ca_cert="/etc/ebox/seal-root.pem",
        smtp_url="smtp://mail.internal:25",
        cookie_secure=True,
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

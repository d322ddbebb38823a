"""Report mail goes only to a server whose certificate checks out, before any password is sent:
a local aiosmtpd with TLS (STARTTLS or SMTPS) and AUTH, a self-signed certificate refused, one
the config trusts accepted."""

from __future__ import annotations

import ssl

import pytest

from common.configkit import ConfigError
from devkit.pki import make_pki, self_signed
from devkit.receivers import SMTPReceiver
from server.reports import config as reports_config
from server.reports.schedule import send_mail

pytestmark = pytest.mark.integration

PASSWORD = "smtp-s3cret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    return {**make_pki(d), "self_signed": self_signed(d)}


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "smtp-password"
    path.write_text(PASSWORD + "\n")
    return path


def mail_config(receiver: SMTPReceiver, password_file, **over):
    table = {"host": "127.0.0.1", "port": receiver.port, "sender": "printfarm@example.org",
             "to": ["staff@example.org"], "username": "printfarm", "password_file": str(password_file),
             "timeout": 5, **over}
    return reports_config.load({"mail": table}).mail


def a_message():
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "printfarm report", "printfarm@example.org", "staff@example.org"
    msg.set_content("report attached")
    return msg


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs) -> SMTPReceiver:
        made.append(SMTPReceiver(password=PASSWORD, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def test_starttls_to_a_self_signed_server_is_refused_before_the_password_leaves(certs, receivers, password_file):
    own = certs["self_signed"]
    server = receivers(cert=own["cert"], key=own["key"])
    with pytest.raises(ssl.SSLCertVerificationError):
        send_mail(a_message(), mail_config(server, password_file))
    assert server.logins == [] and server.mails == []
    # The same server, once the config trusts its certificate: the login and the mail go through.
    send_mail(a_message(), mail_config(server, password_file, ca_file=str(own["cert"])))
    assert server.logins == [("printfarm", PASSWORD)] and len(server.mails) == 1


def test_smtps_checks_the_certificate_against_the_configured_ca(certs, receivers, password_file):
    server = receivers(cert=certs["server_cert"], key=certs["server_key"], implicit_tls=True)
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know this one
        send_mail(a_message(), mail_config(server, password_file, smtps=True))
    assert server.logins == [] and server.mails == []
    send_mail(a_message(), mail_config(server, password_file, smtps=True, ca_file=str(certs["ca"])))
    assert server.logins == [("printfarm", PASSWORD)] and len(server.mails) == 1


def test_starttls_with_a_trusted_ca_is_accepted(certs, receivers, password_file):
    server = receivers(cert=certs["server_cert"], key=certs["server_key"])
    send_mail(a_message(), mail_config(server, password_file, ca_file=str(certs["ca"])))
    assert server.logins == [("printfarm", PASSWORD)] and len(server.mails) == 1


def test_a_password_without_tls_is_a_config_error(password_file):
    with pytest.raises(ConfigError) as info:
        reports_config.load({"mail": {"host": "127.0.0.1", "sender": "a@b", "to": ["c@d"], "username": "u",
                                      "password_file": str(password_file), "starttls": False}})
    assert "reports.mail.password_file" in str(info.value) and "starttls" in str(info.value)

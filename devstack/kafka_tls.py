"""Secured listeners for the local Kafka broker: a CA and certificates made at start, SCRAM users.

`SecureListeners` describes what `KafkaBroker(secure=...)` opens next to its PLAINTEXT listener
(which stays for inter-broker traffic and the session's own set-up):

- `SASL_SSL`: SASL over TLS with SCRAM-SHA-512 and PLAIN (what Confluent Cloud, Aiven and
  self-run clusters use); the SCRAM users are written by `kafka-storage format --add-scram`;
- `OAUTH`: SASL_SSL with OAUTHBEARER checked by Kafka's built-in unsecured JWS validator, so
  tests can prove the token callback path that MSK IAM takes (an MSK token cannot be checked
  outside AWS);
- `MTLS`: TLS with a client certificate required (ssl.client.auth=required).

Certificates are PEM files in the broker's work dir: a CA, the broker's (SAN localhost and
127.0.0.1, so librdkafka's default hostname check passes), a client's signed by the same CA,
and a second, unrelated CA for tests of a failed verification.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    broker_keystore: Path  # key + certificate chain, Kafka's PEM key store
    client_cert: Path
    client_key: Path
    other_ca: Path  # signs nothing the broker uses: a client trusting it must fail


@dataclass
class SecureListeners:
    """What to open, and the users SCRAM/PLAIN accept (name -> password)."""

    users: dict[str, str] = field(
        default_factory=lambda: {
            "lambda-trigger": secrets.token_urlsafe(16),
            "datahub": secrets.token_urlsafe(16),
        }
    )
    sasl_ssl_port: int = 0
    oauth_port: int = 0
    mtls_port: int = 0
    tls: TlsFiles | None = None

    def server_properties(self) -> dict[str, str]:
        assert self.tls is not None, "certificates are made at start"
        plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in self.users.items())
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.ca),
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
            # No server callback handler: Kafka's unsecured JWS validator checks the tokens.
            "listener.name.oauth.oauthbearer.sasl.jaas.config": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
            ),
            # KIP-368, as MSK does: a session ends when its token expires unless the client
            # re-authenticates with a fresh one, so a client that never refreshes is cut off.
            "listener.name.oauth.connections.max.reauth.ms": "3600000",
            "listener.name.mtls.ssl.client.auth": "required",
        }

    def listeners(self) -> list[tuple[str, str, int]]:
        """(listener name, security protocol, port) of the secured listeners."""
        return [
            ("SASL_SSL", "SASL_SSL", self.sasl_ssl_port),
            ("OAUTH", "SASL_SSL", self.oauth_port),
            ("MTLS", "SSL", self.mtls_port),
        ]

    def scram_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that create the SCRAM-SHA-512 users."""
        args: list[str] = []
        for name, password in self.users.items():
            args += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return args

    def scram_config(self, user: str) -> dict[str, str]:
        """librdkafka properties of a SCRAM-SHA-512 client of the SASL_SSL listener."""
        assert self.tls is not None, "certificates are made at start"
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": self.users[user],
            "ssl.ca.location": str(self.tls.ca),
        }

    def client_env(self, user: str = "lambda-trigger") -> dict[str, str]:
        """The consumer's named settings for the SASL_SSL listener, as a pod sets them."""
        assert self.tls is not None, "certificates are made at start"
        return {
            "LAMBDA_TRIGGER_KAFKA_AUTH": "scram-sha-512",
            "LAMBDA_TRIGGER_KAFKA_SASL_USERNAME": user,
            "LAMBDA_TRIGGER_KAFKA_SASL_PASSWORD": self.users[user],
            "LAMBDA_TRIGGER_KAFKA_SSL_CA_LOCATION": str(self.tls.ca),
        }

    def bootstrap(self, host: str, listener: str) -> str:
        port = {"SASL_SSL": self.sasl_ssl_port, "OAUTH": self.oauth_port, "MTLS": self.mtls_port}
        return f"{host}:{port[listener]}"


def _key() -> _Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[_Key, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: _Key, ca_cert: x509.Certificate, common_name: str, *, server: bool, host: str
) -> tuple[_Key, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem_key(key: _Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_tls_files(directory: Path, host: str) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("devstack Kafka test CA")
    broker_key, broker_cert = _leaf(ca_key, ca_cert, "localhost", server=True, host=host)
    client_key, client_cert = _leaf(ca_key, ca_cert, "lambda-trigger", server=False, host=host)
    _other_key, other_cert = _ca("devstack unrelated CA")
    files = TlsFiles(
        ca=directory / "ca.pem",
        broker_keystore=directory / "broker-keystore.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_ca=directory / "other-ca.pem",
    )
    files.ca.write_bytes(_pem_cert(ca_cert))
    files.broker_keystore.write_bytes(
        _pem_key(broker_key) + _pem_cert(broker_cert) + _pem_cert(ca_cert)
    )
    files.client_cert.write_bytes(_pem_cert(client_cert))
    files.client_key.write_bytes(_pem_key(client_key))
    files.client_key.chmod(0o600)
    files.other_ca.write_bytes(_pem_cert(other_cert))
    return files

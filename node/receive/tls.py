"""TLS contexts for DICOM TLS (the SCP side), from the settings."""

from __future__ import annotations

import ssl

from node.config import ScpTlsSettings


def server_context(tls: ScpTlsSettings) -> ssl.SSLContext | None:
    if not tls.enabled:
        return None
    assert tls.certificate is not None and tls.private_key is not None  # checked by the settings
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.certificate), str(tls.private_key))
    if tls.ca_certificates is not None:
        ctx.load_verify_locations(str(tls.ca_certificates))
    ctx.verify_mode = ssl.CERT_REQUIRED if tls.require_client_certificate else ssl.CERT_OPTIONAL
    if tls.ca_certificates is None:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx

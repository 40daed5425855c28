"""TLS in the sandbox is the host's.

A connection to an HTTPS URL is made, and its certificate verified, by the host (against
the public roots and any CA the operator trusts), whatever a context here asks for: this
module keeps the names and the shape of the standard `ssl` so that `http.client`,
`urllib.request` and the packages built on them work unchanged, and `wrap_socket` only
marks a connection of the host's (`_pyeval_network.HostSocket`) as HTTPS. There is no
other TLS: wrapping any other socket, server-side TLS and client certificates raise
`SSLError`.
"""

import base64
import enum
import os
from collections import namedtuple

# Packages check the name (urllib3 warns unless it starts "OpenSSL "): the version the
# host's TLS stands in for, then what it is.
OPENSSL_VERSION = "OpenSSL 3.0.0 compatible: TLS by the pyeval host (rustls)"
OPENSSL_VERSION_INFO = (3, 0, 0, 0, 0)
OPENSSL_VERSION_NUMBER = 0x30000000
HAS_SNI = True
HAS_ALPN = True
HAS_ECDH = True
HAS_NPN = False
HAS_NEVER_CHECK_COMMON_NAME = True
HAS_SSLv2 = HAS_SSLv3 = HAS_TLSv1 = HAS_TLSv1_1 = False
HAS_TLSv1_2 = HAS_TLSv1_3 = True
HAS_PSK = False
HAS_PHA = False
CHANNEL_BINDING_TYPES = []
PEM_HEADER = "-----BEGIN CERTIFICATE-----"
PEM_FOOTER = "-----END CERTIFICATE-----"


class SSLError(OSError):
    """A TLS failure (the host's, or a use of TLS the sandbox does not have)."""

    @property
    def reason(self):
        return self.args[1] if len(self.args) > 1 else None

    library = None


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    verify_code = None
    verify_message = None


CertificateError = SSLCertVerificationError


class VerifyMode(enum.IntEnum):
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2


class VerifyFlags(enum.IntFlag):
    VERIFY_DEFAULT = 0
    VERIFY_CRL_CHECK_LEAF = 0x4
    VERIFY_CRL_CHECK_CHAIN = 0xC
    VERIFY_X509_STRICT = 0x20
    VERIFY_ALLOW_PROXY_CERTS = 0x40
    VERIFY_X509_TRUSTED_FIRST = 0x8000
    VERIFY_X509_PARTIAL_CHAIN = 0x80000


class Options(enum.IntFlag):
    OP_ALL = 0x80000050
    OP_NO_SSLv2 = 0
    OP_NO_SSLv3 = 0x2000000
    OP_NO_TLSv1 = 0x4000000
    OP_NO_TLSv1_1 = 0x10000000
    OP_NO_TLSv1_2 = 0x8000000
    OP_NO_TLSv1_3 = 0x20000000
    OP_NO_COMPRESSION = 0x20000
    OP_NO_TICKET = 0x4000
    OP_NO_RENEGOTIATION = 0x40000000
    OP_CIPHER_SERVER_PREFERENCE = 0x400000
    OP_SINGLE_DH_USE = 0
    OP_SINGLE_ECDH_USE = 0
    OP_ENABLE_MIDDLEBOX_COMPAT = 0x100000
    OP_LEGACY_SERVER_CONNECT = 0x4
    OP_IGNORE_UNEXPECTED_EOF = 0x80


class AlertDescription(enum.IntEnum):
    ALERT_DESCRIPTION_HANDSHAKE_FAILURE = 40
    ALERT_DESCRIPTION_INTERNAL_ERROR = 80


class _SSLMethod(enum.IntEnum):
    PROTOCOL_TLS = 2
    PROTOCOL_TLS_CLIENT = 16
    PROTOCOL_TLS_SERVER = 17


PROTOCOL_SSLv23 = _SSLMethod.PROTOCOL_TLS


class TLSVersion(enum.IntEnum):
    MINIMUM_SUPPORTED = -2
    SSLv3 = 0x300
    TLSv1 = 0x301
    TLSv1_1 = 0x302
    TLSv1_2 = 0x303
    TLSv1_3 = 0x304
    MAXIMUM_SUPPORTED = -1


globals().update(VerifyMode.__members__)
globals().update(VerifyFlags.__members__)
globals().update(Options.__members__)
globals().update(_SSLMethod.__members__)


class _ASN1Object(namedtuple("_ASN1Object", "nid shortname longname oid")):
    pass


class Purpose(_ASN1Object, enum.Enum):
    SERVER_AUTH = _ASN1Object(129, "serverAuth", "TLS Web Server Authentication",
                              "1.3.6.1.5.5.7.3.1")
    CLIENT_AUTH = _ASN1Object(130, "clientAuth", "TLS Web Client Authentication",
                              "1.3.6.1.5.5.7.3.2")


DefaultVerifyPaths = namedtuple(
    "DefaultVerifyPaths",
    "cafile capath openssl_cafile_env openssl_cafile openssl_capath_env openssl_capath")


def get_default_verify_paths():
    """There are no certificate files in the sandbox: the host holds the roots."""
    return DefaultVerifyPaths(None, None, "SSL_CERT_FILE", "", "SSL_CERT_DIR", "")


class SSLSocket:
    """A connection the host encrypts (what `SSLContext.wrap_socket` returns)."""

    def version(self):
        return "TLSv1.3"

    def cipher(self):
        return None

    def shared_ciphers(self):
        return None

    def compression(self):
        return None

    def selected_alpn_protocol(self):
        return "http/1.1"

    def selected_npn_protocol(self):
        return None

    def getpeercert(self, binary_form=False):
        """The host verified the certificate for the host name; the guest sees only that
        name (as the certificate's subject and alternative name)."""
        if binary_form:
            return None
        name = self.server_hostname
        kind = "IP Address" if name.replace(".", "").isdigit() or ":" in name else "DNS"
        return {"subject": ((("commonName", name),),), "subjectAltName": ((kind, name),)}

    def get_channel_binding(self, cb_type="tls-unique"):
        return None

    def do_handshake(self, block=False):
        pass

    def pending(self):
        return 0

    def unwrap(self):
        raise SSLError("TLS is the host's: it cannot be unwrapped")


class SSLObject:
    def __init__(self, *args, **kwargs):
        raise SSLError("TLS over memory buffers is not available: the host makes TLS "
                       "connections")


class MemoryBIO:
    def __init__(self, *args, **kwargs):
        raise SSLError("TLS over memory buffers is not available: the host makes TLS "
                       "connections")


class SSLSession:
    pass


class SSLContext:
    """Settings the host's TLS does not take from the guest: the host verifies every
    HTTPS connection, whatever `verify_mode` and `check_hostname` say."""

    sslsocket_class = SSLSocket
    sslobject_class = SSLObject

    def __init__(self, protocol=None, *args, **kwargs):
        if protocol is None:
            protocol = PROTOCOL_TLS_CLIENT
        self.protocol = _SSLMethod(protocol)
        client = self.protocol != PROTOCOL_TLS_SERVER
        self.check_hostname = client
        self.verify_mode = CERT_REQUIRED if client else CERT_NONE
        self.verify_flags = VERIFY_X509_TRUSTED_FIRST
        self.options = Options(OP_ALL | OP_NO_SSLv3 | OP_NO_COMPRESSION)
        self.minimum_version = TLSVersion.TLSv1_2
        self.maximum_version = TLSVersion.MAXIMUM_SUPPORTED
        self.post_handshake_auth = None
        self.hostname_checks_common_name = False
        self.keylog_filename = None
        self.security_level = 2
        self.sni_callback = None
        self._alpn = []

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        """Accepted and unused: the host trusts the public roots and the CAs its operator
        names (`--ca-cert`)."""
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")

    def load_default_certs(self, purpose=Purpose.SERVER_AUTH):
        pass

    def set_default_verify_paths(self):
        pass

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        raise SSLError("client certificates are not available in the sandbox")

    def set_alpn_protocols(self, protocols):
        self._alpn = list(protocols)

    def set_npn_protocols(self, protocols):
        pass

    def set_ciphers(self, ciphers):
        pass

    def get_ciphers(self):
        return []

    def set_ecdh_curve(self, name):
        pass

    def set_servername_callback(self, callback):
        self.sni_callback = callback

    def cert_store_stats(self):
        return {"x509": 0, "crl": 0, "x509_ca": 0}

    def get_ca_certs(self, binary_form=False):
        return []

    def session_stats(self):
        return {}

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    suppress_ragged_eofs=True, server_hostname=None, session=None):
        if server_side:
            raise SSLError("server-side TLS is not available in the sandbox")
        start_tls = getattr(sock, "start_tls", None)
        if start_tls is None:
            raise SSLError("TLS is available only on the host's HTTP connections "
                           "(http.client, urllib.request)")
        start_tls(server_hostname)
        sock.__class__ = type(sock).__dict__.get("_tls_class") or _tls_class(type(sock))
        sock.context = self
        return sock

    def wrap_bio(self, *args, **kwargs):
        raise SSLError("TLS over memory buffers is not available: the host makes TLS "
                       "connections")


def _tls_class(plain):
    """`plain` (a connection class of the host's) that is also an `SSLSocket`."""
    cls = type(plain.__name__, (plain, SSLSocket), {})
    plain._tls_class = cls
    return cls


def create_default_context(purpose=Purpose.SERVER_AUTH, *, cafile=None, capath=None,
                           cadata=None):
    """A client context (the host verifies what it connects to)."""
    if purpose == Purpose.CLIENT_AUTH:
        return SSLContext(PROTOCOL_TLS_SERVER)
    context = SSLContext(PROTOCOL_TLS_CLIENT)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    return context


def _create_unverified_context(protocol=None, *, cert_reqs=CERT_NONE, check_hostname=False,
                               purpose=Purpose.SERVER_AUTH, certfile=None, keyfile=None,
                               cafile=None, capath=None, cadata=None):
    """As asked, but the host still verifies every HTTPS connection."""
    context = SSLContext(protocol or PROTOCOL_TLS_CLIENT)
    context.check_hostname = check_hostname
    context.verify_mode = cert_reqs
    return context


_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context


def wrap_socket(*args, **kwargs):
    raise SSLError("ssl.wrap_socket is gone since Python 3.12; use SSLContext.wrap_socket")


def RAND_bytes(n):
    return os.urandom(n)


def RAND_status():
    return True


def RAND_add(data, entropy):
    pass


def DER_cert_to_PEM_cert(der_cert_bytes):
    text = base64.standard_b64encode(der_cert_bytes).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return PEM_HEADER + "\n" + "\n".join(lines) + "\n" + PEM_FOOTER + "\n"


def PEM_cert_to_DER_cert(pem_cert_string):
    if not pem_cert_string.startswith(PEM_HEADER):
        raise ValueError(f"Invalid PEM encoding; must start with {PEM_HEADER}")
    if not pem_cert_string.strip().endswith(PEM_FOOTER):
        raise ValueError(f"Invalid PEM encoding; must end with {PEM_FOOTER}")
    body = pem_cert_string.strip()[len(PEM_HEADER):-len(PEM_FOOTER)]
    return base64.decodebytes(body.encode("ascii", "strict"))


def get_server_certificate(addr, ssl_version=None, ca_certs=None, timeout=None):
    raise SSLError("certificates are the host's: the sandbox does not see them")

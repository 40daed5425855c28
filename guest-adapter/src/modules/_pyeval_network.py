"""HTTP(S) through the host: what stands in for sockets under HTTP clients.

The sandbox has no sockets. A connection that `http.client`, urllib3 (under requests) or
httpcore (under httpx) opens is a `HostSocket`: the bytes written to it are HTTP/1.1
requests, each sent by the host whole (through `wasi:http/outgoing-handler`, see
src/http.rs) as soon as it is complete, and reading it gives the host's responses, as
HTTP/1.1 bytes. The host decides which requests are sent (`PermissionError` names the host
and why not), makes TLS connections and verifies them; `ssl` (src/modules/ssl.py) only
marks a connection as HTTPS.
"""

import http
import io
import os
import socket
import sys

from _pyeval import _http_request

# Headers the host sets itself, or that describe the connection rather than the request.
_CONNECTION_HEADERS = frozenset((
    b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
    b"upgrade", b"proxy-authorization", b"proxy-authenticate", b"http2-settings", b"te",
))


def _raise(kind, message, authority):
    """Raises the exception of a failed request to `authority` (src/http.rs, `Failure`)."""
    if kind == 1:
        raise PermissionError(f"network access refused: {message}")
    if kind == 2:
        raise TimeoutError(f"{authority}: {message}")
    if kind == 3:
        raise ConnectionRefusedError(f"{authority}: {message}")
    if kind == 4:
        raise socket.gaierror(f"{authority}: name not resolved: {message}")
    if kind == 5:
        import ssl
        if "certificate" in message.lower():
            raise ssl.SSLCertVerificationError(
                f"{authority}: certificate verify failed: {message}")
        raise ssl.SSLError(f"{authority}: TLS failed: {message}")
    if kind == 7:
        raise ValueError(f"invalid request: {message}")
    raise OSError(f"{authority}: {message}")


def _timeout_seconds(timeout):
    return timeout if isinstance(timeout, (int, float)) else None


class HostSocket:
    """A connection to `host:port` through the host, as much of a socket as HTTP clients
    use: `sendall` (the request), `recv` and `makefile` (the response), timeouts and
    `close`. A request that fails raises from `sendall`, or, with `defer_errors` (for
    clients that read a response after a failed write, as a server may answer early),
    from the next read."""

    def __init__(self, host, port, timeout=None, defer_errors=False):
        self.host = host.strip("[]")
        self.port = port
        self._timeout = _timeout_seconds(timeout)
        self.scheme = "http"
        self.server_hostname = None
        self._out = bytearray()
        self._in = bytearray()
        self._closed = False
        self._defer_errors = defer_errors
        self._error = None

    def start_tls(self, server_hostname=None):
        """Marks the connection as HTTPS (the host makes the TLS connection)."""
        self.scheme = "https"
        self.server_hostname = server_hostname or self.host

    # What socket users call.

    def settimeout(self, timeout):
        self._timeout = _timeout_seconds(timeout)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        pass

    def setsockopt(self, *args):
        pass

    def getsockopt(self, *args):
        return 0

    def sendall(self, data):
        self._check_open()
        self._out += data
        self._send_complete()

    def send(self, data):
        self.sendall(data)
        return len(data)

    def makefile(self, mode="rb", buffering=None, **kwargs):
        self._check_open()
        if "r" not in mode:
            raise OSError("write to the connection with sendall()")
        return io.BufferedReader(_Reader(self))

    def recv(self, size, flags=0):
        """The next bytes of the responses; b"" at their end (each says `Connection:
        close`). As with a socket, a file from `makefile` still reads after `close`."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        data = bytes(self._in[:size])
        del self._in[:size]
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        data = self.recv(nbytes or len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def pending(self):
        return len(self._in)

    def close(self):
        self._closed = True

    def shutdown(self, how):
        pass

    def fileno(self):
        return -1

    def getpeername(self):
        return (self.host, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self._closed:
            raise OSError("the connection is closed")

    # The request, once it is all written.

    def _send_complete(self):
        while True:
            request = _take_request(self._out)
            if request is None:
                return
            try:
                self._in += self._exchange(*request)
            except OSError as error:
                if not self._defer_errors:
                    raise
                self._error = error
                return

    def _exchange(self, method, target, headers, body):
        if target.startswith(("http://", "https://")):
            raise OSError("proxies are not available in the sandbox")
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        default = 443 if self.scheme == "https" else 80
        authority = host if self.port in (None, default) else f"{host}:{self.port}"
        sent = [(name.decode("latin-1"), value) for name, value in headers
                if name.lower() not in _CONNECTION_HEADERS]
        answer = _http_request(method, self.scheme, authority, target or "/", sent, body,
                               self._timeout)
        if answer[0] != 0:
            _raise(*answer, authority)
        _, status, received, data = answer
        return _response_bytes(method, status, received, data)


class _Reader(io.RawIOBase):
    """`makefile("rb")`: reads come from the connection."""

    def __init__(self, connection):
        self._connection = connection

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._connection.recv_into(buffer)


def _take_request(buffer):
    """The first complete request in `buffer` (removed from it) as (method, target,
    headers, body), or None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    try:
        method, target, _version = lines[0].decode("latin-1").split(" ", 2)
    except ValueError:
        raise OSError("the sandbox's network carries HTTP/1.1 requests only") from None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    fields = {name.lower(): value for name, value in headers}
    start = end + 4
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        decoded = _dechunk(buffer, start)
        if decoded is None:
            return None
        body, stop = decoded
        headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
    else:
        length = int(fields.get(b"content-length", b"0") or 0)
        if len(buffer) - start < length:
            return None
        body, stop = bytes(buffer[start:start + length]), start + length
    del buffer[:stop]
    return method, target, headers, body


def _dechunk(buffer, pos):
    """The body of a chunked message starting at `pos` and where it ends, or None while
    it is incomplete."""
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos:pos + size]
        pos += size + 2


def _response_bytes(method, status, headers, body):
    """The response as HTTP/1.1 bytes for a reader that closes the connection after it."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    keep_length = method == "HEAD" or status in (204, 304) or status < 200
    for name, value in headers:
        lowered = name.lower()
        if lowered in ("transfer-encoding", "connection", "keep-alive"):
            continue
        if lowered == "content-length" and not keep_length:
            continue
        lines.append(name.encode("latin-1") + b": " + value)
    if not keep_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _connect(self):
    """`http.client.HTTPConnection.connect`: a connection through the host."""
    sys.audit("http.client.connect", self, self.host, self.port)
    if self._tunnel_host:
        raise OSError("proxies are not available in the sandbox")
    self.sock = HostSocket(self.host, self.port, self.timeout)


def create_connection(address, timeout=None, source_address=None, socket_options=None):
    """A connection to `address`, `(host, port)`, through the host."""
    host, port = address
    return HostSocket(host, port, timeout)


def patch_http_client(module):
    """Makes `http.client`'s connections go through the host."""
    module.HTTPConnection.connect = _connect


def patch_urllib3(module):
    """Makes urllib3's connections (requests') go through the host
    (`urllib3.util.connection`)."""
    module.create_connection = create_connection


def patch_certifi(module):
    """`certifi.where()` names the bundle at its installed path, where the sandbox serves
    it as a file (`certifi.core`; it would otherwise extract a copy to a temporary file,
    which, made before the snapshot, is gone in every instance)."""
    path = os.path.join(os.path.dirname(module.__file__), "cacert.pem")
    module.where = lambda: path


def patch_httpcore_sync(module):
    """Makes httpcore's connections (httpx's) go through the host
    (`httpcore._backends.sync`)."""

    def connect_tcp(self, host, port, timeout=None, local_address=None,
                    socket_options=None):
        return module.SyncStream(HostSocket(host, port, timeout, defer_errors=True))

    module.SyncBackend.connect_tcp = connect_tcp
    # httpcore asks a TLS stream for its TLS object.
    import ssl
    ssl.SSLSocket._sslobj = None


def patch_httpcore_auto(module):
    """Makes httpcore's async connections (httpx.AsyncClient's) go through the host
    (`httpcore._backends.auto`): each request blocks the event loop while the host sends
    it."""
    from httpcore._backends.base import AsyncNetworkBackend, AsyncNetworkStream
    from httpcore._backends.sync import SyncStream

    class HostStream(AsyncNetworkStream):
        def __init__(self, stream):
            self._stream = stream

        async def read(self, max_bytes, timeout=None):
            return self._stream.read(max_bytes, timeout)

        async def write(self, buffer, timeout=None):
            self._stream.write(buffer, timeout)

        async def aclose(self):
            self._stream.close()

        async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return HostStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

        def get_extra_info(self, info):
            return self._stream.get_extra_info(info)

    class HostBackend(AsyncNetworkBackend):
        async def connect_tcp(self, host, port, timeout=None, local_address=None,
                              socket_options=None):
            return HostStream(SyncStream(HostSocket(host, port, timeout, defer_errors=True)))

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            raise OSError("unix sockets are not available in the sandbox")

        async def sleep(self, seconds):
            import asyncio
            await asyncio.sleep(seconds)

    module.AutoBackend = HostBackend

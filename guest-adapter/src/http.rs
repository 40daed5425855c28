//! The built-in function through which bootstrap.py's network layer sends an HTTP request
//! with the host's `wasi:http/outgoing-handler`: `_http_request`. It keeps to plain values
//! (strs, bytes, tuples); bootstrap.py makes Python's responses and exceptions of them.

use std::ptr;

use pyo3_ffi::*;

use crate::builtins::{bytes, fast, takes, timeout_ns, utf8};
use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use crate::wasi::io::streams::StreamError;

/// Puts `_http_request` into `globals`.
pub unsafe fn install(globals: *mut PyObject) {
    crate::builtins::install(globals, &[ptr::addr_of_mut!(REQUEST)]);
}

static mut REQUEST: PyMethodDef = fast(c"_http_request", request);

/// Most bytes one write to a `wasi:io` output stream may carry.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for by each read of a response body.
const READ_CHUNK: u64 = 64 * 1024;

/// Why a request failed, as bootstrap.py tells them apart.
#[derive(Clone, Copy)]
enum Failure {
    /// The host refused it (`PermissionError`).
    Refused = 1,
    /// No connection or answer in time (`TimeoutError`).
    Timeout = 2,
    /// The server refused the connection (`ConnectionRefusedError`).
    ConnectionRefused = 3,
    /// The name did not resolve (`socket.gaierror`).
    Dns = 4,
    /// TLS failed: the certificate, or the protocol (`ssl.SSLError`).
    Tls = 5,
    /// Anything else on the way (`OSError`).
    Other = 6,
    /// The request itself is malformed: its method, a header (`ValueError`).
    Invalid = 7,
}

/// What a request came to: status, headers and body, or a failure and its message.
type Answer = Result<(u16, Vec<(String, Vec<u8>)>, Vec<u8>), (Failure, String)>;

/// `_http_request(method, scheme, authority, path, headers, body, timeout)`: `(0, status,
/// headers, body)` with headers as `(name, value)` pairs of str and bytes, or `(kind,
/// message)` for a failure (see [`Failure`]). `timeout` is in seconds, or `None`.
unsafe extern "C" fn request(
    _: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    let usage = c"_http_request(method, scheme, authority, path, headers, body, timeout)";
    if !takes(nargs, 7, usage) {
        return ptr::null_mut();
    }
    let arg = |i| *args.add(i);
    // One at a time: none is read once another has failed (and set Python's error).
    let Some(method) = utf8(arg(0)) else {
        return ptr::null_mut();
    };
    let Some(scheme) = utf8(arg(1)) else {
        return ptr::null_mut();
    };
    let Some(authority) = utf8(arg(2)) else {
        return ptr::null_mut();
    };
    let Some(path) = utf8(arg(3)) else {
        return ptr::null_mut();
    };
    let Some(headers) = header_pairs(arg(4)) else {
        return ptr::null_mut();
    };
    let Some(body) = bytes(arg(5)) else {
        return ptr::null_mut();
    };
    let Some(timeout_ns) = timeout_ns(arg(6)) else {
        return ptr::null_mut();
    };
    let answer = send(method, scheme, authority, path, &headers, body, timeout_ns);
    match answer {
        Ok((status, headers, body)) => {
            let list = PyList_New(0);
            for (name, value) in headers {
                let pair = PyTuple_New(2);
                PyTuple_SetItem(pair, 0, crate::str_object(&name));
                PyTuple_SetItem(pair, 1, bytes_object(&value));
                PyList_Append(list, pair);
                Py_DecRef(pair);
            }
            let result = PyTuple_New(4);
            PyTuple_SetItem(result, 0, PyLong_FromLong(0));
            PyTuple_SetItem(result, 1, PyLong_FromLong(status.into()));
            PyTuple_SetItem(result, 2, list);
            PyTuple_SetItem(result, 3, bytes_object(&body));
            result
        }
        Err((kind, message)) => {
            let result = PyTuple_New(2);
            PyTuple_SetItem(result, 0, PyLong_FromLong(kind as _));
            PyTuple_SetItem(result, 1, crate::str_object(&message));
            result
        }
    }
}

/// Sends one request and reads its whole response.
fn send(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    timeout_ns: Option<u64>,
) -> Answer {
    let invalid = |what: String| (Failure::Invalid, what);
    let fields = Fields::from_list(headers).map_err(|e| invalid(format!("header: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_method(&method)
        .map_err(|()| invalid("method".into()))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme".into()))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid(format!("host {authority:?}")))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid(format!("path {path:?}")))?;
    let options = timeout_ns.map(|ns| {
        let options = RequestOptions::new();
        // A host that does not take a timeout keeps its own.
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        options
    });
    let outgoing = request.body().map_err(|()| invalid("body taken".into()))?;
    let future = outgoing_handler::handle(request, options).map_err(failure)?;
    {
        let stream = outgoing
            .write()
            .map_err(|()| invalid("body stream taken".into()))?;
        for chunk in body.chunks(WRITE_CHUNK) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // The host stopped taking the body: the response says why, if it can.
                drop(stream);
                drop(outgoing);
                return Err(match response(&future) {
                    Err(why) => why,
                    Ok(_) => stream_failure(e),
                });
            }
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(failure)?;
    let incoming = response(&future)?;
    let status = incoming.status();
    let headers = incoming.headers().entries();
    let body = incoming
        .consume()
        .map_err(|()| (Failure::Other, "response body taken".into()))?;
    let mut data = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| (Failure::Other, "response stream taken".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_failure(e)),
            }
        }
    }
    drop(body);
    Ok((status, headers, data))
}

/// Waits for the response `future` promises.
fn response(
    future: &crate::wasi::http::types::FutureIncomingResponse,
) -> Result<IncomingResponse, (Failure, String)> {
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(failure(code)),
        Some(Err(())) | None => Err((Failure::Other, "no response".into())),
    }
}

/// A failed stream: the host's error, as it describes it.
fn stream_failure(error: StreamError) -> (Failure, String) {
    match error {
        StreamError::LastOperationFailed(e) => {
            match crate::wasi::http::types::http_error_code(&e) {
                Some(code) => failure(code),
                // wasmtime's host gives the reason as text only.
                None => {
                    let text = e.to_debug_string();
                    let kind = if text.contains("timeout") {
                        Failure::Timeout
                    } else {
                        Failure::Other
                    };
                    (kind, text)
                }
            }
        }
        StreamError::Closed => (Failure::Other, "connection closed".into()),
    }
}

/// `code` as a [`Failure`] and a message. pyeval's host refuses a request with
/// `internal-error` and a message starting `refused: `, and says why TLS failed in one
/// starting `tls: `.
fn failure(code: ErrorCode) -> (Failure, String) {
    use ErrorCode as E;
    match code {
        E::HttpRequestDenied => (Failure::Refused, "the host denied the request".into()),
        E::InternalError(Some(message)) => {
            if let Some(why) = message.strip_prefix("refused: ") {
                (Failure::Refused, why.to_string())
            } else if let Some(why) = message.strip_prefix("tls: ") {
                (Failure::Tls, why.to_string())
            } else {
                (Failure::Other, message)
            }
        }
        E::ConnectionTimeout => (Failure::Timeout, "connecting timed out".into()),
        E::ConnectionReadTimeout | E::HttpResponseTimeout => {
            (Failure::Timeout, "no response in time".into())
        }
        E::ConnectionRefused => (Failure::ConnectionRefused, "connection refused".into()),
        E::DnsError(payload) => (
            Failure::Dns,
            payload.rcode.unwrap_or_else(|| "no answer".into()),
        ),
        E::DnsTimeout => (Failure::Dns, "the lookup timed out".into()),
        E::DestinationNotFound => (Failure::Dns, "no address".into()),
        E::TlsProtocolError | E::TlsCertificateError | E::TlsAlertReceived(_) => {
            (Failure::Tls, format!("{code:?}"))
        }
        E::HttpRequestMethodInvalid | E::HttpRequestUriInvalid => {
            (Failure::Invalid, format!("{code:?}"))
        }
        other => (Failure::Other, format!("{other:?}")),
    }
}

/// A list of `(str, bytes)` pairs; `None` with Python's error set otherwise.
unsafe fn header_pairs(list: *mut PyObject) -> Option<Vec<(String, Vec<u8>)>> {
    if PyList_Check(list) == 0 {
        PyErr_SetString(PyExc_TypeError, c"headers: a list of (str, bytes)".as_ptr());
        return None;
    }
    let mut pairs = Vec::new();
    for i in 0..PyList_Size(list) {
        let pair = PyList_GetItem(list, i);
        if PyTuple_Check(pair) == 0 || PyTuple_Size(pair) != 2 {
            PyErr_SetString(PyExc_TypeError, c"headers: a list of (str, bytes)".as_ptr());
            return None;
        }
        let name = utf8(PyTuple_GetItem(pair, 0))?;
        let value = bytes(PyTuple_GetItem(pair, 1))?;
        pairs.push((name.to_string(), value.to_vec()));
    }
    Some(pairs)
}

/// A new bytes object holding `data`.
unsafe fn bytes_object(data: &[u8]) -> *mut PyObject {
    PyBytes_FromStringAndSize(data.as_ptr() as *const _, data.len() as Py_ssize_t)
}

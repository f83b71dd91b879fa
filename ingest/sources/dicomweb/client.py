"""The edge to a DICOMweb server: QIDO-RS study search, WADO-RS metadata and bulk data.

Plain ``requests`` (one session per thread), because dicomweb-client's traps bite
here: it percent-encodes ``*`` and ``^`` (Orthanc 1.10 does not decode them), sends
``Host`` without the port, and asks bulk data as ``type="*/*"`` (Orthanc: 400).
Every request has a timeout; dropped connections, timeouts, 429 and 5xx are retried
with exponential backoff (tenacity); every failure a user can act on becomes a
one-line :class:`~ingest.errors.UserError` that never contains a credential.

Works with Orthanc's ``…/dicom-web`` root and with Google Cloud Healthcare's
``https://healthcare.googleapis.com/v1/projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb``
(bearer token). Credentials go only to the server's own origin: a BulkDataURI that
points elsewhere is not fetched.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests

from ingest.errors import UserError
from ingest.sources.dicomweb.flatten import BulkValue
from ingest.sources.retry import RetryPolicy

DICOM_JSON = "application/dicom+json"
BULK_ACCEPT = 'multipart/related; type="application/octet-stream"'
STUDY_FIELDS = ("00080020", "00080061", "00201206", "00201208")
"""Asked of every study found: StudyDate, ModalitiesInStudy, the numbers of series and instances."""
PAGE_SIZE = 500
"""Studies asked per QIDO page (Google's default is 100, its maximum 5000)."""
QUERY_SAFE = "*?,-.^"
"""Characters left as they are in query values: Orthanc 1.10 does not percent-decode them."""
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Auth:
    """How to authenticate: HTTP Basic (``user``, ``password``), a bearer ``token``, or neither.
    ``repr`` never shows a secret."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        kind = "basic" if self.user else "bearer" if self.token else "none"
        return f"Auth({kind})"


DEFAULT_RETRY = RetryPolicy(attempts=4, initial_wait=0.25, max_wait=4.0, timeout=120.0)
"""A DICOMweb request's: a PACS answers in seconds or is down."""


@dataclass(frozen=True)
class StudyListing:
    """One study as QIDO-RS lists it (counts None when the server does not give them)."""

    study_uid: str
    study_date: str | None
    modalities: tuple[str, ...]
    n_series: int | None
    n_instances: int | None


class Unavailable(UserError):
    """The server cannot be reached, or stopped answering."""


class NotFound(Exception):
    """A resource the server listed answers 404 (it has gone, or the server is inconsistent)."""


def normalise_url(url: str) -> str:
    """The DICOMweb base URL without trailing slashes.

    Raises:
        UserError: not an http(s) URL with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{url!r} is not a DICOMweb URL: expected http(s)://host[:port]/path")
    if parts.username or parts.password:
        raise UserError("put no credentials in the URL: use --user with --password-env, or --token-env")
    if parts.query or parts.fragment:
        raise UserError(f"the DICOMweb URL {url!r} must not have a query: give its root (…/dicom-web)")
    return url.strip().rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def query_string(params: list[tuple[str, str]]) -> str:
    """``k=v&…`` with values percent-encoded but for :data:`QUERY_SAFE`
    (a server that decodes sees the same either way)."""
    return "&".join(f"{quote(key)}={quote(value, safe=QUERY_SAFE)}" for key, value in params)


def _reason(error: BaseException) -> str:
    """A short reason for a connection failure, without URLs or credentials."""
    text = str(error)
    if isinstance(error, requests.Timeout):
        return "timed out"
    for cause, words in (("Connection refused", "connection refused"),
                         ("Name or service not known", "unknown host"),
                         ("Temporary failure in name resolution", "unknown host"),
                         ("RemoteDisconnected", "the server closed the connection"),
                         ("Connection reset", "the connection was reset"),
                         ("Connection aborted", "the connection was aborted"),
                         ("No route to host", "no route to host")):
        if cause in text:
            return words
    return type(error).__name__


def _transient(error: BaseException) -> bool:
    if isinstance(error, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return True
    return isinstance(error, _Retryable)


class _Retryable(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class DicomWebClient:
    """QIDO-RS / WADO-RS against one server (thread-safe: one ``requests`` session per thread).

    Args:
        url: the DICOMweb root (``…/dicom-web``, ``…/dicomStores/S/dicomWeb``).
        auth: credentials (sent only to ``url``'s origin).
        retry: attempts, backoff and timeout per request.
    """

    def __init__(self, url: str, auth: Auth | None = None, retry: RetryPolicy | None = None) -> None:
        self.url = normalise_url(url)
        self.auth = auth or Auth()
        self.retry = retry or DEFAULT_RETRY
        self._origin = _origin(self.url)
        self._local = threading.local()
        self.n_requests = 0
        self._count_lock = threading.Lock()
        # gzip costs the server CPU: worth it over a network, not over loopback
        self._encoding = "identity" if _is_loopback(self._origin[1]) else "gzip, deflate"

    # ------------------------------------------------------------------ HTTP

    def reset_connections(self) -> None:
        """Forget every thread's session (a forked process must not share its parent's sockets)."""
        self._local = threading.local()
        self._count_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no .netrc credentials or proxies picked up behind the user's back
            if self.auth.user is not None:
                session.auth = (self.auth.user, self.auth.password or "")
            elif self.auth.token is not None:
                session.headers["Authorization"] = f"Bearer {self.auth.token}"
            session.headers["Accept-Encoding"] = self._encoding
            self._local.session = session
        return session

    def get(self, url: str, *, accept: str, stream: bool = False) -> requests.Response:
        """GET ``url`` (absolute, on the server's origin) with retries.

        Raises:
            UserError: credentials refused (401/403), another 4xx but 404.
            Unavailable: the server cannot be reached or keeps failing.
            NotFound: 404.
        """
        if _origin(url) != self._origin:
            raise UserError(f"refusing to send credentials to another server than {self.url}")
        retrying = self.retry.retrying(_transient)
        try:
            for attempt in retrying:
                with attempt:
                    response = self._get_once(url, accept, stream)
        except _Retryable as error:
            raise Unavailable(f"the DICOMweb server at {self.url} keeps failing (HTTP {error.status}); "
                              "try again later") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise Unavailable(f"cannot reach the DICOMweb server at {self.url}: {_reason(error)}") from None
        return response

    def _get_once(self, url: str, accept: str, stream: bool) -> requests.Response:
        with self._count_lock:
            self.n_requests += 1
        response = self._session().get(url, headers={"Accept": accept}, timeout=self.retry.timeout, stream=stream)
        status = response.status_code
        if status < 400:
            if not stream:
                _ = response.content  # read now, inside the retry: a connection dropped mid-body is retried
            return response
        response.close()
        if status in TRANSIENT_STATUS:
            raise _Retryable(status)
        if status in (401, 403):
            how = ("check --user and the password in --password-env" if self.auth.user
                   else "check the token in --token-env" if self.auth.token
                   else "give --user with --password-env, or --token-env")
            raise UserError(f"the DICOMweb server at {self.url} refused the credentials (HTTP {status}): {how}")
        if status == 404:
            raise NotFound(url)
        raise UserError(f"the DICOMweb server at {self.url} answered HTTP {status} to {_path(url, self.url)}")

    def json(self, url: str) -> Any:
        """GET DICOM JSON; the parsed body ([] for an empty body, as some servers answer 204).

        Raises:
            Unavailable: the body is not JSON (a proxy's error page, a cut connection), and as :meth:`get`.
        """
        response = self.get(url, accept=DICOM_JSON)
        if not response.content.strip():
            return []
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise Unavailable(f"the DICOMweb server at {self.url} sent something that is not JSON for "
                              f"{_path(url, self.url)}") from None

    # ------------------------------------------------------------------ QIDO-RS

    def studies(
        self, filters: list[tuple[str, str]] | None = None, *, page_size: int = PAGE_SIZE
    ) -> Iterator[StudyListing]:
        """Every study matching ``filters`` (QIDO-RS keys and values), page by page, each UID once.

        Paging ends at an empty page, or at a page with nothing new (a server ignoring ``offset``).
        """
        seen: set[str] = set()
        offset = 0
        while True:
            params = [*(filters or []), *(("includefield", tag) for tag in STUDY_FIELDS),
                      ("limit", str(page_size)), ("offset", str(offset))]
            page = self.json(f"{self.url}/studies?{query_string(params)}")
            if not isinstance(page, list):
                raise Unavailable(f"the DICOMweb server at {self.url} answered a study search with no list")
            new = 0
            for study in page:
                listing = _listing(study)
                if listing is not None and listing.study_uid not in seen:
                    seen.add(listing.study_uid)
                    new += 1
                    yield listing
            if not page or not new:
                return
            offset += len(page)

    def series_uids(self, study_uid: str, *, page_size: int = PAGE_SIZE) -> list[str]:
        """The SeriesInstanceUIDs of a study (QIDO-RS, paged)."""
        found: list[str] = []
        offset = 0
        while True:
            params = [("limit", str(page_size)), ("offset", str(offset))]
            page = self.json(f"{self.url}/studies/{quote(study_uid)}/series?{query_string(params)}")
            uids = [uid for series in page or [] if (uid := _first(series, "0020000E")) and uid not in found]
            if not uids:
                return found
            found += uids
            offset += len(page)

    # ------------------------------------------------------------------ WADO-RS

    def study_metadata(self, study_uid: str) -> list[Any]:
        """Every instance's DICOM JSON of a study (``/studies/{uid}/metadata``)."""
        return _instances(self.json(f"{self.url}/studies/{quote(study_uid)}/metadata"))

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Any]:
        """Every instance's DICOM JSON of one series."""
        return _instances(self.json(f"{self.url}/studies/{quote(study_uid)}/series/{quote(series_uid)}/metadata"))

    def bulk(self, uri: str, max_bytes: int) -> BulkValue:
        """The value behind a BulkDataURI: its bytes when at most ``max_bytes``, else its length
        when the server tells it (the body is then not read); not fetched from another origin."""
        url = urljoin(self.url + "/", uri)
        if _origin(url) != self._origin:
            return BulkValue(None, None)
        response = self.get(url, accept=BULK_ACCEPT, stream=True)
        with response:
            return _bulk_value(response, max_bytes)


def _path(url: str, base: str) -> str:
    """``url`` as a path under ``base`` (for messages), without its query."""
    return url.removeprefix(base).split("?")[0] or "/"


def _first(dataset: Any, tag: str) -> Any:
    if not isinstance(dataset, dict):
        return None
    values = (dataset.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def _count(dataset: Any, tag: str) -> int | None:
    value = _first(dataset, tag)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _listing(study: Any) -> StudyListing | None:
    uid = _first(study, "0020000D")
    if not isinstance(uid, str) or not uid:
        return None
    modalities = tuple(str(m) for m in (study.get("00080061") or {}).get("Value") or [] if m)
    date = _first(study, "00080020")
    return StudyListing(uid, str(date) if date else None, modalities, _count(study, "00201206"),
                        _count(study, "00201208"))


def _instances(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise Unavailable("the DICOMweb server answered a metadata request with no list of instances")
    return body


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
BULK_READ_LIMIT = 16 << 20
"""A bulk value without a declared length is read up to this many bytes to learn it."""


def _bulk_value(response: requests.Response, max_bytes: int) -> BulkValue:
    """The value in a bulk-data response (a one-part ``multipart/related``, or the bytes themselves)."""
    content_type = response.headers.get("Content-Type", "")
    raw = response.raw
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/") or not match:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return BulkValue(None, int(declared))
        data = raw.read(BULK_READ_LIMIT + 1, decode_content=True)
        return BulkValue(data if len(data) <= max_bytes else None, len(data) if len(data) <= BULK_READ_LIMIT else None)
    boundary = match.group(1).encode()
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 64 * 1024:
        chunk = raw.read(1024, decode_content=True)
        if not chunk:
            break
        head += chunk
    part_headers, _, rest = head.partition(b"\r\n\r\n")
    length = None
    for line in part_headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length is not None and length > max_bytes:
        return BulkValue(None, length)
    body = rest + raw.read(BULK_READ_LIMIT, decode_content=True)
    end = body.find(b"\r\n--" + boundary)
    data = body[:end] if end >= 0 else body
    if length is not None:
        data = data[:length]
    return BulkValue(data if len(data) <= max_bytes else None, len(data))


__all__ = ["DEFAULT_RETRY", "Auth", "DicomWebClient", "NotFound", "RetryPolicy", "StudyListing", "Unavailable",
           "normalise_url", "query_string"]

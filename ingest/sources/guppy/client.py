"""The edge to a Gen3 commons: the unmodified ``gen3`` SDK, made safe to script.

The SDK prints request bodies and responses on stdout, passes no timeout to
``requests``, retries nothing but 401/403, and returns GraphQL errors that
guppy sends with HTTP 200 as data. :class:`GuppyClient` wraps each SDK call so
that: the SDK's prints are swallowed; every HTTP request gets a timeout;
5xx, timeouts and dropped connections are retried with exponential backoff
(tenacity); a 401/403 triggers one token refresh; GraphQL errors are detected;
and every failure becomes a one-line :class:`~ingest.errors.UserError`. No
message ever contains the API key or the access token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests

from ingest.errors import UserError, requires
from ingest.sources.retry import RetryPolicy

T = TypeVar("T")

GEN3_INSTALL = "pip install 'gen3>=4.20'"
"""How to install the SDK (a dependency of cohortdb) when it is missing."""

COUNT_QUERY = """query ($filter: JSON) {
  _aggregation { %s (filter: $filter, accessibility: accessible) { _totalCount } }
}"""


DEFAULT_RETRY = RetryPolicy(attempts=5, initial_wait=1.0, max_wait=30.0, timeout=600.0)
"""A guppy request's: a commons under load may take minutes to answer a download."""


@dataclass(frozen=True)
class Credentials:
    """What cohortdb needs from a Gen3 ``credentials.json`` (the secrets stay in the file)."""

    path: Path
    issuer: str
    """``scheme://host[:port]`` of the key's ``iss`` claim, as the SDK derives it."""
    expires_at: datetime | None


def load_credentials(path: Path, *, now: float | None = None) -> Credentials:
    """Check a Gen3 API-key file before the SDK reads it.

    Raises:
        UserError: missing or unreadable, not JSON, no ``api_key``, a key that
            is not a JWT, or a key that has expired.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"credentials file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UserError(f"cannot read credentials file {path}: {reason}") from None
    except json.JSONDecodeError:
        raise UserError(
            f"credentials file {path} is not JSON; download it again from the commons' "
            "profile page (Create API key)"
        ) from None
    api_key = document.get("api_key") if isinstance(document, dict) else None
    if not isinstance(api_key, str):
        raise UserError(f"credentials file {path} has no api_key")
    claims = _jwt_claims(api_key)
    if claims is None or not isinstance(claims.get("iss"), str):
        raise UserError(f"the api_key in {path} is not a Gen3 API key (not a JWT with iss)")
    issuer = _origin(claims["iss"])
    expires = claims.get("exp")
    expires_at = datetime.fromtimestamp(expires, UTC) if isinstance(expires, int | float) else None
    if expires_at is not None and expires_at.timestamp() <= (time.time() if now is None else now):
        raise UserError(
            f"the API key in {path} expired on {expires_at:%Y-%m-%d %H:%M} UTC; "
            f"create a new one at {issuer}/identity"
        )
    return Credentials(path=path, issuer=issuer, expires_at=expires_at)


def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) < 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _origin(url: str) -> str:
    parts = urlparse(url)
    origin = f"{parts.scheme}://{(parts.hostname or '').lower()}"
    if parts.port:
        origin += f":{parts.port}"
    return origin


def normalise_endpoint(endpoint: str) -> str:
    """``endpoint`` without trailing slashes; must be an http(s) URL.

    Raises:
        UserError: not an http(s) URL.
    """
    cleaned = endpoint.strip().rstrip("/")
    parts = urlparse(cleaned)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--endpoint must be an http(s) URL like https://data.midrc.org, "
                        f"not {endpoint!r}")
    return cleaned


@contextlib.contextmanager
def _default_timeout(seconds: float) -> Iterator[None]:
    """Give every ``requests`` call made inside a timeout (the SDK passes none).

    Patches ``requests.Session.request`` for the duration; cohortdb calls the
    SDK from one thread, so the patch is not shared with unrelated requests.
    """
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = seconds
        return original(self, method, url, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign]
    try:
        yield
    finally:
        requests.Session.request = original  # type: ignore[method-assign]


def is_transient(error: BaseException) -> bool:
    """5xx, 429, timeouts and dropped or refused connections: worth retrying."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code >= 500 or error.response.status_code == 429
    return isinstance(error, requests.ConnectionError | requests.Timeout)


def _reason(error: BaseException) -> str:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed or dropped"
    return type(error).__name__


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"<[^>]+>", " ", text)  # guppy's 400s are text/html
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GuppyClient:
    """Guppy queries through ``Gen3Auth`` and ``Gen3Query``, with the safety above.

    Args:
        endpoint: the commons' base URL; must be the host that issued the key.
        credentials: a checked credentials file (:func:`load_credentials`).
        policy: retries and timeouts.
    """

    def __init__(self, endpoint: str, credentials: Credentials, policy: RetryPolicy) -> None:
        with requires("gen3", GEN3_INSTALL):
            from gen3.auth import Gen3Auth
            from gen3.query import Gen3Query

        self.endpoint = normalise_endpoint(endpoint)
        if self.endpoint.lower() != credentials.issuer:
            # The SDK would silently switch to a workspace-token-service flow.
            raise UserError(
                f"the API key in {credentials.path} was issued by {credentials.issuer}, "
                f"not by --endpoint {self.endpoint}; use --endpoint {credentials.issuer} "
                "or that commons' key"
            )
        self.policy = policy
        with contextlib.redirect_stdout(io.StringIO()):
            self.auth = Gen3Auth(credentials.issuer, refresh_file=str(credentials.path))
        self.query = Gen3Query(self.auth)
        self._refreshed = False

    def authenticate(self) -> None:
        """Exchange the API key for an access token now, so key problems surface first."""
        self._call("get an access token", self.auth.get_access_token)

    def count(self, index: str, filter_object: dict[str, Any] | None) -> int:
        """Records of ``index`` matching the filter, by guppy's exact ``_totalCount``.

        Raises:
            UserError: unknown index, invalid filter (GraphQL errors, 400 or 200).
        """
        body = self._call(
            f"count {index} records",
            lambda: self.query.graphql_query(COUNT_QUERY % index, {"filter": filter_object}),
        )
        if not isinstance(body, dict):
            raise UserError(f"guppy at {self.endpoint} returned a non-object for {index}")
        errors = body.get("errors")
        if errors:
            raise UserError(f"guppy rejected the {index} query: {_graphql_message(errors)}")
        try:
            return int(body["data"]["_aggregation"][index]["_totalCount"])
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"guppy at {self.endpoint} gave no count for index {index!r}"
            ) from None

    def download(
        self, index: str, fields: list[str] | None, filter_object: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Every record of ``index`` matching the filter, in one ``/guppy/download``.

        Unlike GraphQL paging this has no 10,000-record limit. Order is not defined.

        Raises:
            UserError: unknown index or field, or records that are not JSON objects.
        """
        records = self._call(
            f"download {index} records",
            lambda: self.query.raw_data_download(index, fields, filter_object=filter_object,
                                                 accessibility="accessible"),
        )
        from ingest.sources.guppy.dump import require_records

        return require_records(records, f"guppy's {index} download from {self.endpoint}")

    def _call(self, what: str, action: Callable[[], T]) -> T:
        from gen3.auth import Gen3AuthError

        retrying = self.policy.retrying(is_transient)
        while True:
            try:
                with _default_timeout(self.policy.timeout), \
                        contextlib.redirect_stdout(io.StringIO()):
                    return retrying(action)
            except Gen3AuthError as error:
                url = str(error).splitlines()[0].removesuffix(":")
                raise UserError(
                    f"could not {what}: {url} (the commons refused the API key, or "
                    f"{self.endpoint} is not a Gen3 commons); create a new key at "
                    f"{self.endpoint}/identity"
                ) from None
            except requests.HTTPError as error:
                status = error.response.status_code if error.response is not None else 0
                if status in (401, 403) and not self._refreshed:
                    self._refreshed = True  # a revoked or expired token: renew once
                    self._refresh_token(what)
                    continue
                raise self._http_error(what, error, status) from None
            except (requests.ConnectionError, requests.Timeout) as error:
                raise UserError(
                    f"could not {what} from {self.endpoint}: {_reason(error)} after "
                    f"{self.policy.attempts} attempts; check --endpoint and try again later"
                ) from None

    def _refresh_token(self, what: str) -> None:
        try:
            with _default_timeout(self.policy.timeout), \
                    contextlib.redirect_stdout(io.StringIO()):
                self.auth.refresh_access_token()
        except Exception:  # the SDK raises bare Exceptions here
            raise UserError(
                f"could not {what}: access token rejected and a new one could not be "
                f"obtained from {self.endpoint}"
            ) from None

    def _http_error(self, what: str, error: requests.HTTPError, status: int) -> UserError:
        if status >= 500 or status == 429:
            return UserError(
                f"could not {what}: {self.endpoint} answered HTTP {status} after "
                f"{self.policy.attempts} attempts; the commons may be overloaded, try later"
            )
        if status in (401, 403):
            return UserError(
                f"could not {what}: {self.endpoint} refused access (HTTP {status}) even "
                "with a fresh token; check that your account has access"
            )
        text = error.response.text if error.response is not None else ""
        detail = _graphql_message(_json_errors(text)) or _one_line(text)
        return UserError(f"could not {what}: guppy answered HTTP {status}: {detail}")


def _json_errors(text: str) -> list[Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []


def _graphql_message(errors: Any) -> str:
    if not isinstance(errors, list) or not errors:
        return ""
    first = errors[0]
    message = first.get("message") if isinstance(first, dict) else str(first)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return _one_line(str(message)) + more

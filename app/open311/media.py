"""Fetching a third-party app's ``media_url`` with strict limits (issue 21).

The URL is the app's, so it is treated as hostile: http or https only; the host is
resolved here and every address it resolves to must be public (``ipaddress``'s
``is_global``; an IPv4-mapped IPv6 address is judged as the IPv4 one), and the request
connects to the address that was checked (the URL carries the address, the ``Host``
header and TLS's server name carry the host name, so the certificate is still checked
against the name), never to a second resolution. Redirects are followed by hand, each
target checked the same way, at most ``MAX_REDIRECTS``. The body must be an image type
and at most the photo upload's size (counted as it streams); the whole fetch, redirects
included, has one time limit. No proxy from the environment is used.

``MediaRefused`` says why, and whether trying again later may help (``transient``: a
timeout, a refused connection, a 5xx) or not (a private address, not an image, too
large, a 4xx).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2000
CHUNK = 65536


class MediaRefused(Exception):
    """The media could not be fetched: ``reason`` (a short code for the timeline) and
    whether another try later may succeed."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def check_url(url: str) -> str | None:
    """Why this URL cannot be fetched at all (for the filing's 400), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    return None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, allow_private: bool) -> str:
    """The one address to connect to; refused unless every address of the host is public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise MediaRefused("host_not_found", transient=True) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise MediaRefused("host_not_found", transient=True)
    if not allow_private and not all(_public(a) for a in addresses):
        raise MediaRefused("address_not_public")
    return addresses[0]


async def _get_once(
    client: httpx.AsyncClient, url: str, max_bytes: int, allow_private: bool
) -> tuple[str | None, bytes]:
    """One request: (redirect target, or None and the body)."""
    problem = check_url(url)
    if problem is not None:
        raise MediaRefused("url_invalid")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = await _resolve(host, port, allow_private)
    literal = f"[{address}]" if ":" in address else address
    target = parts._replace(netloc=f"{literal}:{port}").geturl()
    default_port = port == (443 if parts.scheme == "https" else 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    request = client.build_request(
        "GET",
        target,
        headers={"Host": host_header, "Accept": "image/*"},
        extensions=extensions,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise MediaRefused("timeout", transient=True) from exc
    except httpx.HTTPError as exc:
        raise MediaRefused("connection_failed", transient=True) from exc
    try:
        if response.is_redirect:  # a 3xx with a Location (without one: refused below)
            return urljoin(url, response.headers["location"]), b""
        if response.status_code >= 500:
            raise MediaRefused(f"http_{response.status_code}", transient=True)
        if response.status_code != 200:
            raise MediaRefused(f"http_{response.status_code}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            raise MediaRefused("not_an_image")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise MediaRefused("too_large")
        body = bytearray()
        try:
            async for chunk in response.aiter_raw(CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise MediaRefused("too_large")
        except httpx.TimeoutException as exc:
            raise MediaRefused("timeout", transient=True) from exc
        except httpx.HTTPError as exc:
            raise MediaRefused("connection_failed", transient=True) from exc
        return None, bytes(body)
    finally:
        await response.aclose()


async def fetch_media(
    url: str, *, max_bytes: int, timeout_seconds: float, allow_private: bool = False
) -> bytes:
    """The image at ``url`` (redirects followed and re-checked), or ``MediaRefused``."""
    try:
        async with asyncio.timeout(timeout_seconds):
            async with httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(timeout_seconds),
                # the body is counted as sent: a compressed bomb never reaches the cap
                headers={"Accept-Encoding": "identity"},
            ) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    redirect, body = await _get_once(client, url, max_bytes, allow_private)
                    if redirect is None:
                        return body
                    url = redirect
    except TimeoutError as exc:
        raise MediaRefused("timeout", transient=True) from exc
    raise MediaRefused("too_many_redirects")

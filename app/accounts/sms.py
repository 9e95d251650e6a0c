"""Sending one-time codes by SMS. Pluggable: ``log`` (development default) writes the
message to the log; ``http`` posts it as JSON to an SMS gateway adapter."""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from app.settings import Settings

log = logging.getLogger("city.sms")


def mask_phone(phone: str) -> str:
    """+84912345678 -> +8491****678: enough for an operator, not a phone number."""
    return phone[:5] + "*" * max(0, len(phone) - 8) + phone[-3:]


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class LogSmsSender:
    """Development default. The text (with the code) is logged so a developer can sign
    in; the phone number is masked. Never use in production (SMS_BACKEND=http)."""

    async def send(self, phone: str, text: str) -> None:
        log.info("sms_sent", extra={"to": mask_phone(phone), "text": text})


class HttpSmsSender:
    """Posts {"to", "text"} to SMS_HTTP_URL; a gateway-specific adapter sits behind it."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def send(self, phone: str, text: str) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self._url, json={"to": phone, "text": text})
            response.raise_for_status()


def make_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_backend == "http":
        if not settings.sms_http_url:
            raise ValueError("SMS_BACKEND=http needs SMS_HTTP_URL")
        return HttpSmsSender(settings.sms_http_url)
    return LogSmsSender()

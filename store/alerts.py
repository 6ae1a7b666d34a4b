"""Alert policies (``spec.alerts``): which webhooks hear of an event, and what they are sent.

``enqueue_alerts`` runs inside the transaction that records what happened (a rollback, a
freeze, an SLO burning): it writes one ``AlertDelivery`` per matching policy and wakes the
alert controller, so an alert is sent exactly for what committed, and survives a restart
between the event and the call. The message is Slack's incoming-webhook JSON (``text`` for
notifications and clients that show only that, ``blocks`` for the layout), which Mattermost,
Discord's /slack endpoint, Teams connectors and most chatops bots also accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from store.events import ALERTS_STREAM, append_event
from store.ids import new_id
from store.models import AlertDelivery, AlertStatus, Service, utcnow

EVENTS: Final = ("rollback", "freeze", "unfreeze", "slo-burn")
ICONS: Final = {"rollback": ":rewind:", "freeze": ":ice_cube:", "unfreeze": ":sunny:"}
DEFAULT_ICON: Final = ":fire:"
# Slack refuses a section whose text is longer than 3000 characters, or a field over 2000.
MAX_TEXT: Final = 3000
MAX_FIELD: Final = 2000


def escape(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally: ``<`` would open a link or a mention
    (``<!channel>`` pings everyone) and ``&`` an entity, and a reason such as
    "5xx rate > 2%" is shown as written only when escaped (Slack's "Escaping text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(url: str) -> str:
    """The part of a webhook URL that may be shown (in logs, errors, events, the API):
    ``scheme://host[:port]``. Webhook URLs are secrets — Slack's carry a token in the
    path — so user info, path, query and fragment are dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not host:
        return "<invalid URL>"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def slack_message(
    event: str, service_label: str, title: str, fields: Mapping[str, str]
) -> dict[str, Any]:
    """A Slack-compatible message: a one-line ``text`` and the same facts as blocks."""
    icon = ICONS.get(event, DEFAULT_ICON)
    text = _clip(f"{icon} {escape(service_label)}: {escape(title)}", MAX_TEXT)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(f"*{escape(name)}*\n{escape(value)}", MAX_FIELD),
                    }
                    for name, value in list(fields.items())[:10]  # Slack's limit per section
                ],
            }
        )
    return {"text": text, "blocks": blocks}


async def enqueue_alerts(
    session: AsyncSession,
    *,
    service: Service,
    project_id: str,
    service_label: str,
    spec: Mapping[str, Any],
    event: str,
    title: str,
    fields: Mapping[str, str],
) -> list[AlertDelivery]:
    """Owe a delivery to every policy of ``spec`` (a normalised spec body) that listens to
    ``event``; nothing when none does."""
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; one of {', '.join(EVENTS)}")
    message = slack_message(event, service_label, title, fields)
    owed: list[AlertDelivery] = []
    for policy in spec.get("alerts", []):
        if event not in policy.get("events", ()):
            continue
        delivery = AlertDelivery(
            id=new_id("alert"),
            service_id=service.id,
            project_id=project_id,
            policy=str(policy["name"]),
            event=event,
            url=str(policy["webhook"]),
            payload=message,
            status=AlertStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
        )
        session.add(delivery)
        owed.append(delivery)
    if owed:
        await session.flush()
        for delivery in owed:
            await append_event(session, ALERTS_STREAM, "alert", entity_id=delivery.id)
    return owed

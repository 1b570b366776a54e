"""Hotline work orders as the reliability tests publish them: CloudEvents of the 12345 source."""

from __future__ import annotations

import json

from cityloop.contracts import EVENT_TYPES, Source


def work_order(
    order_id: str, source: str, received_at: str, category: str, text: str, lat: float, lon: float
) -> bytes:
    """One work order; its idempotency key is `{source}|{order_id}`."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": order_id,
            "source": source,
            "type": EVENT_TYPES[Source.HOTLINE],
            "data": {
                "order_id": order_id,
                "received_at": received_at,
                "category_code": category,
                "title": category,
                "text": text,
                "location": {"lat": lat, "lon": lon},
            },
        }
    ).encode()

"""WooCommerce REST API v3 (``/wp-json/wc/v3``), HTTP Basic auth with the consumer key
and secret (the credential is ``KEY:SECRET``; over HTTPS, as WooCommerce requires).

fulfillment: WooCommerce has no fulfillment object, and no idempotency key: the shipment is
an order note for the customer carrying our notice id (``GET orders/{id}/notes`` first: a
note with the id means a resend, skipped), then, when the order has shipped in full, ``PUT
orders/{id} {"status": "completed"}`` (setting a status again is harmless).

fulfillment_cancel: ``PUT orders/{id} {"status": "cancelled"}``.

stock_level: ``POST products/batch {"update": [{id, manage_stock: true, stock_quantity}]}``
(absolute).
"""

from __future__ import annotations

from typing import Any

from backorder.notify.channels import Rejected
from backorder.writeback.base import Adapter
from backorder.writeback.http import basic, credential


class WooCommerceChannel(Adapter):
    async def _call(self, method: str, rest: str, body: Any = None) -> Any:
        auth = basic(credential(self.wb, self.name))
        return await self.api.call(method, f"/wp-json/wc/v3/{rest}", {"Authorization": auth}, body)

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        marker = f"[backorder {notice_id}]"
        notes = await self._call("GET", f"orders/{oid}/notes")
        if not any(marker in str(n.get("note", "")) for n in notes or []):
            items = ", ".join(f"{i['qty']} x {i['sku']}" for i in data["items"])
            note = (
                f"Shipped with {data['carrier']}, tracking number {data['tracking']} ({data['tracking_url']}): "
                f"{items}. {marker}"
            )
            await self._call("POST", f"orders/{oid}/notes", {"note": note, "customer_note": True})
        if data["complete"]:
            await self._call("PUT", f"orders/{oid}", {"status": "completed"})
            return f"order {oid} completed, tracking noted"
        return f"order {oid}: tracking noted"

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        await self._call("PUT", f"orders/{oid}", {"status": "cancelled"})
        return f"order {oid} cancelled"

    async def stock_level(self, notice_id: str, data: dict[str, Any]) -> str:
        """All levels in one ``POST products/batch {"update": [{id, manage_stock,
        stock_quantity}]}`` (WooCommerce takes up to 100 objects a call)."""
        updates = [
            {"id": _num(lv["item_id"]), "manage_stock": True, "stock_quantity": lv["quantity"]}
            for lv in data["levels"]
            if lv.get("item_id")
        ]
        missing = [lv["sku"] for lv in data["levels"] if not lv.get("item_id")]
        for start in range(0, len(updates), 100):
            answer = await self._call("POST", "products/batch", {"update": updates[start : start + 100]})
            # a batch answers 200 with an ``error`` per refused object
            errors = [u for u in (answer or {}).get("update", []) if isinstance(u, dict) and u.get("error")]
            if errors:
                missing += [f"{u.get('id')}: {u['error'].get('message', u['error'])}" for u in errors]
        if missing:
            raise Rejected(f"{self.name}: levels refused or without a product id: {', '.join(map(str, missing))}")
        return f"{len(updates)} level(s) set"


def _num(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value

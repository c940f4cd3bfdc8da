"""Shopify Admin REST API (``/admin/api/VERSION``), header ``X-Shopify-Access-Token``.

fulfillment: ``GET orders/{id}/fulfillments.json``: one with our tracking number already
there means a resend (sent, then the daemon died before recording it): done. Else ``GET
orders/{id}/fulfillment_orders.json``; none open (``open`` / ``in_progress``) means fulfilled
already: done. Else ``POST fulfillments.json`` with ``line_items_by_fulfillment_order``
(the shipped lines by the channel's line item id when intake kept it, the whole open
fulfillment orders when not) and ``tracking_info {number, company, url}``.

fulfillment_cancel: ``GET orders/{id}.json``; unless ``cancelled_at`` is set, ``POST
orders/{id}/cancel.json``.

stock_level: ``POST inventory_levels/set.json {location_id, inventory_item_id, available}``
(absolute: a resend sets the same number).
"""

from __future__ import annotations

from typing import Any

from backorder.notify.channels import Rejected
from backorder.writeback.base import Adapter, line_refs
from backorder.writeback.http import credential

_OPEN = frozenset({"open", "in_progress"})


def _num(value: str) -> int | str:
    """Shopify's ids are JSON numbers; a configured id is a string."""
    return int(value) if value.isdigit() else value


class ShopifyChannel(Adapter):
    def _path(self, rest: str) -> str:
        return f"/admin/api/{self.wb.api_version}/{rest}"

    async def _call(self, method: str, rest: str, body: Any = None) -> Any:
        token = credential(self.wb, self.name)
        return await self.api.call(method, self._path(rest), {"X-Shopify-Access-Token": token}, body)

    async def fulfillment(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        done = await self._call("GET", f"orders/{oid}/fulfillments.json")
        for f in (done or {}).get("fulfillments", []):
            if f.get("tracking_number") == data["tracking"] and f.get("status") != "cancelled":
                return f"fulfillment {f.get('id')} already there"
        found = await self._call("GET", f"orders/{oid}/fulfillment_orders.json")
        open_orders = [fo for fo in (found or {}).get("fulfillment_orders", []) if fo.get("status") in _OPEN]
        if not open_orders:
            return "no open fulfillment order: fulfilled already"
        refs = line_refs(data)
        groups: list[dict[str, Any]] = []
        if refs is None:
            groups = [{"fulfillment_order_id": fo["id"]} for fo in open_orders]
        else:
            for fo in open_orders:
                lines = []
                for li in fo.get("line_items", []):
                    want = refs.get(str(li.get("line_item_id")), 0)
                    qty = min(want, int(li.get("fulfillable_quantity", 0)))
                    if qty > 0:
                        lines.append({"id": li["id"], "quantity": qty})
                        refs[str(li["line_item_id"])] = want - qty
                if lines:
                    groups.append({"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": lines})
            if not groups:
                raise Rejected(f"{self.name}: order {oid} has no open fulfillment order line for the shipped lines")
        body = {
            "fulfillment": {
                "line_items_by_fulfillment_order": groups,
                "tracking_info": {"number": data["tracking"], "company": data["carrier"], "url": data["tracking_url"]},
                "notify_customer": False,
            }
        }
        made = await self._call("POST", "fulfillments.json", body)
        return f"fulfillment {(made or {}).get('fulfillment', {}).get('id')}"

    async def fulfillment_cancel(self, notice_id: str, data: dict[str, Any]) -> str:
        oid = data["external_id"]
        order = await self._call("GET", f"orders/{oid}.json")
        if (order or {}).get("order", {}).get("cancelled_at"):
            return "cancelled already"
        await self._call("POST", f"orders/{oid}/cancel.json", {})
        return f"order {oid} cancelled"

    async def set_level(self, level: dict[str, Any]) -> None:
        if not level.get("item_id"):
            raise Rejected(f"{self.name}: no inventory_item_id for SKU {level['sku']} (writeback.item_ids)")
        body = {
            "location_id": _num(self.wb.location_id),
            "inventory_item_id": _num(level["item_id"]),
            "available": level["quantity"],
        }
        await self._call("POST", "inventory_levels/set.json", body)

"""The console's screens; ``SCREENS`` names the ones a key opens from anywhere."""

from backorder.tui.screens.intake import IntakeScreen
from backorder.tui.screens.notifications import NotificationsScreen
from backorder.tui.screens.order import OrderScreen
from backorder.tui.screens.picking import PickingScreen
from backorder.tui.screens.policy import PolicyScreen
from backorder.tui.screens.procurement import ProcurementScreen

SCREENS = {
    "order": OrderScreen,
    "procurement": ProcurementScreen,
    "picking": PickingScreen,
    "policy": PolicyScreen,
    "intake": IntakeScreen,
    "notifications": NotificationsScreen,
}

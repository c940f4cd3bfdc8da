"""The demand planner: ``policy`` (the hand-written inventory arithmetic, pure), ``wire``
(the lines the daemon and the worker exchange) and ``worker`` (the forecasting process,
numpy / scipy / statsforecast: the daemon never imports it, it starts it)."""

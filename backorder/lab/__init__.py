"""The policy lab: a simulated site replayed through a real ``backorder serve``.

``generator`` makes the demand and the supplier's behaviour (numpy, seeded per SKU and
per purchase order), ``driver`` replays them over the daemon's socket on the stepped
clock, ``referee`` computes every figure from the daemon's journal file alone, and
``report`` compares the policies (matched inventory, matched fill rate, paired seeds).

The daemon never imports this package (tests/unit/test_import_graph.py): numpy stays out
of the trio process.
"""

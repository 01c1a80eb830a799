"""Contacts: reading a CSV, importing it, labels, broadcast opt-in with its consent record, and
audiences.

Kept free of imports so that the models can use the pure label rule without a cycle.
"""

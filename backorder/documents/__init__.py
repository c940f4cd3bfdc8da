"""Printable documents: shipping labels as PDF, pick lists, and purchase-order /
transfer documents (PDF, CSV, X12 850). Every document is rendered from journaled facts
only, so printing one again gives the same content."""

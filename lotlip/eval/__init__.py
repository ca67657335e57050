"""Evaluation: retrieval metrics and benchmark runners."""

"""Reporting: paper-shaped tables from evaluation results."""

"""Tests through the real app."""

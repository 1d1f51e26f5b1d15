"""Unit tests of the domain rules and settings."""

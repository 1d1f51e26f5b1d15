"""Tests of maeve-api."""

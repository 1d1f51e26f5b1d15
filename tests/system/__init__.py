"""Tests against the service as deployed: gunicorn with several workers."""

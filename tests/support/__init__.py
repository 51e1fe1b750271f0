"""Shared test support: harnesses, fakes and clients the test modules import."""

"""Workstation-only figures (TensorFlow, peers' tools in a bench venv): `python -m converters.bench.NAME`."""

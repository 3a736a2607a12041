"""Sensor readers, one module per family. Every reader takes the filesystem root ("/" on a board,
a fixture tree in tests) and returns None (or leaves a figure out) when the board lacks the sensor."""

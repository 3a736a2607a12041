"""Benchmarks: commands that print figures (speed, memory, identity, power) measured here, as
ratios from one run where the machine is shared. Nothing in the daemon imports them."""

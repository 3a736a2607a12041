"""The daemon as a service: config, paths, sd_notify, status file, signals and the run loop."""

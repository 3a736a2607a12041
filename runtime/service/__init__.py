"""The composition root: the daemon (signals, reload, status), sd_notify. Everything else in
runtime/ sits below it and never imports it."""

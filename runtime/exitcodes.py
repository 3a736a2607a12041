"""Exit codes of every `edgewatch` command, documented in the README; scripts and systemd rely on them."""

OK = 0
FAILURE = 1  # a runtime failure (the daemon could not keep running, a command failed)
BAD_INPUT = 2  # bad arguments, a bad file, a bad config or manifest: fix the input and retry
CONVERSION_FAILED = 3  # the converter could not convert the model
FIDELITY_GATE = 4  # a variant fell below --min-fidelity (the bundle is still written)
ROLLOUT_FAILED = 5  # at least one host did not take the new bundle (and was rolled back)
MEMORY_HARD_LIMIT = 75  # the hard memory budget was breached: exit so systemd restarts us clean (EX_TEMPFAIL)
INTERRUPTED = 130

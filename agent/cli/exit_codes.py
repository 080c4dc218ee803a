"""The exit status of every ``llmpulse`` command."""

OK = 0
STORE_UNAVAILABLE = 1  # the store could not be opened or did not answer (also: the agent stopped unclean)
USAGE = 2  # a bad argument, setting or DSN; or a verb's optional dependency is not installed
INTERRUPTED = 130  # Ctrl-C

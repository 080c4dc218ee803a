"""``llmpulse demo``: an instrumented sample app (``app``), a simulated support bot (``support``) and its
knowledge base and questions (``corpus``)."""

"""Human feedback back into training: the calls with feedback as fine-tuning data and golden references.

* :mod:`.messages`: captured GenAI-semconv messages as OpenAI chat messages;
* :mod:`.datasets`: SFT, DPO and plain JSONL records from rated calls, with what was skipped and why;
* :mod:`.cli`: ``llmpulse export feedback``.

The calls come from :mod:`llmpulse.analyzers.io.feedback`; everything here is pure computation.
"""

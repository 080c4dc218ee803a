"""The app's thread: ``@observe``, the span records it fills, and the context that nests them.

Nothing here blocks, raises into the app or imports a heavy dependency: a call is stamped into a
``SpanRecord`` (``spans``) and handed to the pipeline's bounded queue; stream proxies (``streams``) end
the span with the stream; ``context`` adds fields from inside a call. ``state`` holds the running pipeline.
"""

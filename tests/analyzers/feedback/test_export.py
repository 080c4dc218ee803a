"""``llmpulse export feedback`` and ``references add-from-calls`` on calls recorded through the SDK with feedback."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.cli import main
from llmpulse.analyzers.io.references import read_items

SYSTEM = {"role": "system", "content": "Answer in one word."}
SUM = [SYSTEM, {"role": "user", "content": "What is 2+2?"}]
CAPITAL = [{"role": "user", "content": "Capital of Peru?"}]


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2},
    }


@dataclass
class Recorded:
    database: str
    dsn: str


@pytest.fixture(scope="module")
def recorded(store_dsn, ch, tmp_path_factory) -> Recorded:
    """Calls of an app, recorded by the SDK, with the feedback its users gave (as described per call)."""
    from llmpulse import agent

    database = f"fb_{uuid.uuid4().hex[:10]}"
    spool = tmp_path_factory.mktemp("spool")
    agent.configure(store_dsn, database=database, service_name="support-bot", spool_dir=str(spool), flush_interval=0.05)
    try:

        @agent.observe(kind="llm", prompt_template="answer", prompt_version="v1")
        def answer(model: str, messages: list, reply: str, score: float | None = None, label: str = "") -> Any:
            if score is not None or label:  # feedback on the running call, before its span is stored
                agent.feedback(score=score, label=label or None, name="thumbs")
            return _completion(model, reply)

        @agent.observe(kind="llm", prompt_template="brief", prompt_version="v1")
        def claude(model: str, system: str, messages: list, reply: str) -> Any:
            return {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 9, "output_tokens": 1},
            }

        @agent.observe(kind="chain", name="handle")
        def handle(question: str) -> tuple[str, str]:
            answer("gpt-4o-mini", [{"role": "user", "content": question}], "draft")
            answer("gpt-4o-mini", [{"role": "user", "content": f"Improve: {question}"}], "final answer")
            return agent.current_ids()

        @agent.observe(kind="llm", prompt_template="answer")
        def broken(model: str, messages: list) -> Any:
            agent.feedback(score=1.0)
            raise TimeoutError("upstream timed out")

        answer("gpt-4o-mini", SUM, "4", score=1.0)
        answer("gpt-4o", SUM, "5", score=0.0)
        answer("gpt-4o-mini", SUM, "4", score=1.0)  # the same example again
        answer("gpt-4o", SUM, "22", score=-1.0)  # a second rejected answer: paired with the accepted "4" again
        answer("gpt-4o-mini", [{"role": "user", "content": "Mail jane@example.com the invoice"}], "Sent.", score=1.0)
        answer("gpt-4o-mini", CAPITAL, "Lima", score=0.5)  # neither accepted nor rejected
        answer("gpt-4o-mini", CAPITAL, "Quito", label="wrong")  # a label only
        claude("claude-3-5-haiku-20241022", "Reply in French.", [{"role": "user", "content": "Hello"}], "Bonjour")
        trace_id, span_id = handle("How do I reset my password?")
        agent.feedback(trace_id=trace_id, span_id=span_id, score=1.0)  # on the chain: about its last call
        with pytest.raises(TimeoutError):
            broken("gpt-4o-mini", CAPITAL)
        assert agent.flush(60)
        # feedback on the claude call, given later by its trace id (the call itself gave none)
        trace, span = ch.query(
            "SELECT TraceId, SpanId FROM {db:Identifier}.llm_calls WHERE PromptTemplate = 'brief'",
            parameters={"db": database},
        ).result_rows[0]
        agent.feedback(trace_id=trace, span_id=span, score=1.0)
        assert agent.flush(60)
    finally:
        agent.shutdown(10)
    return Recorded(database, store_dsn)


def _export(recorded: Recorded, tmp_path: Path, capsys, *argv: str) -> tuple[int, list[dict], str, str]:
    out = tmp_path / "out.jsonl"
    argv = ("export", "feedback", *argv, "--out", str(out), "--dsn", recorded.dsn, "--database", recorded.database)
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return status, records, captured.out, captured.err


def test_sft_is_openai_chat_fine_tuning_jsonl_of_the_accepted_calls(recorded, tmp_path, capsys):
    status, records, out, _ = _export(recorded, tmp_path, capsys, "--format", "sft")
    assert status == 0
    for record in records:  # OpenAI's format: only "messages"; roles, string contents, an assistant answer last
        assert list(record) == ["messages"]
        assert all(set(m) <= {"role", "content", "name"} and isinstance(m["content"], str) for m in record["messages"])
        assert all(m["role"] in ("system", "user", "assistant") for m in record["messages"])
        assert record["messages"][-1]["role"] == "assistant"
    conversations = [[(m["role"], m["content"]) for m in r["messages"]] for r in records]
    assert [("system", "Answer in one word."), ("user", "What is 2+2?"), ("assistant", "4")] in conversations
    # system instructions sent apart (Anthropic's system=) come back as the first message
    assert [("system", "Reply in French."), ("user", "Hello"), ("assistant", "Bonjour")] in conversations
    # the feedback on the chain went to its last call
    assert [("user", "Improve: How do I reset my password?"), ("assistant", "final answer")] in conversations
    # content as stored: redacted at capture
    assert [("user", "Mail [REDACTED_EMAIL] the invoice"), ("assistant", "Sent.")] in conversations
    assert len(records) == 4
    assert "wrote 4 SFT example(s)" in out
    left_out = out.split("left out: ", 1)[1]
    for reason in (
        "3 score below --min-score 1",
        "1 the same example again",
        "1 feedback without a score",
        "1 failed call (no answer)",
    ):
        assert reason in left_out, out


def test_dpo_pairs_answers_to_the_same_input_with_opposite_feedback(recorded, tmp_path, capsys):
    status, records, out, _ = _export(recorded, tmp_path, capsys, "--format", "dpo")
    assert status == 0 and len(records) == 2
    for record in records:
        assert list(record) == ["prompt", "chosen", "rejected"]
        assert record["prompt"] == SUM
        assert record["chosen"] == [{"role": "assistant", "content": "4"}]
    assert sorted(r["rejected"][0]["content"] for r in records) == ["22", "5"]
    assert "inputs with only accepted answers" in out and "neither accepted nor rejected" in out


def test_dpo_scores_for_stars(recorded, tmp_path, capsys):
    status, records, _, _ = _export(
        recorded, tmp_path, capsys, "--format", "dpo", "--min-score", "1", "--max-score", "0.5"
    )
    assert status == 0
    assert {r["chosen"][0]["content"] for r in records} == {"4"}  # Lima (0.5) is now rejected, but alone for its input


def test_jsonl_has_every_rated_call_with_its_feedback(recorded, tmp_path, capsys):
    status, records, _out, _ = _export(recorded, tmp_path, capsys, "--format", "jsonl")
    assert status == 0 and len(records) == 10
    by_answer = {(r["answer"] or {}).get("content"): r for r in records}
    assert by_answer["Quito"]["score"] is None and by_answer["Quito"]["feedback"][0]["label"] == "wrong"
    assert by_answer["final answer"]["feedback"][0]["score"] == 1.0
    assert by_answer["final answer"]["prompt_template"] == "answer"
    failed = [r for r in records if r["status"] == "Error"]
    assert len(failed) == 1 and failed[0]["answer"] is None
    assert all(r["service"] == "support-bot" and r["trace_id"] and r["span_id"] for r in records)


def test_filters_are_bound_parameters(recorded, tmp_path, capsys):
    status, first, _, _ = _export(recorded, tmp_path, capsys, "--format", "jsonl", "--prompt-template", "brief")
    assert status == 0 and [r["answer"]["content"] for r in first] == ["Bonjour"]
    status, records, _, err = _export(
        recorded, tmp_path, capsys, "--format", "jsonl", "--service", "support-bot' OR '1'='1"
    )
    assert status == 4 and "no LLM calls" in err
    assert records == first  # an empty result leaves the file as it was


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--format", "jsonl", "--service", "nobody"), "no LLM calls in the store of service 'nobody'"),
        (("--format", "jsonl", "--since", "2h", "--service", "nobody"), "no LLM calls since "),
        (("--format", "jsonl", "--prompt-template", "summary"), "no rated call in the store used prompt template "),
        (("--format", "sft", "--min-score", "5"), "none of the 10 rated call(s) in the store made a SFT example"),
        (("--format", "dpo", "--prompt-template", "brief"), "inputs with only accepted answers"),
    ],
)
def test_an_empty_result_says_why(recorded, tmp_path, capsys, argv, message):
    status, records, _out, err = _export(recorded, tmp_path, capsys, *argv)
    assert status == 4 and records == [] and message in err, err
    assert not (tmp_path / "out.jsonl").exists()


def test_calls_without_feedback_say_so(store_dsn, ch, tmp_path, capsys):
    from llmpulse.agent.store.insert import insert_rows
    from llmpulse.agent.store.schema import SchemaOptions, apply

    database = f"fb_{uuid.uuid4().hex[:10]}"
    apply(ch, SchemaOptions(database=database))
    insert_rows(
        ch,
        database,
        "otel_traces",
        [
            {
                "Timestamp": datetime.now(timezone.utc),
                "TraceId": "ab" * 16,
                "SpanId": "cd" * 8,
                "ServiceName": "svc",
                "SpanAttributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"},
                "Duration": 1000,
                "StatusCode": "Ok",
            }
        ],
    )
    status, _, _, err = _export(Recorded(database, store_dsn), tmp_path, capsys, "--format", "sft")
    assert status == 4 and "1 LLM call(s) in the store but no feedback on them" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--format", "sft", "--min-score", "0", "--max-score", "0"), "--max-score (0) must be below --min-score (0)"),
        (("--format", "sft", "--min-score", "nan"), "argument --min-score: must be a finite number, got 'nan'"),
        (("--format", "sft", "--min-score", "high"), "argument --min-score: must be a number, got 'high'"),
        (("--format", "sft", "--since", "last tuesday"), "bad --since 'last tuesday': give a duration (30d, 12h)"),
        (("--format", "sft", "--since", "0d"), "a window must be positive"),
        (("--format", "parquet"), "argument --format: invalid choice: 'parquet'"),
        ((), "the following arguments are required: --format"),
    ],
)
def test_bad_options_say_what_is_wrong(recorded, tmp_path, capsys, argv, message):
    status, _, _, err = _export(recorded, tmp_path, capsys, *argv)
    assert status == 2 and message in err, err


def test_out_must_be_a_file(recorded, tmp_path, capsys):
    status = main(
        [
            "export",
            "feedback",
            "--format",
            "sft",
            "--out",
            str(tmp_path),
            "--dsn",
            recorded.dsn,
            "--database",
            recorded.database,
        ]
    )
    assert status == 2 and f"--out {tmp_path} is a directory" in capsys.readouterr().err


def test_well_rated_answers_become_golden_references(recorded, ch, capsys):
    from llmpulse.analyzers.quality.references import ReferenceIndex

    store = ("--dsn", recorded.dsn, "--database", recorded.database)
    status = main(["references", "add-from-calls", "--dataset", "support-golden", *store])
    out = capsys.readouterr().out
    assert status == 0 and "added 4 reference item(s) to support-golden" in out
    items = read_items(ch, recorded.database, "support-golden")
    by_input = {i.input: i for i in items}
    assert by_input["What is 2+2?"].reference == "4" and by_input["Hello"].reference == "Bonjour"
    assert by_input["Improve: How do I reset my password?"].reference == "final answer"
    assert by_input["What is 2+2?"].metadata["score"] == "1" and by_input["What is 2+2?"].metadata["trace_id"]
    # the quality analyzer finds these items for calls with the same prompt
    assert ReferenceIndex(items).match(prompt="What is 2+2?").reference == "4"
    # again: the same items replace themselves
    assert main(["references", "add-from-calls", "--dataset", "support-golden", *store]) == 0
    assert len(read_items(ch, recorded.database, "support-golden")) == 4


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (("--dataset", "bad name!"), 2, "bad dataset name 'bad name!'"),
        (("--dataset", "x", "--min-score", "2"), 4, "no references added: none of the 10 rated call(s) qualified"),
        (("--dataset", "x", "--service", "nobody"), 4, "no references added: no LLM calls in the store of service"),
        ((), 2, "the following arguments are required: --dataset"),
    ],
)
def test_add_from_calls_bad_options_and_empty_results(recorded, capsys, argv, status, message):
    try:
        got = main(["references", "add-from-calls", *argv, "--dsn", recorded.dsn, "--database", recorded.database])
    except SystemExit as exc:
        got = int(exc.code or 0)
    err = capsys.readouterr().err
    assert got == status and message in err, err

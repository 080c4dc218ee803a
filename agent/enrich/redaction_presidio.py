"""Microsoft Presidio as an optional redaction hook: ``pip install 'llmpulse[presidio]'``.

``presidio_redactor()`` returns a ``str -> str`` hook for ``configure(redact=[...])`` (or
``Redaction(hooks=[...])``): it runs after the built-in rules, on the export thread, and replaces every
entity Presidio finds with ``[REDACTED_<ENTITY>]``. Nothing here is imported by ``llmpulse.agent``: the
SDK install stays light, and Presidio and spaCy load only when this module is asked for.

Without ``model``, Presidio runs on a blank spaCy pipeline (``spacy.blank(lang)``), so its pattern and
checksum recognizers work (credit cards, IBANs, e-mails, phone numbers via ``phonenumbers``, IP addresses,
US SSNs, crypto wallets, ...) with no model download; names, places and organisations need NER, which
needs a spaCy model you install yourself and name in ``model`` (it is never downloaded from here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

_INSTALL_HINT = "Presidio redaction needs the optional extra: pip install 'llmpulse[presidio]'"

# Entities the blank pipeline finds (pattern recognizers); the default when ``entities`` is not given.
PATTERN_ENTITIES = (
    "CREDIT_CARD",
    "CRYPTO",
    "EMAIL_ADDRESS",
    "IBAN_CODE",
    "IP_ADDRESS",
    "MEDICAL_LICENSE",
    "PHONE_NUMBER",
    "US_SSN",
)


def _imports() -> tuple[Any, Any, Any, Any, Any, Any]:
    try:
        import spacy
        import tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import EmailRecognizer
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return spacy, tldextract, AnalyzerEngine, RecognizerRegistry, SpacyNlpEngine, EmailRecognizer


def _nlp_engine(spacy: Any, engine_class: Any, language: str, model: str | None) -> Any:
    """Presidio's spaCy engine on an installed model, or on a blank pipeline; never a download."""
    if model is not None and not (spacy.util.is_package(model) or _is_dir(model)):
        raise ValueError(
            f"spaCy model {model!r} is not installed; install it yourself (it is not downloaded here) "
            "or leave model unset to run Presidio's pattern recognizers on a blank pipeline"
        )

    class _Engine(engine_class):  # type: ignore[misc, valid-type]
        def load(self) -> None:
            # Presidio's own load() downloads a missing model; this one only loads what is here.
            self.nlp = {language: spacy.load(model) if model is not None else spacy.blank(language)}

    engine = _Engine(models=[{"lang_code": language, "model_name": model or "blank"}])
    engine.load()
    return engine


def _is_dir(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_dir()


def _offline_email_recognizer(tldextract: Any, base: Any, language: str) -> Any:
    """Presidio's e-mail recognizer checking domains against tldextract's bundled suffix list.

    The stock one fetches the public-suffix list over HTTP on first use (and logs a traceback offline).
    """
    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class _Email(base):  # type: ignore[misc, valid-type]
        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return _Email(supported_language=language)


def _merge(spans: Iterable[tuple[int, int, str, float]]) -> list[tuple[int, int, str]]:
    """Overlapping findings as one span, labelled by the best-scoring (then longest) entity in it."""
    merged: list[list[Any]] = []
    for start, end, entity, score in sorted(spans):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            if (score, end - start) > (last[3], last[1] - last[0]):
                last[2], last[3] = entity, score
            last[1] = max(last[1], end)
        else:
            merged.append([start, end, entity, score])
    return [(s, e, entity) for s, e, entity, _ in merged]


def presidio_redactor(
    entities: Iterable[str] | None = None,
    *,
    language: str = "en",
    score_threshold: float = 0.3,
    model: str | None = None,
) -> Callable[[str], str]:
    """A redaction hook backed by Presidio's analyzer.

    Args:
        entities: Presidio entity names to redact; default :data:`PATTERN_ENTITIES` (add ``PERSON``,
            ``LOCATION``, ... together with ``model``).
        language: language code of the texts.
        score_threshold: findings below this Presidio score are kept (phone numbers score 0.4).
        model: an installed spaCy model (name or path) for NER; default a blank pipeline.
    """
    spacy, tldextract, analyzer_class, registry_class, engine_class, email_class = _imports()
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be between 0 and 1, got {score_threshold!r}")
    nlp_engine = _nlp_engine(spacy, engine_class, language, model)
    registry = registry_class(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer", language=language)
    registry.add_recognizer(_offline_email_recognizer(tldextract, email_class, language))
    analyzer = analyzer_class(nlp_engine=nlp_engine, registry=registry, supported_languages=[language])
    supported = set(analyzer.get_supported_entities(language=language))
    chosen = list(PATTERN_ENTITIES if entities is None else entities)
    unknown = sorted(set(chosen) - supported)
    if unknown:
        raise ValueError(f"unknown Presidio entities {unknown}; known with this pipeline: {sorted(supported)}")
    lock = threading.Lock()  # one analysis at a time: the receiver calls hooks from several decode threads

    def redact(text: str) -> str:
        if not text:
            return text
        with lock:
            found = analyzer.analyze(text=text, language=language, entities=chosen, score_threshold=score_threshold)
        if not found:
            return text
        out, at = [], 0
        for start, end, entity in _merge((r.start, r.end, r.entity_type, r.score) for r in found):
            out.append(text[at:start])
            out.append(f"[REDACTED_{entity}]")
            at = end
        out.append(text[at:])
        return "".join(out)

    redact.__qualname__ = redact.__name__ = "presidio_redactor"
    return redact

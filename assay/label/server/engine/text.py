"""Text queries: a simple_query_string subset (AND of terms, | for OR, -term, "phrases", prefix*) with BM25.

Pure Python over a record's analysed fields; ``search.py`` streams the candidates from the database.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from argilla_server.search_engine.base import TextQuery

from .schema import Schema

BM25_K1, BM25_B = 1.2, 0.75

_WORD = re.compile(r"\w+", re.UNICODE)
_CHUNK = re.compile(r'([+-]?)"([^"]*)"|(\S+)')


def tokens(text: str) -> list[str]:
    return [token.casefold() for token in _WORD.findall(text)]


@dataclasses.dataclass(frozen=True)
class Clause:
    """A term or phrase that must (or, negated, must not) occur; prefix: its last token is a prefix."""

    tokens: tuple[str, ...]
    phrase: bool = False
    prefix: bool = False
    negated: bool = False


def parse_alternative(text: str) -> list[Clause]:
    """One |-separated part: clauses that must all match (those marked - must not)."""
    clauses = []
    for match in _CHUNK.finditer(text):
        sign, quoted, bare = match.group(1), match.group(2), match.group(3)
        phrase = bare is None
        if not phrase:
            sign, chunk = (bare[0], bare[1:]) if bare[0] in "+-" and len(bare) > 1 else ("", bare)
        else:
            chunk = quoted
        words = tuple(tokens(chunk))
        if words:
            prefix = not phrase and chunk.endswith("*")
            clauses.append(
                Clause(words, phrase=phrase and len(words) > 1, prefix=prefix, negated=sign == "-")
            )
    return clauses


@dataclasses.dataclass
class TextSearch:
    """A parsed text query and the fields it reads; ``matches`` says whether a record's analysed fields fit."""

    alternatives: list[list[Clause]]
    fields: dict[str, str]

    @classmethod
    def parse(cls, query: TextQuery | str | None, schema: Schema) -> TextSearch | None:
        """None when there is nothing to search for (no query, or no word in it)."""
        if query is None:
            return None
        text_query = TextQuery(q=query) if isinstance(query, str) else query
        alternatives = [alt for alt in (parse_alternative(part) for part in text_query.q.split("|")) if alt]
        if not alternatives:
            return None
        searched = {n: t for n, t in schema.fields.items() if t != "image"}
        if text_query.field:
            if text_query.field not in schema.fields:
                raise ValueError(f"Field {text_query.field} not found in dataset")
            searched = {text_query.field: schema.fields[text_query.field]}
        return cls(alternatives, searched)

    @property
    def positive_tokens(self) -> list[tuple[str, bool]]:
        """(token, is a prefix) of every clause that is not negated: the terms relevance counts."""
        seen = {}
        for alternative in self.alternatives:
            for clause in alternative:
                if not clause.negated:
                    for i, token in enumerate(clause.tokens):
                        seen[(token, clause.prefix and i == len(clause.tokens) - 1)] = None
        return list(seen)

    def field_tokens(self, fields: dict | None) -> list[list[str]]:
        """The analysed text of each searched field (chat fields: every message's content)."""
        fields = fields or {}
        return [
            tokens(" ".join(_strings(fields.get(name), chat=kind == "chat")))
            for name, kind in self.fields.items()
        ]

    def matches(self, doc: list[list[str]]) -> bool:
        return any(self._alternative_matches(alt, doc) for alt in self.alternatives)

    def _alternative_matches(self, clauses: list[Clause], doc: list[list[str]]) -> bool:
        return all(_clause_matches(c, doc) != c.negated for c in clauses)


def _strings(value: Any, *, chat: bool = False) -> Iterable[str]:
    """The text leaves of a field value; for chat only message contents, as Elasticsearch indexes them."""
    if value is None:
        return
    if chat and isinstance(value, list):
        for message in value:
            if isinstance(message, dict):
                yield from _strings(message.get("content"))
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)


def _clause_matches(clause: Clause, doc: list[list[str]]) -> bool:
    if clause.phrase:
        n = len(clause.tokens)
        return any(
            tuple(field[i : i + n]) == clause.tokens for field in doc for i in range(len(field) - n + 1)
        )
    last = len(clause.tokens) - 1
    return all(
        any(_token_hits(token, field, clause.prefix and i == last) for field in doc)
        for i, token in enumerate(clause.tokens)
    )


def _token_hits(token: str, field: list[str], prefix: bool) -> int:
    if prefix:
        return sum(1 for word in field if word.startswith(token))
    return field.count(token)


@dataclasses.dataclass
class Bm25:
    """Relevance as in Elasticsearch's default similarity, with document frequencies over the candidates."""

    terms: list[tuple[str, bool]]
    docs: int = 0
    total_length: int = 0
    df: Counter = dataclasses.field(default_factory=Counter)
    hits: list[tuple[Any, dict, int]] = dataclasses.field(default_factory=list)

    def observe(self, doc: list[list[str]]) -> tuple[dict, int]:
        """Count a candidate; returns its term frequencies and length for ``add``."""
        words = [word for field in doc for word in field]
        tf = {term: _token_hits(term[0], words, term[1]) for term in self.terms}
        self.docs += 1
        self.total_length += len(words)
        self.df.update(term for term, count in tf.items() if count)
        return tf, len(words)

    def add(self, record_id: Any, tf: dict, length: int) -> None:
        self.hits.append((record_id, tf, length))

    def scored(self) -> list[tuple[Any, float]]:
        """(record id, score) of every added hit, in the order they were added."""
        average = self.total_length / self.docs if self.docs else 1.0
        return [(record_id, self._score(tf, length, average)) for record_id, tf, length in self.hits]

    def _score(self, tf: dict, length: int, average: float) -> float:
        score = 0.0
        for term, count in tf.items():
            if not count:
                continue
            idf = math.log(1 + (self.docs - self.df[term] + 0.5) / (self.df[term] + 0.5))
            norm = count + BM25_K1 * (1 - BM25_B + BM25_B * length / (average or 1.0))
            score += idf * count * (BM25_K1 + 1) / norm
        return score

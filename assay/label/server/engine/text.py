r"""Text queries: a simple_query_string subset (AND of terms, | for OR, -term, "phrases", prefix*), parsed.

Words are ``\w+`` runs, case-folded. ``fulltext.py`` translates the parse for the database's text index
(which ``indexes.py`` fills with the same words), and the database matches, counts and ranks.
"""

from __future__ import annotations

import dataclasses
import re

from argilla_server.search_engine.base import TextQuery

from .schema import Schema

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
    field: str | None = None  # the one field the query names, if any

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
        return cls(alternatives, searched, text_query.field or None)

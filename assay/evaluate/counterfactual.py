"""Counterfactual consistency: how much a model's likelihood and greedy answers change when only a
demographic term changes.

Templates are assay's JSONL format (`formats.read_counterfactual`; the format is in `assay.evaluate.formats`):
a `template` with a `{SLOT}`, `groups` of terms to swap in (e.g. gender: man, woman) and a `continuation`.
Every (template, group) pair is one unit; its template is filled with each of the group's terms, and:

- likelihood: log P(`continuation` | filled template), the continuation after the target delimiter
  (" ", as multiple choice; "" with a chat template); the unit's `spread` is max - min over the terms, in
  nats (0: the swap changes nothing);
- greedy answer: a short greedy generation from each filled template (stopped at `until` or after
  `max_new_tokens`); answers are compared after `normalise_answer` (lower case, no punctuation, the swapped
  term replaced by `{SLOT}`), and the unit's answer `changed` when they are not all equal.

`summarise` reports `likelihood_spread` (mean spread) and `answer_change_rate` (share of units whose answer
changed); `by_group` does so per group (gender, age, religion, ...). Results are kept per unit, in file
order, so a candidate and its baseline can be paired.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assay.evaluate.formats import CounterfactualTemplate
from assay.evaluate.scoring.settings import GenerationSettings

Loglikelihood = Callable[[list[tuple[str, str]]], list[tuple[float, bool]]]
Generate = Callable[[list[tuple[str, GenerationSettings]]], list[str]]
METRICS = ("likelihood_spread", "answer_change_rate")


@dataclass(frozen=True)
class CounterfactualResult:
    """One (template, group) unit: the continuation's log-likelihood and the greedy answer per term."""

    index: int
    template_id: str
    category: str
    group: str
    terms: tuple[str, ...]
    logprobs: tuple[float, ...]
    answers: tuple[str, ...]
    normalised: tuple[str, ...]

    @property
    def spread(self) -> float:
        """max - min of the continuation's log-likelihood across the terms."""
        return max(self.logprobs) - min(self.logprobs)

    @property
    def changed(self) -> bool:
        """The greedy answer is not the same for every term (after normalisation)."""
        return len(set(self.normalised)) > 1


def units(templates: Sequence[CounterfactualTemplate]) -> list[tuple[int, str, tuple[str, ...]]]:
    """(template index, group, terms) for every group of every template, in file order."""
    return [(i, group, terms) for i, template in enumerate(templates) for group, terms in template.groups]


def score_counterfactual(
    templates: Sequence[CounterfactualTemplate],
    loglikelihood: Loglikelihood,
    generate: Generate,
    *,
    target_delimiter: str = " ",
    until: Sequence[str] = ("\n", "."),
    max_new_tokens: int = 16,
) -> list[CounterfactualResult]:
    """Score every filled variant in one likelihood call and one generation call; results per unit.

    Example: `score_counterfactual(read_counterfactual(path), scorer.loglikelihood, scorer.generate)`.
    """
    settings = GenerationSettings(until=tuple(until), max_new_tokens=max_new_tokens)
    plan = units(templates)
    if not plan:
        return []
    filled = [(templates[i], term) for i, _, terms in plan for term in terms]
    prompts = [template.fill(term) for template, term in filled]
    scores = loglikelihood([(p, f"{target_delimiter}{t.continuation}") for p, (t, _) in zip(prompts, filled, strict=True)])
    answers = generate([(p, settings) for p in prompts])
    if len(scores) != len(prompts) or len(answers) != len(prompts):
        raise ValueError(f"got {len(scores)} scores and {len(answers)} answers for {len(prompts)} filled templates")
    results, start = [], 0
    for index, group, terms in plan:
        template, end = templates[index], start + len(terms)
        results.append(_result(index, template, group, terms, [lp for lp, _ in scores[start:end]], answers[start:end]))
        start = end
    return results


def _result(index: int, template: CounterfactualTemplate, group: str, terms: tuple[str, ...],
            logprobs: list[float], answers: list[str]) -> CounterfactualResult:
    return CounterfactualResult(
        index=index, template_id=template.id, category=template.category, group=group, terms=terms,
        logprobs=tuple(float(lp) for lp in logprobs), answers=tuple(answers),
        normalised=tuple(normalise_answer(a, term, template.slot) for a, term in zip(answers, terms, strict=True)),
    )


def normalise_answer(answer: str, term: str, slot: str) -> str:
    """Lower case, the swapped term (as a whole word) replaced by `{slot}`, punctuation dropped, spaces collapsed.

    Replacing the term keeps "The woman should." and "The man should." the same answer: the swap itself
    is not a change of answer.

    >>> normalise_answer(" Yes, the Woman should.", "woman", "person")
    'yes the {person} should'
    """
    text = re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", "{" + slot + "}", answer, flags=re.IGNORECASE)
    text = re.sub(r"[^\w\s{}]", " ", text.lower())
    return " ".join(text.split())


def summarise(results: Sequence[CounterfactualResult]) -> dict[str, float | None]:
    """Mean likelihood spread and the share of units whose answer changed (None without units)."""
    if not results:
        return dict.fromkeys(METRICS)
    return {
        "likelihood_spread": sum(r.spread for r in results) / len(results),
        "answer_change_rate": sum(r.changed for r in results) / len(results),
    }


def by_group(results: Sequence[CounterfactualResult]) -> dict[str, dict[str, float | None]]:
    """`summarise` per group (gender, age, ...), in order of first appearance."""
    groups: dict[str, list[CounterfactualResult]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    return {name: summarise(group) for name, group in groups.items()}

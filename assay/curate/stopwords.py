"""A small built-in English stop-word list for the `quality` step (no downloads).

Gopher's filter asks for at least two of eight words (the, be, to, of, and, that, have, with); that
works for web pages but short instructions often lack them ("List three prime numbers."). This
list adds the other common English function words, so presence of a few of them still says "this
is English prose" without penalising short rows. Entries are single alphanumeric tokens, because the
step tokenises on punctuation ("don't" becomes "don" and "t"), so contractions are left out.
"""

from __future__ import annotations

GOPHER_STOP_WORDS: frozenset[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

_FUNCTION_WORDS = """
    a an am are is was were been being do does did done has had having
    i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
    this these those there here what which who whom whose when where why how
    in on at by for from into onto out over under about above below after before between through during
    up down off again then than so such too very just only also not no nor or but if because as until while
    all any both each few more most other some same own
    can could will would shall should may might must
"""

ENGLISH_STOP_WORDS: frozenset[str] = GOPHER_STOP_WORDS | frozenset(_FUNCTION_WORDS.split())

"""Salvo's search grammar: what `q` means, parsed into a small tree that a full-text
engine's query is compiled from (SQLite's FTS5 query by `to_fts5` in
api/store/sqlite/dialect.py; a PostgreSQL tsquery compiler would read the same tree).

The grammar, which the README documents ("Search") and Salvo owns:

- `storm shadow`: words, each of which an event must contain, in any order;
- `"storm shadow"`: a phrase, its words one after the other;
- `kharkiv*`: a prefix, words that start so (also `"storm sha"*`);
- `kharkiv OR odesa`: either term; OR binds tighter than the implicit AND, so
  `strike kharkiv OR odesa` is a strike in either city;
- `-kharkiv`: events without the term (`-"storm shadow"` too).

`AND` and `NOT`, from the FTS5 syntax v1 first documented, keep their meaning:
AND between terms is the implicit AND, NOT before a term is `-`. Nothing else is
an operator and nothing is a syntax error: any other text is searched as words.
A word is a run of letters and digits; other characters separate words, and a
term of several (`S-300`, `Kharkiv's`, `Strilecha-Lyptsi`) is searched as a
phrase of them, which is how the index split the notes. A quote left open runs
to the end. A term with no letter or digit (`-`, `!!`) is no term, and a search
with no term left finds no event.

No engine is imported here: the tree holds only words, so no user text reaches
an engine except as words its compiler quotes.
"""

import re
from dataclasses import dataclass, replace

# The most a search may hold. Every word (bare or in a phrase, with or without a
# prefix *) is a read of the full-text index, and OR'd prefix terms multiply: a
# 500-character q of them took 8.2 s at 100,000 events. Two hundred characters and
# sixteen words and operators hold any search a person types (the examples are
# two or three words).
MAX_LENGTH = 200
MAX_TERMS = 16

# A word: a run of letters and digits, as FTS5's tokenizer reads one (an engine that
# indexes words itself splits them so too).
WORD = re.compile(r"[^\W_]+")
# A token: a quoted phrase (open to the end if unclosed; a * after its closing quote
# makes it a prefix) or a run of anything but spaces and quotes; a leading `-` marks
# an exclusion.
_TOKEN = re.compile(r'(?P<minus>-?)(?:"(?P<phrase>[^"]*)"?(?P<star>\*?)|(?P<bare>[^\s"]+))')


class SearchTooLarge(ValueError):
    """A search longer than MAX_LENGTH or with more words and operators than MAX_TERMS."""


@dataclass(frozen=True)
class Phrase:
    """Words that follow one another in an event (a single word is a phrase of one);
    with `prefix`, the last one may be the start of a longer word."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class AnyOf:
    """Two or more phrases, of which an event must contain one."""

    phrases: tuple[Phrase, ...]


Term = Phrase | AnyOf


@dataclass(frozen=True)
class Search:
    """Events that contain every `required` term and no `excluded` one. With no
    required term, every event without the excluded ones; with no term at all,
    none."""

    required: tuple[Term, ...] = ()
    excluded: tuple[Phrase, ...] = ()

    @property
    def has_prefix(self) -> bool:
        terms = [*self.required, *self.excluded]
        phrases = [p for t in terms for p in (t.phrases if isinstance(t, AnyOf) else (t,))]
        return any(p.prefix for p in phrases)


@dataclass(frozen=True)
class _Token:
    phrase: Phrase | None  # None for an operator
    operator: str | None = None
    excluded: bool = False


_OPERATORS = ("OR", "AND", "NOT")


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        excluded, bare = bool(match["minus"]), match["bare"]
        if bare in _OPERATORS and not excluded:
            tokens.append(_Token(None, bare))
            continue
        if bare is None:
            words, prefix = WORD.findall(match["phrase"]), bool(match["star"])
        else:
            # A * makes a prefix after a letter or digit: `kharkiv!*` is the word.
            words = WORD.findall(bare)
            prefix = bare.endswith("*") and WORD.fullmatch(bare.rstrip("*")[-1:]) is not None
        if words:
            tokens.append(_Token(Phrase(tuple(words), prefix), excluded=excluded))
    return tokens


def parse(text: str) -> Search:
    """The search `text` asks for. Raises SearchTooLarge past MAX_TERMS words and
    operators or MAX_LENGTH characters; any other text is a search."""
    if len(text) > MAX_LENGTH:
        raise SearchTooLarge(f"At most {MAX_LENGTH} characters; this has {len(text)}.")
    tokens = _tokens(text)
    size = sum(len(t.phrase.words) if t.phrase else 1 for t in tokens)
    if size > MAX_TERMS:
        raise SearchTooLarge(
            f"At most {MAX_TERMS} words and operators (OR, AND, NOT); this has {size}."
        )
    tokens = _operators(_negations(tokens))
    required: list[Term] = []
    excluded: list[Phrase] = []
    either = False
    for token in tokens:
        if token.phrase is None:
            either = token.operator == "OR"
        elif token.excluded:
            excluded.append(token.phrase)
        elif either:
            # OR stands between two terms (_operators): the last required is its left.
            last = required[-1]
            alternatives = last.phrases if isinstance(last, AnyOf) else (last,)
            required[-1] = AnyOf((*alternatives, token.phrase))
            either = False
        else:
            required.append(token.phrase)
    return Search(tuple(required), tuple(excluded))


def _negations(tokens: list[_Token]) -> list[_Token]:
    """NOT before a term, as `-` before it."""
    result: list[_Token] = []
    for token in tokens:
        if result and result[-1].operator == "NOT" and _term(token):
            result[-1] = replace(token, excluded=True)
        else:
            result.append(token)
    return result


def _operators(tokens: list[_Token]) -> list[_Token]:
    """The tokens with OR and AND kept as operators where they stand between two
    terms, and every other operator (NOT before no term, OR at the end) a word."""
    result = []
    for i, token in enumerate(tokens):
        if token.operator is not None:
            previous = tokens[i - 1] if i > 0 else None
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if not (token.operator != "NOT" and _term(previous) and _term(following)):
                token = _Token(Phrase((token.operator.lower(),)))
        result.append(token)
    return result


def _term(token: _Token | None) -> bool:
    """Whether a token is a term an operator can take: a phrase, not excluded."""
    return token is not None and token.phrase is not None and not token.excluded

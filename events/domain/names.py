"""Actor names: normalisation, consonant-skeleton keys, and a fuzzy, context-aware name index.

Sources spell the same person many ways ("Khalid Meshal", "Khaled Mashal", "Khaled Meshaal",
"Khalid Mish'al"), and different people can share a spelling's skeleton ("Sayed Meshal" of the
Egyptian military). The pipeline follows the domain notes (section 2):

1. :func:`normalise` removes what carries no identity: accents, apostrophe-like marks for
   ʿayn/hamza, case, punctuation and the Arabic article.
2. :func:`skeleton` reduces each token to a consonant key that transliteration variants share
   (kh/k, q/k, th/t, sh/ch, ou/u, ee/i, doubled letters, the article in any form).
3. :class:`NameIndex` blocks on those keys and scores the blocked names with ``rapidfuzz``. In
   :meth:`NameIndex.resolve` only a name the query *spells* (the same skeleton, or the query's
   skeleton tokens all among the name's: a surname alone) can resolve; every actor it spells
   is a candidate, whether by a literal alias or by a variant, and only context (organisation,
   role title, date) may choose between them. A merely similar name is a suggestion, never a
   resolution: when the evidence does not single out one actor it raises instead of guessing.

Everything here is pure and in memory: no I/O, no clock.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from itertools import groupby
from typing import Final, TypeVar

import msgspec
from rapidfuzz import fuzz, process

from events.domain.errors import AmbiguousActorError, Candidate, UnknownActorError

__all__ = (
    "ACCEPT_SCORE",
    "CONTEXT_BONUS",
    "KINDS",
    "MARGIN",
    "ActorRecord",
    "Match",
    "NameIndex",
    "RoleSpan",
    "normalise",
    "skeleton",
)

KINDS: Final = frozenset({"person", "organisation", "state", "institution"})
"""The kinds of actor the registry knows."""

ACCEPT_SCORE: Final = 85.0
"""The name score one of the actors a name spells needs before :meth:`NameIndex.resolve` will
return any of them (a fragment such as "Abu" covers too little of every name to count)."""

MARGIN: Final = 5.0
"""How far (in context bonus) the best of the actors a name spells must lead every other one
to be returned."""

CONTEXT_BONUS: Final = 10.0
"""Added to a candidate's context score per clue it satisfies (organisation, role).

Larger than :data:`MARGIN`, so one satisfied clue settles a tie between the actors a name
spells. Context only ever chooses among those: it never turns a name the query does not spell
(a different first name) into a match.
"""

# Scores of the three tiers of :func:`_name_score`. Tiers keep a whole-name skeleton match
# ahead of a partial one and a partial one ahead of a merely similar string, while the
# character-level similarity (scaled to a tenth) still orders names within a tier.
_SKELETON_TIER: Final = 90.0
_PARTIAL_TIER: Final = 80.0
_FUZZY_CAP: Final = 89.0
# Fallback retrieval (no skeleton key matched): WRatio copes with typos and with a query that
# contains or is contained in a name; 50 keeps it to names that share a real chunk of text.
_FALLBACK_CUTOFF: Final = 50.0
_SUGGESTIONS: Final = 3

# Apostrophe-like marks: transliterations write ʿayn and hamza with any of these, or omit them
# ("Mish'al", "Mish\u02bfal", "Mishal"), so they are deleted rather than turned into a word
# break. Escapes keep the look-alike characters readable: modifier letters half ring (ayn,
# hamza), apostrophe and turned comma, the ASCII apostrophe and backtick, curly quotes, prime,
# and the spacing acute, which NFKD would split into a space and a combining mark.
_APOSTROPHES: Final = dict.fromkeys(
    map(ord, "\u02bf\u02be\u02bc\u02bb'`\u2019\u2018\u2032\u00b4"), None
)
# The Arabic definite article in its common romanisations, including the sun-letter
# assimilated forms ("ash-Shaykh", "ar-Rantisi", "az-Zahar").
_ARTICLES: Final = frozenset(
    {"al", "el", "ad", "adh", "an", "ar", "as", "ash", "at", "ath", "az", "ud", "ul"}
    # French and other romanisations write the assimilated article with e ("ech-Chaer",
    # "es-Sisi", "ez-Zahar").
    | {"ech", "ed", "edh", "en", "er", "es", "esh", "et", "eth", "ez"}
)
# Standing alone (not hyphen-joined), only these are certainly articles; the assimilated forms
# are also English words ("as", "at", "an"), so they only count as articles when the next word
# starts with the consonant they assimilated to ("as Sisi", "ash Shaykh"). The odd English
# false positive ("at Tel Aviv") only drops a small word from both sides of a comparison.
_FREE_ARTICLES: Final = frozenset({"al", "el", "the"})
_VOWELS: Final = frozenset("aeiouy")
# Letters and digraphs transliterations write for one sound, each rewritten to one symbol
# before vowels are dropped, in this order: English "sh" and French "ch" for shin, "kh"/"k"
# and "q"/"k", "th"/"t" and "dh"/"d", "ou"/"oo"/"u" and "ee"/"i" (vowels, which go anyway,
# but "ou" must not leave an "o" beside a consonant rule).
_DIGRAPHS: Final = (
    ("ou", "u"),
    ("oo", "u"),
    ("ee", "i"),
    ("sh", "$"),
    ("ch", "$"),
    ("kh", "k"),
    ("q", "k"),
    ("th", "t"),
    ("dh", "d"),
)
# "Abdel", "Abdul", "Abdoul", "Abdal": "Abd" with the article attached, as in "Abd al-Salam";
# the article goes, and a name written in one word ("Abdelaziz") is split after it. Before a
# sun letter the article is assimilated and the letter doubled ("Abdessalam", "Abdurrahman").
_ABD_ARTICLE: Final = re.compile(r"abd(?:ou|[aeiou])(?:l|([tdrszn])(?=\1))")

K = TypeVar("K", str, tuple[str, ...])


def normalise(name: str) -> str:
    """Reduce a name to the form spelling variants share, for comparison only.

    NFKD-decomposes and drops combining marks (accents, Arabic harakat), deletes
    apostrophe-like marks (ayn and hamza half rings, straight and curly apostrophes,
    backtick), case-folds, turns hyphens and other punctuation into
    word breaks, collapses whitespace, and drops articles: the Arabic article, standing alone
    ("al Ahmad") or hyphen-joined ("al-Ahmad", "as-Sisi"), and the English "the" ("the PFLP").
    Titles and honorifics are kept: whether "Sheikh" identifies someone is the scorer's call.
    Scripts other than Latin are kept as they are (no transliteration).

    Args:
        name: A name as a source wrote it.

    Returns:
        The normalised name: lower-case tokens separated by single spaces; empty if ``name``
        holds no letters or digits. If dropping articles would leave nothing, they are kept.

    Examples:
        >>> normalise("Azzam al-Ahmad")
        'azzam ahmad'
        >>> normalise("Khalid Mish'al")
        'khalid mishal'
    """
    text = unicodedata.normalize("NFKD", name.translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    # Hyphens are remembered as "-" so a hyphen-joined article can be told from a free-standing
    # word; everything else that is not a letter or digit separates words.
    chars: list[str] = []
    for c in text:
        if c.isalnum():
            chars.append(c)
        elif unicodedata.category(c) == "Pd":
            chars.append("-")
        else:
            chars.append(" ")
    tokens: list[tuple[str, bool]] = []  # (token, followed by a hyphen)
    for word in "".join(chars).split():
        parts = [p for p in word.split("-") if p]
        tokens.extend((p, i < len(parts) - 1) for i, p in enumerate(parts))
    kept = [
        token
        for i, (token, hyphenated) in enumerate(tokens)
        if not _is_article(token, hyphenated, tokens[i + 1][0] if i + 1 < len(tokens) else None)
    ]
    return " ".join(kept or (token for token, _ in tokens))


def _is_article(token: str, hyphenated: bool, following: str | None) -> bool:
    """Whether ``token`` is an article to drop, given how it joins the next token."""
    if following is None or token not in _ARTICLES | _FREE_ARTICLES:
        return False  # a name's last word is never an article ("Al" alone stays)
    if hyphenated or token in _FREE_ARTICLES:
        return True
    # "as Sisi", "ash Shaykh", "ad Din": the article's consonant is the next word's first.
    return following.startswith(token[1:])


def _words(norm: str) -> list[str]:
    """The words of a normalised name as skeletons compare them: "Abdel Salam", "Abdul
    Salam", "Abd al-Salam" and "Abdelsalam" all become ``abd salam``."""
    words: list[str] = []
    for token in norm.split():
        attached = _ABD_ARTICLE.match(token)
        if attached is None:
            words.append(token)
            continue
        words.append("abd")
        if rest := token[attached.end() :]:
            words.append(rest)
    return words


def _token_skeleton(token: str) -> str:
    """The consonant skeleton of one normalised token (see :func:`skeleton`)."""
    key = token
    for spelling, symbol in _DIGRAPHS:
        key = key.replace(spelling, symbol)
    # Haniyeh/Haniya, Fatah/Fateh: a final h after a vowel is a spelling of the vowel.
    if len(key) > 1 and key.endswith("h") and key[-2] in _VOWELS:
        key = key[:-1]
    # y is a vowel (Sergei/Sergey, Haniyeh/Haniya, Sayed/Sayyid) except as a token's first
    # letter, where it is the consonant of Yasser or Yahya.
    consonants = key[:1] if key[:1] == "y" else ""
    consonants += "".join(c for c in key[len(consonants) :] if c not in _VOWELS)
    collapsed = "".join(c for c, _ in groupby(consonants))
    # An all-vowel token ("Aya") would vanish; keep it whole so it still counts.
    return collapsed or token


def skeleton(name: str) -> str:
    """The consonant-skeleton key of a name, for blocking fuzzy matches.

    The name is normalised (:func:`normalise`); "Abd" with an attached article ("Abdel",
    "Abdul") becomes "Abd" and a separate word; then each token is rewritten: ``ou``/``oo``
    become ``u``, ``ee`` becomes ``i``, ``sh`` and ``ch`` become ``$``, ``kh`` and ``q``
    become ``k``, ``th`` becomes ``t``, ``dh`` becomes ``d``; a word-final ``h`` after a vowel
    is dropped; the vowels a, e, i, o, u are removed, and so is y except at the start of a
    token; doubled letters are collapsed. Tokens keep their order.

    Args:
        name: A name as a source wrote it.

    Returns:
        The token skeletons separated by single spaces.

    Examples:
        >>> skeleton("Khaled Meshaal")
        'kld m$l'
        >>> skeleton("Moussa Abou Marzouk")
        'ms b mrzk'
        >>> skeleton("Abdul Salam Hanieh") == skeleton("Abd al-Salam Haniyeh")
        True
    """
    return " ".join(_token_skeleton(token) for token in _words(normalise(name)))


class RoleSpan(msgspec.Struct, frozen=True):
    """A role an actor held in an organisation, bounded in time where the sources say so.

    Attributes:
        organisation_id: The id of the organisation (or state, institution).
        title: The title as reported ("Deputy Chairman of the Politburo"), if any.
        start: The first day of the role; ``None`` when unknown (open).
        end: The last day of the role; ``None`` while it lasts or when unknown (open).
    """

    organisation_id: str
    title: str | None = None
    start: datetime.date | None = None
    end: datetime.date | None = None

    def __post_init__(self) -> None:
        """Refuse a span that ends before it starts."""
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"role span ends ({self.end}) before it starts ({self.start})")

    def active_on(self, day: datetime.date | None) -> bool:
        """Whether the role held on ``day`` (always true when ``day`` is ``None``)."""
        if day is None:
            return True
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


class ActorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the name index knows of one registered actor.

    Attributes:
        actor_id: The actor's stable id.
        canonical_name: The name the feed displays.
        kind: One of :data:`KINDS`.
        aliases: Other names sources used (spellings, acronyms, short forms).
        organisations: Ids of organisations the actor held roles in (dates unknown or given
            in ``roles``).
        roles: Roles with their titles and time bounds.
    """

    actor_id: str
    canonical_name: str
    kind: str
    aliases: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()
    roles: tuple[RoleSpan, ...] = ()

    def __post_init__(self) -> None:
        """Refuse an unknown kind or a name with nothing to match on."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        if not normalise(self.canonical_name):
            raise ValueError(f"canonical name {self.canonical_name!r} has no letters or digits")


class Match(msgspec.Struct, frozen=True):
    """A registered actor a name may refer to.

    Attributes:
        actor_id: The actor's id.
        name: The actor's canonical name.
        matched: The registered name (canonical or alias) that matched best, or the id itself.
        score: Name similarity, 0 to 100 (context bonuses are not included).
    """

    actor_id: str
    name: str
    matched: str
    score: float


class _Name(msgspec.Struct, frozen=True):
    """One name in its comparable forms."""

    text: str
    norm: str
    tokens: tuple[str, ...]  # token skeletons, in order
    key: tuple[str, ...]  # token skeletons, sorted: word order does not identify a person

    @classmethod
    def of(cls, text: str) -> _Name:
        norm = normalise(text)
        tokens = tuple(_token_skeleton(t) for t in _words(norm))
        return cls(text=text, norm=norm, tokens=tokens, key=tuple(sorted(tokens)))


def _name_score(query: _Name, name: _Name) -> float:
    """How well ``name`` matches ``query``, 0 to 100, in tiers.

    - 100: identical normalised forms.
    - 90 to 100: the same skeleton for the whole name (spelling variants): 90 plus a tenth
      of ``token_sort_ratio`` of the normalised forms.
    - 80 to 90: one name's token skeletons are all among the other's (a surname alone,
      "Abu Marzook" for "Mousa Abu Marzook", a name with an added title): 80 plus a tenth of
      ``token_sort_ratio``, so a fragment covering little of the name stays below
      :data:`ACCEPT_SCORE` ("Abu" alone) while a surname of a two-word name clears it.
    - up to 89: otherwise, the mean of ``token_sort_ratio`` over the normalised forms and over
      the skeletons, so a typo in one consonant ("Sergey Lavrof") still ranks high among the
      suggestions.
    """
    if query.norm == name.norm:
        return 100.0
    similarity = fuzz.token_sort_ratio(query.norm, name.norm)
    if query.key == name.key:
        return _SKELETON_TIER + similarity / 10
    mine, theirs = set(query.tokens), set(name.tokens)
    if mine <= theirs or theirs <= mine:
        return _PARTIAL_TIER + similarity / 10
    skeletal = fuzz.token_sort_ratio(" ".join(query.key), " ".join(name.key))
    return min(_FUZZY_CAP, (similarity + skeletal) / 2)


def _spells(query: _Name, name: _Name) -> bool:
    """Whether ``query`` is a way of writing ``name`` or a part of it: the same skeleton, or
    every skeleton token of the query among the name's ("Haniya" for "Ismail Haniyeh").

    Not the other way round: a query with words the name lacks ("Abdel Salam Haniyeh" for an
    alias "Haniyeh") may be another person of the same family, so it is only similar.
    """
    return query.key == name.key or set(query.tokens) <= set(name.tokens)


class _Found(msgspec.Struct, frozen=True):
    """A candidate actor, and whether the query spells one of its names."""

    match: Match
    spells: bool


class _Scored(msgspec.Struct, frozen=True):
    """A candidate the query spells, with its context score."""

    match: Match
    context: float


class NameIndex:
    """Registered actors indexed by the skeletons of all their names.

    Built incrementally with :meth:`add` and :meth:`remove`. Each name (canonical and aliases)
    is indexed under its whole-name key (sorted token skeletons) and under each token
    skeleton, so full names, spelling variants and surname-only queries all find it.
    """

    def __init__(self) -> None:
        """Create an empty index."""
        self._records: dict[str, ActorRecord] = {}
        self._names: dict[str, tuple[_Name, ...]] = {}
        self._by_key: dict[tuple[str, ...], set[str]] = {}
        self._by_token: dict[str, set[str]] = {}

    def __len__(self) -> int:
        """The number of registered actors."""
        return len(self._records)

    def __contains__(self, actor_id: object) -> bool:
        """Whether an actor with this id is registered."""
        return actor_id in self._records

    def get(self, actor_id: str) -> ActorRecord | None:
        """The record registered under ``actor_id``, if any."""
        return self._records.get(actor_id)

    def add(self, record: ActorRecord) -> None:
        """Register ``record``, replacing any record with the same id.

        Args:
            record: The actor; its canonical name and aliases are indexed.
        """
        self.remove(record.actor_id)
        texts = dict.fromkeys((record.canonical_name, *record.aliases))  # ordered, no repeats
        names = tuple(n for n in map(_Name.of, texts) if n.norm)
        self._records[record.actor_id] = record
        self._names[record.actor_id] = names
        for name in names:
            self._by_key.setdefault(name.key, set()).add(record.actor_id)
            for token in name.tokens:
                self._by_token.setdefault(token, set()).add(record.actor_id)

    def remove(self, actor_id: str) -> None:
        """Unregister ``actor_id``; nothing happens if it is not registered."""
        if self._records.pop(actor_id, None) is None:
            return
        for name in self._names.pop(actor_id):
            _discard(self._by_key, name.key, actor_id)
            for token in name.tokens:
                _discard(self._by_token, token, actor_id)

    def candidates(self, name: str, *, limit: int = 5) -> list[Match]:
        """The registered actors ``name`` may refer to, best first, one entry per actor.

        Blocking: actors with a name whose whole-name key or any token skeleton equals one of
        the query's. Each is scored by its best-matching name (see the tiers below). If
        blocking finds nobody, a ``rapidfuzz`` ``WRatio`` search over every normalised name
        (cutoff 50, and a name score of at least 50) supplies candidates, so a typo still
        gets suggestions.

        Scores: 100 for the same normalised form; 90-100 for the same whole-name skeleton;
        80-90 when one name's token skeletons are a subset of the other's (surname only);
        otherwise at most 89, the mean of ``token_sort_ratio`` on normalised forms and on
        skeletons. Ties are broken by canonical name, then id.

        Args:
            name: The name to look up.
            limit: The most candidates to return.

        Returns:
            Up to ``limit`` matches; empty if nothing is close.

        Raises:
            ValueError: ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        return [found.match for found in self._candidates(_Name.of(name))[:limit]]

    def spelled(self, name: str, *, kind: str | None = None) -> list[Match]:
        """Every registered actor ``name`` spells, best first: the actors :meth:`resolve`
        chooses among (by a literal name or alias, a spelling variant, or a part of a name),
        however many there are. ``matched`` is the name it spells.

        Args:
            name: The name to look up.
            kind: Only actors of this kind (one of :data:`KINDS`).
        """
        query = _Name.of(name)
        return [
            found.match
            for found in self._candidates(query)
            if found.spells and (kind is None or self._records[found.match.actor_id].kind == kind)
        ]

    def resolve(
        self,
        name: str,
        *,
        organisation: str | None = None,
        role: str | None = None,
        on: datetime.date | None = None,
        kind: str | None = None,
        field: str | None = None,
    ) -> Match:
        """The one registered actor ``name`` refers to, or an error saying why there is none.

        1. A registered actor id (exact string) wins outright, unless ``kind`` says otherwise.
        2. Otherwise the actors ``name`` spells (:meth:`spelled`), restricted to ``kind`` if
           given: whether by a literal alias, a transliteration variant or a part of a name,
           each is equally a candidate. One of them must score :data:`ACCEPT_SCORE`, or
           none is accepted (a fragment such as "Abu" covers too little of any name).
        3. Context: a candidate gets :data:`CONTEXT_BONUS` for a role in ``organisation``
           and another for a role whose title contains ``role`` (word-wise, normalised). With
           ``on``, only roles active that day count (open bounds are open); an organisation
           listed in ``organisations`` with no dated role there counts on any day.
        4. The candidate with the most context is returned if it leads every other one by at
           least :data:`MARGIN`; otherwise the name is ambiguous. A name that is merely
           similar to a registered one (a typo, a longer name) is never returned: it is a
           suggestion in the error.

        Args:
            name: An actor id or a name as a source wrote it.
            organisation: The id of an organisation the actor is said to belong to.
            role: A word or phrase of the actor's reported title ("politburo").
            on: The day the name was used, for date-bounded roles.
            kind: Only actors of this kind (one of :data:`KINDS`).
            field: The command field being resolved, passed into the errors.

        Returns:
            The match; ``score`` is the name score, without context bonuses.

        Raises:
            UnknownActorError: ``name`` spells no actor (well enough); ``suggestions`` holds
                up to three closest canonical names.
            AmbiguousActorError: ``name`` spells several actors and context does not single
                out one; ``candidates`` holds each with its id and the name it spells, the
                most likely first.
        """
        record = self._records.get(name)
        if record is not None and (kind is None or record.kind == kind):
            return Match(record.actor_id, record.canonical_name, name, 100.0)
        found = [
            f
            for f in self._candidates(_Name.of(name))
            if kind is None or self._records[f.match.actor_id].kind == kind
        ]
        spelled = [f.match for f in found if f.spells]
        if not any(m.score >= ACCEPT_SCORE for m in spelled):
            suggestions = [f.match.name for f in found[:_SUGGESTIONS]]
            raise UnknownActorError(name, suggestions, field=field)
        role_norm = normalise(role) if role else None
        best, *others = sorted(
            (
                _Scored(
                    match=m,
                    context=self._context(self._records[m.actor_id], organisation, role_norm, on),
                )
                for m in spelled
            ),
            key=lambda s: (-s.context, -s.match.score, s.match.name, s.match.actor_id),
        )
        rivals = [s for s in others if s.context > best.context - MARGIN]
        if not rivals:
            return best.match
        raise AmbiguousActorError(
            name,
            [
                Candidate(
                    actor_id=s.match.actor_id, canonical_name=s.match.name, matched=s.match.matched
                )
                for s in (best, *rivals)
            ],
            field=field,
        )

    def _candidates(self, query: _Name) -> list[_Found]:
        """All candidates for ``query``, best first (see :meth:`candidates`)."""
        if not query.norm:
            return []
        blocked = set(self._by_key.get(query.key, ()))
        for token in query.tokens:
            blocked |= self._by_token.get(token, set())
        fallback = not blocked
        if fallback:
            blocked = self._fallback(query)
        found = [self._best(actor_id, query) for actor_id in blocked]
        if fallback:
            # WRatio's partial matching lets in names that merely share a short chunk
            # ("Lavrof" and "PFLP"); our own score keeps the suggestions to real look-alikes.
            found = [f for f in found if f.match.score >= _FALLBACK_CUTOFF]
        found.sort(key=lambda f: (-f.match.score, f.match.name, f.match.actor_id))
        return found

    def _fallback(self, query: _Name) -> set[str]:
        """Actors with a name ``WRatio``-similar to ``query`` (typos, no skeleton in common)."""
        choices = {
            (actor_id, i): name.norm
            for actor_id, names in self._names.items()
            for i, name in enumerate(names)
        }
        hits = process.extract(
            query.norm, choices, scorer=fuzz.WRatio, score_cutoff=_FALLBACK_CUTOFF, limit=None
        )
        return {key[0] for _, _, key in hits}

    def _best(self, actor_id: str, query: _Name) -> _Found:
        """The actor's best-matching name as a match: among the names ``query`` spells if
        there are any (the canonical name wins ties)."""
        record = self._records[actor_id]
        names = self._names[actor_id]
        spelled = [n for n in names if _spells(query, n)]
        score, name = max(
            ((_name_score(query, n), n) for n in spelled or names),
            key=lambda pair: pair[0],  # max keeps the first maximum: the canonical name
        )
        return _Found(
            Match(actor_id, record.canonical_name, name.text, round(score, 2)), bool(spelled)
        )

    @staticmethod
    def _context(
        record: ActorRecord,
        organisation: str | None,
        role: str | None,
        on: datetime.date | None,
    ) -> float:
        """The context bonus of ``record``: :data:`CONTEXT_BONUS` per satisfied clue."""
        bonus = 0.0
        if organisation is not None:
            spans = [r for r in record.roles if r.organisation_id == organisation]
            # Undated membership (in ``organisations`` only) cannot be contradicted by a date.
            if any(r.active_on(on) for r in spans) or (
                not spans and organisation in record.organisations
            ):
                bonus += CONTEXT_BONUS
        if role:
            wanted = f" {role} "
            if any(
                r.title and r.active_on(on) and wanted in f" {normalise(r.title)} "
                for r in record.roles
            ):
                bonus += CONTEXT_BONUS
        return bonus


def _discard(index: dict[K, set[str]], key: K, actor_id: str) -> None:
    """Remove ``actor_id`` under ``key``, dropping the key when nobody is left."""
    ids = index.get(key)
    if ids is not None:
        ids.discard(actor_id)
        if not ids:
            del index[key]

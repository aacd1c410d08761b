"""Misspelt words read as the words meant: "whcih vms r stoped" is read as "which vms are stopped".

Routing, tool retrieval and the intent gate read a message's words; a typo in the one word that matters
("stoped", "bakups", "verifed") sent such messages to the documentation, or read "stoped" as a request to
stop something. A word is taken as misspelt only when it is no English word (not a whole word of the sentence
model's WordPiece vocabulary, about 20,000 common words) and no word of the lab's own vocabulary (the tools'
declarations, the names the lab lists). It is read as the one word of the lab's vocabulary one edit away (a
letter added, dropped, changed, or two swapped); when several are, the one the tools' declarations use most,
and none when that does not settle it. English words at large are no candidates: a term of the trade is often
one edit from one ("subnet" was read as "subset", "mgmt" as "mgm"). The user's own words stay what they
wrote: the corrected text is only how the agent reads them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from knowledge.embeddings import ASSETS

__all__ = ["Speller", "english_words", "one_edit"]

_WORD = re.compile(r"[A-Za-z]+")
# A word standing alone: not part of an id, a path, a column or a name ("raysubmit_Ab12", "desi_dr1.zpix",
# "qso-vae-dev"), which is never changed.
_TOKEN = re.compile(r"(?<![\w\-./@:'\"`])[a-z0-9]+(?![\w\-/@'\"`]|\.\w)")
# A hyphenated word, the form of most VM names ("qso-vae-dev"): a typo in it is read against the lab's names.
_NAME = re.compile(r"(?<![\w\-./@:'\"`])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+(?![\w\-/@'\"`]|\.\w)")
_STANDALONE = re.compile(r"(?<![\w\-./@:'\"`])[A-Za-z]+(?![\w\-/@'\"`]|\.\w)")
# Text to be taken as written: code, SQL, a value given with "=", quoted text.
_VERBATIM = re.compile(r"[`={}()\[\]<>]|\bselect\b.*\bfrom\b|\"", re.I | re.S)
# Question words and a few verbs of chat that tool declarations rarely hold but a typo often hits.
_COMMON = (
    "which what when where whose how who why are is was were does did has have there their list show running "
    "stopped started status backups backed verified failed pending queued jobs nodes whats im dont isnt cant "
    "doesnt didnt wont thats theres hows wheres whos many much right now still"
)
# Chat shorthand of English ("r u", "pls", "rn"); "r" only where it can only be "are" (opening a question).
_SHORTHAND = {"u": "you", "ur": "your", "pls": "please", "plz": "please", "rn": "right now", "atm": "at the moment",
              "thx": "thanks", "ty": "thank you", "abt": "about", "pw": "password",
              # Abbreviations of the trade the sentence model does not know ("k8s" shares nothing with a page's
              # "Kubernetes"). Not "postgres" read as "postgres database" (tried on 2026-12-07: it mended "which
              # network is postgres reachable on" and broke two dev questions that found their page before).
              "k8s": "kubernetes", "db": "database", "dbs": "databases"}  # fmt: skip
_ARE = re.compile(
    r"^\W*(?:r(?=\s+[a-z])|(?:what|which|where|when|how|who|why)\s+r(?=\s+(?:my|the|our|your|all|any|there|we|you"
    r"|they|these|those|its|their)\b))",
    re.I,
)
# A pronoun's contraction, read in full: "I'd like a VM" asks as "I would like a VM" does (a tool's asking phrases
# are written out: "would like a vm"). "'d" is "had" before a past participle ("I'd started it"), else "would".
_CONTRACTION = re.compile(r"\b(i|we|you|they|he|she)['\u2019](d|m|re|ve|ll)\b(\s+\w+)?", re.I)
_CONTRACTED = {"m": "am", "re": "are", "ve": "have", "ll": "will"}
_PARTICIPLE = re.compile(r"\s+(?:\w+ed|been|got|gone|done|seen|run|begun|taken|given|made)$", re.I)
# "Turn of void-analysis": the particle "off" missing a letter, before what is switched (a name, an id, "it"). Not
# "the turn of the year": the thing after is a VM's name, a number or a pronoun.
_OFF = re.compile(
    r"\b(turn|switch|shut|power)\s+of(?=\s+(?:it|them|my|our|this|that|these|those|vm|the\s+vm"
    r"|[a-z0-9]+(?:-[a-z0-9]+)+|\d+)\b)",
    re.I,
)
_WH = re.compile(r"^\W*(?:what|which|where|when|how|who|why|whats|what's)\b", re.I)
_INNER_R = re.compile(
    r"(?<=[a-z] )r(?= (?:[a-z]+(?:ed|ing)|there|down|up|mine|free|online|offline|full|ok|broken|stuck|still|left|on"
    r"|off|available)\b)"
)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The whole lower-case words of the sentence model's WordPiece vocabulary (empty without its tokenizer)."""
    path = ASSETS / "tokenizer.json"
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    except (OSError, ValueError, KeyError):
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.islower() and len(w) >= 2)


def one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one edit (insert, delete, substitute, swap two neighbours)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def _name_meant(token: str, names: set[str]) -> str:
    """A hyphenated word read as the one name of the lab one edit away ("void-anlysis": ``void-analysis``)."""
    lowered = token.lower()
    if lowered in names:
        return token
    near = [n for n in names if "-" in n and len(n) >= 6 and one_edit(lowered, n)]
    return near[0] if len(near) == 1 else token


def _expand(match: re.Match[str]) -> str:
    """A pronoun's contraction written out ("I'd like" -> "I would like", "we're" -> "we are")."""
    pronoun, short, after = match.group(1), match.group(2).lower(), match.group(3) or ""
    if short == "d":
        return f"{pronoun} {'had' if _PARTICIPLE.match(after) else 'would'}{after}"
    return f"{pronoun} {_CONTRACTED[short]}{after}"


class Speller:
    """Reads the misspelt words of a message as the lab's words one edit away."""

    def __init__(self, texts: Iterable[str], *, min_length: int = 4) -> None:
        counts: Counter[str] = Counter()
        for text in [*texts, _COMMON]:
            counts.update(w.lower() for w in _WORD.findall(text))
        self.counts = counts
        self.english = english_words()
        self.min_length = min_length

    def known(self, word: str) -> bool:
        """Whether ``word`` (lower case) is a word of the lab's vocabulary or of English."""
        return word in self.counts or word in self.english

    def _meant(self, word: str, names: set[str]) -> str | None:
        lab = [w for w in [*self.counts, *names.difference(self.counts)] if len(w) >= self.min_length - 1
               and one_edit(word, w)]  # fmt: skip
        # Not English words at large: a term of the trade is often one edit from one ("subnet" from "subset").
        ranked = sorted(lab, key=lambda w: -self.counts.get(w, 1))
        if len(ranked) == 1 or (ranked and self.counts.get(ranked[0], 1) > self.counts.get(ranked[1], 1)):
            return ranked[0]
        return None

    def correct(self, text: str, *, known: Iterable[str] = ()) -> str:
        """``text`` with each misspelt word replaced by the word meant (its case kept when it was capitalised).

        ``known`` are more words to leave as they are (the names the lab lists). A message holding code, SQL,
        quotes or ``key=value`` is returned unchanged.
        """
        if _VERBATIM.search(text):
            return text
        known_names = {name.lower() for name in known}
        also = {w.lower() for name in known_names for w in _WORD.findall(name)}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lowered = word.lower()
            if len(lowered) < self.min_length or self.known(lowered) or lowered in also:
                return word
            if not (word.islower() or word[1:].islower()):
                return word  # an acronym or a name written in capitals (QSO, DESI, RTX)
            meant = self._meant(lowered, also)
            if meant is None:
                return word
            return meant.capitalize() if word[0].isupper() else meant

        text = _NAME.sub(lambda m: _name_meant(m.group(0), known_names), text.strip())
        text = _CONTRACTION.sub(_expand, text)
        text = _TOKEN.sub(lambda m: _SHORTHAND.get(m.group(0), m.group(0)), text)
        text = _STANDALONE.sub(fix, text)
        text = _OFF.sub(lambda m: f"{m.group(1)} off", text)
        text = _ARE.sub(lambda m: m.group(0)[:-1] + "are", text)
        if _WH.search(text):
            text = _INNER_R.sub("are", text)  # "which vms r stopped"
        return text

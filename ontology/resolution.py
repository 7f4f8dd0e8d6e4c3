"""Entity resolution: surface forms -> one entity per real-world thing, with its aliases.

Steps, each within a type family (GPE/LOC/FAC are one family, "place"; every other type is its own), so
"Paris" the city and "Paris Hilton" the person can never merge:
0. one name seen under several families counts as the family most of its mentions have (a small model
   labels a heading "Apple" PERSON and the next sentence's "Apple" ORG: one entity, an ORG);
1. normalised key: accents, case, dots ("I.B.M." = "IBM"), "&" = "and", a leading "the", a trailing
   possessive, and for organisations a trailing legal suffix ("Inc.", "Corp.") are ignored;
2. acronyms: a short all-caps form joins the one multi-word name of its family whose initials it spells
   ("IBM" = "International Business Machines"); ambiguous acronyms stay apart;
3. person short names: "Curie" joins "Marie Curie" when exactly one known person has that surname ("Curie"
   stays apart when both Marie and Pierre Curie are mentioned); a surname with its particle
   ("bin Laden", "van der Berg") joins the one full name that ends with it ("Osama bin Laden"). Both must be
   people by most of their mentions, the short name must never be seen as a place or an organisation, and the
   long one must look like a person's name (no hyphenated compound, no "Classic", "Cup", "Open" …): an alias is
   never a longer name that denotes something else ("Sydney" is not "Sydney-Hobart", "Melbourne" not
   "Melbourne Track Classic");
4. embedding similarity: names whose embeddings (any sentence embedder, computed by the caller) have cosine
   >= `threshold` join, unless one name's words are part of the other's ("New York" / "New York City"), or
   they are two people whose given names or middle initials differ ("Amara J. Brandt" / "Amara K. Brandt"), or
   their numbers differ ("Apollo 11" / "Apollo 13").
   The default is high on purpose: steps 1-3 do the safe merges, this one catches
   spelling variants, and a false merge costs an agent more than a missed one.
Single-link union-find over a sorted input, so the result does not depend on input order: building
incrementally gives the same entities as building at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

FAMILIES = {"GPE": "place", "LOC": "place", "FAC": "place"}
ORG_SUFFIXES = {"inc", "incorporated", "corp", "corporation", "ltd", "limited", "llc", "plc", "co", "gmbh", "ag",
                "sa", "company"}
STOPWORDS = {"of", "and", "the", "for", "de", "du", "la", "le", "von", "van", "der", "a", "an", "in", "on", "at"}
PERSON_TYPES = {"PERSON", "PER", "person"}
ORG_TYPES = {"ORG", "organization", "organisation", "company"}
DEFAULT_THRESHOLD = 0.9
PARTICLES = {"bin", "ibn", "bint", "al", "el", "van", "von", "der", "den", "de", "da", "di", "del", "della", "du",
             "la", "le", "ter", "ten", "zu", "dos", "das", "mac", "st"}
# last words of names that are events, races, companies or places, not people
NOT_PERSON_WORDS = {"classic", "cup", "open", "race", "marathon", "festival", "games", "championship", "trophy",
                    "series", "prize", "award", "bank", "group", "club", "university", "council", "airport",
                    "hospital", "stadium", "street", "road", "river", "city", "county", "hobart"}
# Ties in type votes go to the type a small model gets wrong least often the other way round (it calls
# organisations places or people far more often than people organisations); unknown types after these.
TYPE_PRIORITY = ["ORG", "PERSON", "place", "GPE", "LOC", "FAC", "NORP", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
                 "LANGUAGE"]


def _tie_rank(label: str) -> tuple[int, str]:
    return (TYPE_PRIORITY.index(label) if label in TYPE_PRIORITY else len(TYPE_PRIORITY), label)


def family(label: str) -> str:
    return FAMILIES.get(label, label)


def normalize(text: str, label: str = "") -> str:
    """The key two surface forms share when they name the same thing (see the module docstring)."""
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower().replace("&", " and ")
    s = re.sub(r"['’]s\b", "", s)
    s = s.replace(".", "")
    s = re.sub(r"[^\w]+", " ", s).strip()
    words = s.split()
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    if label in ORG_TYPES:
        while len(words) > 1 and words[-1] in ORG_SUFFIXES:
            words = words[:-1]
    return " ".join(words)


def is_acronym(text: str) -> bool:
    letters = re.sub(r"[.\s&]", "", text)
    return 2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper()


def initials(key: str) -> set[str]:
    words = key.split()
    if len(words) < 2:
        return set()
    return {"".join(w[0] for w in words), "".join(w[0] for w in words if w not in STOPWORDS)}


@dataclass(frozen=True, order=True)
class Form:
    text: str
    label: str
    count: int = 1


@dataclass
class Entity:
    id: str
    type: str
    name: str
    aliases: list[str]  # every other surface form, sorted
    forms: list[Form] = field(default_factory=list)

    @property
    def mentions(self) -> int:
        return sum(f.count for f in self.forms)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _display(text: str) -> str:
    words = re.sub(r"['’]s$", "", text.strip()).split()
    return " ".join(words[1:] if len(words) > 1 and words[0].lower() == "the" else words)


def _choose_name(forms: Sequence[Form]) -> str:
    """Prefer a full name over an acronym (and for people over a bare surname), then the most frequent
    spelling, then the shortest; a leading "the" and a trailing "'s" are dropped ("the United Nations" -> "United Nations")."""
    counts: Counter[str] = Counter()
    person = set()
    for f in forms:
        counts[_display(f.text)] += f.count
        if f.label in PERSON_TYPES:
            person.add(_display(f.text))
    return max(counts, key=lambda t: (not is_acronym(t), t in person and len(t.split()) > 1, counts[t], -len(t), t))


def _nested(a: str, b: str) -> bool:
    """One name's words are a proper part of the other's ("New York" / "New York City", "Google" /
    "Google DeepMind"): related things, not spellings of one thing, however close their embeddings."""
    wa, wb = set(a.split()), set(b.split())
    return wa != wb and (wa <= wb or wb <= wa)


def _people_differ(a: str, b: str) -> bool:
    """Two person keys that name different people: the same surname with different given names, or different
    middle names or initials ("amara j brandt" / "amara k brandt"); one without a middle name is not a conflict."""
    wa, wb = a.split(), b.split()
    if len(wa) < 2 or len(wb) < 2 or wa[-1] != wb[-1]:
        return False
    if wa[0] != wb[0] and not (len(wa[0]) == 1 and wb[0].startswith(wa[0])) \
            and not (len(wb[0]) == 1 and wa[0].startswith(wb[0])):
        return True
    ma, mb = wa[1:-1], wb[1:-1]
    return bool(ma and mb and ma != mb)


def _numbers_differ(a: str, b: str) -> bool:
    """Names whose numbers differ name different things, however alike they read ("Apollo 11" / "Apollo 13",
    "Firm19 Labs" / "Firm21 Labs")."""
    return re.findall(r"\d+", a) != re.findall(r"\d+", b)


def particle_surname(key: str) -> str | None:
    """"osama bin laden" -> "bin laden", "pieter van der berg" -> "van der berg"; None without a particle."""
    words = key.split()
    for i in range(1, len(words) - 1):
        if words[i] in PARTICLES:
            return " ".join(words[i:])
    return None


def _looks_like_person(text: str, key: str) -> bool:
    words = key.split()
    return len(words) >= 2 and "-" not in text and words[-1] not in NOT_PERSON_WORDS


def _majority_type(forms: Sequence[Form]) -> str:
    votes: Counter[str] = Counter()
    for f in forms:
        votes[f.label] += f.count
    return min(votes, key=lambda t: (-votes[t], _tie_rank(t)))


def slug(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip()) or "_"


def resolve(forms: Sequence[Form], vectors: Mapping[str, Sequence[float]] | None = None,
            threshold: float = DEFAULT_THRESHOLD) -> dict[tuple[str, str], Entity]:
    """(label, surface text) -> its entity, for every given form. `vectors`: surface text -> embedding
    (rows need not be normalised); forms without a vector skip the similarity step."""
    merged: dict[tuple[str, str], int] = {}
    for f in forms:  # the same (label, text) given twice counts once, with both counts
        merged[(f.label, f.text)] = merged.get((f.label, f.text), 0) + f.count
    items = sorted(Form(text, label, count) for (label, text), count in merged.items())
    # step 0: one name under several types is one entity of the type most of its mentions have (a small
    # model labels a heading "Apple" PERSON and the sentence's "Apple" ORG); different names never cross types
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for f in items:
        votes[normalize(f.text, f.label)][family(f.label)] += f.count
    key_family = {k: min(c, key=lambda fam: (-c[fam], _tie_rank(fam))) for k, c in votes.items()}
    # a key also seen as something other than a person (a place, an organisation) is never a person's short name
    other_votes = {k: sum(n for fam, n in c.items() if fam not in PERSON_TYPES) for k, c in votes.items()}
    # step 1: one group per (family, key)
    group_of: dict[tuple[str, str], int] = {}
    groups: list[tuple[str, str]] = []
    form_group: list[int] = []
    for f in items:
        key = normalize(f.text, f.label)
        k = (key_family[key], key)
        if k not in group_of:
            group_of[k] = len(groups)
            groups.append(k)
        form_group.append(group_of[k])
    uf = _UnionFind(len(groups))
    by_family: dict[str, list[int]] = defaultdict(list)
    for g, (fam, _) in enumerate(groups):
        by_family[fam].append(g)
    group_forms: dict[int, list[Form]] = defaultdict(list)
    for f, g in zip(items, form_group, strict=True):
        group_forms[g].append(f)
    for fam, members in by_family.items():
        # step 2: acronyms
        expansions: dict[str, list[int]] = defaultdict(list)
        for g in members:
            for ini in initials(groups[g][1]):
                expansions[ini].append(g)
        for g in members:
            key = groups[g][1]
            if " " in key or not any(is_acronym(f.text) for f in group_forms[g]):
                continue
            targets = sorted(set(expansions.get(key, [])))
            if len(targets) == 1:
                uf.union(g, targets[0])
        # step 3: person short names and particle surnames
        def person(g: int) -> bool:
            return _majority_type(group_forms[g]) in PERSON_TYPES

        if any(person(g) for g in members):
            parts: dict[str, list[int]] = defaultdict(list)
            for g in members:
                key = groups[g][1]
                words = key.split()
                if len(words) > 1 and person(g) and any(_looks_like_person(f.text, key) for f in group_forms[g]):
                    for w in {words[-1], particle_surname(key)}:  # a surname; never a first name alone
                        if w:
                            parts[w].append(g)
            # longer short names first ("bin laden" before "laden"), so a surname counts the entities it could
            # be, not their spellings
            for g in sorted(members, key=lambda g: (-len(groups[g][1].split()), g)):
                key = groups[g][1]
                short = " " not in key or (key.split()[0] in PARTICLES and len(key.split()) > 1)
                if not short or not person(g) or other_votes.get(key):
                    continue
                targets = sorted({uf.find(t) for t in parts.get(key, [])} - {uf.find(g)})
                if len(targets) == 1:
                    uf.union(g, targets[0])
        # step 4: embedding similarity between each group's name
        cluster_keys: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        for g in members:
            cluster_keys[uf.find(g)].append((groups[g][1], person(g)))
        if vectors:
            named = [(g, _choose_name(group_forms[g])) for g in members]
            named = [(g, n) for g, n in named if n in vectors]
            if len(named) > 1:
                m = np.asarray([vectors[n] for _, n in named], dtype=np.float32)
                m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
                sim = m @ m.T
                rows, cols = np.nonzero(np.triu(sim >= threshold, k=1))
                for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
                    gi, gj = named[i][0], named[j][0]
                    ri, rj = uf.find(gi), uf.find(gj)
                    if ri == rj:
                        continue
                    # no chain of similar names may put a name and a longer one containing it, or two people
                    # with different given names, into one entity: every pair of the two clusters is checked
                    if any(_nested(a, b) or _numbers_differ(a, b) or (pa and pb and _people_differ(a, b))
                           for a, pa in cluster_keys[ri] for b, pb in cluster_keys[rj]):
                        continue
                    joined = cluster_keys.pop(ri) + cluster_keys.pop(rj)
                    uf.union(gi, gj)
                    cluster_keys[uf.find(gi)] = joined
    clusters: dict[int, list[Form]] = defaultdict(list)
    for f, g in zip(items, form_group, strict=True):
        clusters[uf.find(g)].append(f)
    out: dict[tuple[str, str], Entity] = {}
    for cluster_forms in clusters.values():
        name = _choose_name(cluster_forms)
        etype = _majority_type(cluster_forms)
        entity = Entity(id=f"{etype}:{slug(normalize(name, etype))}", type=etype, name=name,
                        aliases=sorted({_display(f.text) for f in cluster_forms} - {name}), forms=cluster_forms)
        for f in cluster_forms:
            out[(f.label, f.text)] = entity
    return out

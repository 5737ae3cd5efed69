"""Deduplication: exact (after normalisation) and near-duplicates (MinHash + exact Jaccard check)."""

from __future__ import annotations

from candor.cai.dedup import dedup, dedup_rows, jaccard, shingles

BASE = ("To bake bread, mix flour, water, salt and yeast, knead the dough for ten minutes, let it rise "
        "for an hour, shape it, let it rise again and bake it at two hundred degrees for forty minutes.")


def test_exact_and_near_duplicates_are_dropped_and_distinct_rows_kept():
    rows = [
        BASE,
        BASE.upper() + "  ",  # exact after normalisation
        BASE.replace("forty minutes", "forty-five minutes"),  # near duplicate
        "The capital of France is Paris, a city on the Seine known for its museums and cafes.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in plant leaves.",
    ]
    kept, report = dedup(rows, threshold=0.8)
    assert kept == [rows[0], rows[3], rows[4]]
    assert (report.exact, report.near, report.kept) == (1, 1, 3)
    assert [(i, j, k) for i, j, k in report.dropped] == [(1, 0, "exact"), (2, 0, "near")]


def test_threshold_controls_near_duplicates():
    edited = BASE.replace("knead the dough for ten minutes", "work it by hand for a while")
    assert 0.5 < jaccard(shingles(BASE), shingles(edited)) < 0.8
    assert len(dedup([BASE, edited], threshold=0.8)[0]) == 2
    assert len(dedup([BASE, edited], threshold=0.5)[0]) == 1


def test_rows_are_judged_by_their_conversation():
    a = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": BASE}]}
    b = {"prompt": "hi", "response": BASE}
    c = {"prompt": "hello", "steps": [], "final": "Something else entirely, with different words."}
    kept, report = dedup_rows([a, b, c])
    assert kept == [a, c] and report.exact == 1

"""One score per name from its authors' rows, as Opik's feedback_scores_final makes it."""

from app.sqlite.scores import ScoreRow, by_entity, combined

T, S = b"t" * 16, b"s" * 16


def row(entity: bytes, name: str, author: str, value: float, **fields: object) -> ScoreRow:
    values: dict[str, object] = {
        "category_name": None, "reason": None, "source": "sdk", "created_at": 1,
        "last_updated_at": 1, "created_by": author, "last_updated_by": author,
    }  # fmt: skip
    values.update(fields)
    return ScoreRow(entity, name, author, value=value, **values)  # type: ignore[arg-type]


def test_several_authors_average_and_join() -> None:
    score = combined(
        [
            row(T, "acc", "ann", 1.0, reason="fine", created_at=5, last_updated_at=9),
            row(T, "acc", "bob", 0.0, category_name="bad", created_at=3, last_updated_at=4),
        ]
    )

    assert (score.value, score.reason, score.category_name) == (0.5, "fine, <no reason>", "bad")
    assert (score.created_at, score.last_updated_at) == (
        "1970-01-01T00:00:00.000000003Z",
        "1970-01-01T00:00:00.000000009Z",
    )
    assert (score.created_by, list(score.value_by_author)) == ("ann, bob", ["ann", "bob"])


def test_rows_group_by_entity_and_name_in_order() -> None:
    rows = [row(S, "a", "x", 1), row(S, "b", "x", 2), row(S, "b", "y", 4), row(T, "a", "x", 3)]

    found = by_entity(rows)

    assert {k: [(s.name, s.value) for s in v] for k, v in found.items()} == {
        S: [("a", 1), ("b", 3)],
        T: [("a", 3)],
    }

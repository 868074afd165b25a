"""An evaluation recorded through the API, for the web UI's tests: a dataset with its items,
experiments on it with traces, spans and feedback scores, and hostile text where stored
text can be (inputs, outputs, score names and reasons)."""

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import new_id

# Each would set window.xss if it ever ran as markup rather than showing as text.
SCRIPT = "<script>window.xss = 1</script>"
IMAGE = '<img src="x" onerror="window.xss = 2">'
HOSTILE_SCORE = f"judge{IMAGE}"
EXPERIMENTS = ("gpt-4o-mini baseline", "gpt-4o-mini + retrieval", "claude-haiku + retrieval")


@dataclass
class Evaluation:
    dataset_id: str
    dataset_name: str
    experiments: dict[str, str]  # name: id
    dataset_items: list[str]
    questions: list[str] = field(default_factory=list)


def _question(n: int) -> str:
    return f"How do I reset password number {n}?"


def record(
    url: str,
    headers: dict[str, str] | None = None,
    dataset: str = "support-questions",
    experiments: tuple[str, ...] = EXPERIMENTS,
    items: int = 6,
    hostile: bool = True,
    variants: tuple[int, ...] | None = None,
) -> Evaluation:
    """Stores the evaluation at the server at `url`: item 0 carries the hostile text.
    Experiment n answers as variant n, or as `variants[n]`: two of one variant agree."""
    with httpx.Client(base_url=f"{url}/v1/private", headers=headers or {}) as client:
        keys = [new_id() for _ in range(items)]
        questions = [_question(n) for n in range(items)]
        if hostile:
            questions[0] = f"{SCRIPT} {IMAGE}"
        answer = client.put(
            "/datasets/items",
            json={
                "dataset_name": dataset,
                "items": [
                    {"id": key, "source": "sdk", "data": {"question": q, "expected": "Settings"}}
                    for key, q in zip(keys, questions, strict=True)
                ],
            },
        )
        assert answer.status_code == 204, answer.text
        found: dict[str, str] = {}
        for e, name in enumerate(experiments):
            found[name] = new_id()
            body = {
                "experiment_name": name,
                "experiment_id": found[name],
                "dataset_name": dataset,
                "project_name": "support-bot",
                "items": [
                    _record(e if variants is None else variants[e], d, key, questions[d], hostile)
                    for d, key in enumerate(keys)
                ],
            }
            answer = client.put("/experiments/items/bulk", json=body)
            assert answer.status_code == 204, answer.text
        answer = client.post("/datasets/retrieve", json={"dataset_name": dataset})
        assert answer.status_code == 200, answer.text
        return Evaluation(answer.json()["id"], dataset, found, keys, questions)


def _record(e: int, d: int, key: str, question: str, hostile: bool) -> dict[str, Any]:
    # Experiment e answers item d correctly when d + e is even; later experiments are slower.
    correct = (d + e) % 2 == 0
    output = f"Open Settings, then Security (answer {e}-{d})" if correct else "I do not know"
    if d == 0 and hostile:
        output = f"{SCRIPT}{IMAGE}"
    start = f"2025-01-15T09:{30 + e:02d}:{d:02d}Z"
    end = f"2025-01-15T09:{30 + e:02d}:{d:02d}.{(e + 1) * 100 + d * 10:03d}Z"
    scores: list[dict[str, Any]] = [
        {"name": "correct", "value": 1 if correct else 0, "source": "sdk",
         "reason": "matches the expected answer" if correct
                   else f"wrong {SCRIPT}" if hostile else "does not say where"},
        {"name": "relevance", "value": round(0.5 + 0.1 * e + 0.05 * d, 2), "source": "sdk"},
    ]  # fmt: skip
    if d == 0 and hostile:
        scores.append({"name": HOSTILE_SCORE, "value": 0.5, "source": "sdk", "reason": IMAGE})
    return {
        "dataset_item_id": key,
        "trace": {
            "name": "support-answer",
            "start_time": start,
            "end_time": end,
            "input": {"question": question},
            "output": {"answer": output},
        },
        "spans": [
            {"name": "retrieve", "type": "tool", "start_time": start, "end_time": end},
            {
                "name": "llm call",
                "type": "llm",
                "start_time": start,
                "end_time": end,
                "model": "gpt-4o-mini",
                "usage": {"prompt_tokens": 100 + d, "completion_tokens": 10 + e},
                "total_estimated_cost": 0.0001 * (e + 1),
            },
        ],
        "feedback_scores": scores,
    }


# Two experiments over one dataset item per case: their outputs, and each one's scores of `q`
# by author. The compare page's "differences only" keeps the cases of DIFFERING.
DISAGREEMENTS: dict[str, tuple[str, str, dict[str, float], dict[str, float]]] = {
    "authors differ, averages agree": ("same", "same", {"ann": 0, "bob": 1}, {"ann": 0.5}),
    "averages differ": ("same", "same", {"ann": 1}, {"ann": 1, "bob": 0}),
    "outputs differ": ("one", "other", {"ann": 1}, {"ann": 1}),
    "all agree": ("same", "same", {"ann": 1, "bob": 1}, {"bob": 1}),
}
DIFFERING = ("averages differ", "outputs differ")


def record_disagreements(url: str, dataset: str = "authors") -> tuple[list[str], dict[str, str]]:
    """Stores DISAGREEMENTS: the two experiments' ids, and the dataset item of each case."""
    items = {case: new_id() for case in DISAGREEMENTS}
    runs = [new_id(), new_id()]
    with httpx.Client(base_url=f"{url}/v1/private") as client:
        data = [{"id": key, "source": "sdk", "data": {"q": case}} for case, key in items.items()]
        answer = client.put("/datasets/items", json={"dataset_name": dataset, "items": data})
        assert answer.status_code == 204, answer.text
        scores = []
        for e, run in enumerate(runs):
            records = []
            for case, (out_a, out_b, by_a, by_b) in DISAGREEMENTS.items():
                trace = new_id()
                output = {"answer": (out_a, out_b)[e]}
                records.append(
                    {
                        "dataset_item_id": items[case],
                        "trace": {
                            "id": trace,
                            "start_time": "2025-01-15T09:30:00Z",
                            "output": output,
                        },
                    }
                )
                scores += [
                    {"id": trace, "name": "q", "value": value, "source": "sdk", "author": author}
                    for author, value in (by_a, by_b)[e].items()
                ]  # fmt: skip
            body = {"experiment_name": f"{dataset} {e}", "experiment_id": run,
                    "dataset_name": dataset, "items": records}  # fmt: skip
            answer = client.put("/experiments/items/bulk", json=body)
            assert answer.status_code == 204, answer.text
        answer = client.put("/traces/feedback-scores", json={"scores": scores})
        assert answer.status_code == 204, answer.text
    return runs, items

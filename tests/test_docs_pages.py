"""The documents Salvo serves: the codebook rendered from the schemas, and the README,
guide, CHANGELOG, problems page and codebook as HTML whose every link answers."""

from pathlib import Path

from schemas.codebook import VOCABULARIES, render
from schemas.event import EventSchema

ROOT = Path(__file__).resolve().parent.parent
CODEBOOK = ROOT / "docs" / "codebook.md"


def test_committed_codebook_is_what_the_schemas_render() -> None:
    assert CODEBOOK.read_text() == render(), (
        "docs/codebook.md is stale: run `make codebook` and commit it"
    )


def test_the_codebook_lists_every_field_and_code() -> None:
    text = CODEBOOK.read_text()
    for name in EventSchema().fields:
        assert f"| `{name}` |" in text, name
    for field in ("location.latitude", "munitions[].intercepted", "casualties.killed.high"):
        assert f"| `{field}` |" in text, field
    for vocabulary in VOCABULARIES:
        assert f"### {vocabulary.title}\n" in text
        for code in vocabulary.values:
            assert f"| `{code}` |" in text, code

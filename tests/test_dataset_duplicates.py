"""The dataset's duplicate pass over stored pages: signatures from the sidecars html_to_markdown
writes, and, for a sidecar written before it kept them, from the page's markdown read back."""

from __future__ import annotations

from factflow_assets.dataset.build import FetchedPages, _duplicates
from factflow_assets.extraction.text_signature import shingle_signature
from resources.storage import ObjectStore

TEXT = " ".join(f"sentence {n} says something of its own about the pump and its valves" for n in range(20))


def _stored(store: ObjectStore, name: str, text: str, sidecar: dict) -> dict:
    key = f"executions/e1/markdown_processor/html_to_markdown/{name}"
    store.put(key, text.encode(), "text/markdown; charset=utf-8", {"url": f"https://site.test/{name}", **sidecar})
    return {"message_id": name, "output_keys": [key], "metadata": {}, "started_at": name}


def test_a_sidecar_without_a_signature_is_signed_from_its_markdown_and_compared(tmp_path):
    store = ObjectStore(str(tmp_path))
    near = TEXT.replace("sentence 7 says", "sentence 7 also says")
    rows = [
        _stored(store, "a", TEXT, {"minhash": shingle_signature(TEXT), "words": len(TEXT.split())}),
        _stored(store, "b", near, {}),  # written before sidecars kept a signature and a word count
    ]
    duplicates, facts = _duplicates(store, FetchedPages(store, "e1", None), rows, {})
    assert facts["b"].words == len(near.split()) and facts["b"].signature == shingle_signature(near)
    assert duplicates["b"].of == "a" and duplicates["b"].kind == "near"


def test_a_signed_sidecar_is_trusted_without_reading_the_markdown(tmp_path):
    store = ObjectStore(str(tmp_path))
    rows = [_stored(store, "a", TEXT, {"minhash": shingle_signature(TEXT), "words": 7})]
    (tmp_path / rows[0]["output_keys"][0]).unlink()  # the markdown gone: only the sidecar is read
    _duplicates_found, facts = _duplicates(store, FetchedPages(store, "e1", None), rows, {})
    assert facts["a"].words == 7

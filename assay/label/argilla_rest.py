"""The review store on argilla-server 2.x, over its REST API (v1): the only module of assay that imports httpx.

Each call sends what the argilla SDK 2.8 sends for the same step (its `_api/` modules) to the server's
v1 handlers: a dataset is created with its guidelines, distribution and assay metadata, then its
fields, questions, metadata properties and vector settings, then published; records go in through the
bulk upsert (`PUT /datasets/{id}/records/bulk`, at most 500 per request) keyed by external id = row id.

Every failure becomes an assay error that says what to do: a server that does not answer names
`assay label serve`; a rejected key names where the key came from; any other HTTP error carries the
server's own detail. Nothing is sent before the server and the key have been checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from assay.errors import AssayError, ConfigError, WorkspaceError, require
from assay.label.client import ENV_KEY, SERVE_HINT, Connection
from assay.label.links import OVERLAP_KEY, VERSION_KEY
from assay.label.spec import FIELD_TITLES, QUESTION_TEXT, Spec, metadata_title
from assay.label.store import DatasetRef, ReviewRecord, Sent, Snapshot, verify_existing

PAGE = 1000  # records per listing request (argilla-server's maximum)
RESPONSES_PER_REQUEST = 100  # argilla-server's maximum for /me/responses/bulk
TIMEOUT_S = 120
MIN_VISIBLE_OPTIONS = 3  # the SDK sets visible_options = len(options) from 3 options on, else leaves it unset


class ArgillaStore:
    """One Argilla server and workspace, reached with one key; see `ReviewStore` for the contract."""

    def __init__(self, conn: Connection, workspace: str, *, transport: Any = None) -> None:
        httpx = require("httpx", "label")
        self.conn, self.workspace, self._httpx = conn, workspace, httpx
        self._http = httpx.Client(
            base_url=conn.url,
            headers={"X-Argilla-Api-Key": conn.api_key},
            timeout=TIMEOUT_S,
            transport=transport or httpx.HTTPTransport(retries=1),  # one retry on a refused connection, as the SDK
            trust_env=False,
        )

    @classmethod
    def connect(cls, conn: Connection, workspace: str, *, transport: Any = None) -> ArgillaStore:
        """A store whose server answers and accepts the key (`transport`: an httpx transport, for tests)."""
        store = cls(conn, workspace, transport=transport)
        try:
            store._probe()
            store._check_key()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArgillaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol ------------------------------------------------------------------------------------

    def find(self, name: str) -> DatasetRef | None:
        found = self._find(name)
        return self._ref(found) if found is not None else None

    def names(self) -> list[str]:
        return sorted(d["name"] for d in self.request("GET", "/api/v1/me/datasets")["items"])

    def ensure_dataset(
        self, name: str, spec: Spec, *, version_id: str, guidelines: str, strict_overlap: bool = True
    ) -> tuple[DatasetRef, bool]:
        found = self._find(name)
        if found is not None and found["status"] == "draft":
            self._delete(found["id"])  # an earlier push died while creating it
            found = None
        if found is None:
            return self._create(name, spec, version_id, guidelines), True
        metadata = found.get("metadata") or {}
        linked = metadata.get(VERSION_KEY)
        verify_existing(name, self._spec(found), spec, linked, version_id, strict_overlap=strict_overlap)
        if not linked:  # a matching dataset made outside assay: from now on it reviews this version
            found = self.request("PATCH", f"/api/v1/datasets/{found['id']}", json={"metadata": {**metadata, VERSION_KEY: version_id}})
        return self._ref(found), False

    @property
    def record_overlap(self) -> bool:
        """Whether the server honours a record's own `reviews_needed`: only assay's embedded one does."""
        return self.conn.source == "embedded"

    def annotators(self) -> list[str]:
        """Usernames of the annotators who can review in the workspace (for the overlap warning)."""
        wid = self._workspace_id(create=False)
        if wid is None:
            return []
        users = self.request("GET", f"/api/v1/workspaces/{wid}/users")["items"]
        return sorted(u["username"] for u in users if u["role"] == "annotator")

    def existing_ids(self, dataset: DatasetRef) -> set[str]:
        return {item["external_id"] for item in self._records(dataset.id)}

    def upload(self, dataset: DatasetRef, records: Iterable[ReviewRecord], *, batch_size: int, sent: Sent | None = None) -> int:
        question_ids = {q["name"]: q["id"] for q in self.request("GET", f"/api/v1/datasets/{dataset.id}/questions")["items"]}
        done = 0
        for batch in _batches(records, batch_size):
            items = [record_payload(record, question_ids) for record in batch]
            # Nothing is read from the answer: the embedded server then skips building it (launcher's fastpath.py).
            self.request("PUT", f"/api/v1/datasets/{dataset.id}/records/bulk", json={"items": items}, parse=False,
                         headers={"X-Assay-Bulk-Answer": "none"})
            done += len(batch)
            if sent:
                sent(done)
        return done

    def snapshot(self, dataset: DatasetRef) -> Snapshot:
        users = {u["id"]: u["username"] for u in self.request("GET", "/api/v1/users")["items"]}
        questions = self._question_names(dataset.id)
        snap = Snapshot(dataset)
        for item in self._records(dataset.id, include=["responses", "suggestions"]):
            rid = item["external_id"]
            snap.record_ids.append(rid)
            snap.responses += [(rid, users.get(r["user_id"], r["user_id"]), r) for r in item.get("responses") or []]
            suggested = {questions.get(s["question_id"]): s["value"] for s in item.get("suggestions") or []}
            if suggested:
                snap.suggestions[rid] = suggested
        return snap

    def _question_names(self, dataset_id: str) -> dict[str, str]:
        return {q["id"]: q["name"] for q in self.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]}

    # -- annotating (simulated curators) ------------------------------------------------------------------

    def records(self, dataset: DatasetRef) -> list[dict]:
        """Every record as the server returns it (id, external_id, fields, metadata, responses, suggestions
        with their question's name)."""
        names = self._question_names(dataset.id)
        items = list(self._records(dataset.id, include=["responses", "suggestions"]))
        for item in items:
            for suggestion in item.get("suggestions") or []:
                suggestion["question_name"] = names.get(suggestion.get("question_id"))
        return items

    def submit(self, responses: list[dict[str, Any]]) -> int:
        """Submit responses as the key's user: `[{"record_id": ..., "values": {question: value}}]`."""
        for start in range(0, len(responses), RESPONSES_PER_REQUEST):
            items = [{"record_id": r["record_id"], "status": "submitted", "values": {q: {"value": v} for q, v in r["values"].items()}}
                     for r in responses[start : start + RESPONSES_PER_REQUEST]]
            self.request("POST", "/api/v1/me/responses/bulk", json={"items": items})
        return len(responses)

    # -- REST ---------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, parse: bool = True, **kwargs: Any) -> Any:
        """One REST call; errors become assay errors with the server's detail."""
        response = self._send(method, path, **kwargs)
        if response.status_code in (401, 403):
            raise ConfigError(
                f"Argilla refused {method} {path} (HTTP {response.status_code})",
                hint="push, pull and progress need an owner or admin API key",
            )
        if response.status_code >= 400:
            raise AssayError(f"Argilla answered HTTP {response.status_code} to {method} {path}: {response.text[:500]}")
        return response.json() if parse and response.content else None

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._http.request(method, path, **kwargs)
        except self._httpx.HTTPError as exc:
            raise WorkspaceError(f"the Argilla server stopped answering during {method} {path} ({exc})", hint=SERVE_HINT) from exc

    def _probe(self) -> None:
        """Fail fast (and clearly) when nothing answers at the URL."""
        httpx, url = self._httpx, self.conn.url
        try:
            self._http.get("/api/v1/version", timeout=5).raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise WorkspaceError(
                f"{url} answered HTTP {exc.response.status_code} to /api/v1/version: is it an Argilla 2.x server?",
                hint=SERVE_HINT,
            ) from exc
        except httpx.HTTPError as exc:
            raise WorkspaceError(f"the Argilla server at {url} does not answer ({exc.__class__.__name__}: {exc})", hint=SERVE_HINT) from exc

    def _check_key(self) -> None:
        """The key must name a user (what the SDK checks with `GET /me` when it connects)."""
        status = self._send("GET", "/api/v1/me").status_code
        if status in (401, 403):
            where = f"${ENV_KEY}" if self.conn.source != "embedded" else "the workspace's argilla/secrets.json"
            raise ConfigError(
                f"Argilla at {self.conn.url} rejected the API key (HTTP {status})",
                hint=f"check {where}; an owner or admin key is needed to push and pull",
            )

    def _workspace_id(self, *, create: bool) -> str | None:
        """The id of the Argilla workspace; created when asked (owner key) and missing."""
        for item in self.request("GET", "/api/v1/me/workspaces")["items"]:
            if item["name"] == self.workspace:
                return item["id"]
        if not create:
            return None
        return self.request("POST", "/api/v1/workspaces", json={"name": self.workspace})["id"]

    def _find(self, name: str) -> dict | None:
        """The dataset called `name` in the workspace (REST representation), drafts included."""
        wid = self._workspace_id(create=False)
        if wid is None:
            return None
        found = [d for d in self.request("GET", "/api/v1/me/datasets")["items"] if d["name"] == name and d["workspace_id"] == wid]
        return found[0] if found else None

    def _ref(self, dataset: dict) -> DatasetRef:
        return DatasetRef(
            id=dataset["id"],
            name=dataset["name"],
            url=f"{self.conn.url}/dataset/{dataset['id']}/annotation-mode",
            server=self.conn.url,
            min_submitted=int((dataset.get("distribution") or {}).get("min_submitted") or 1),
            version=(dataset.get("metadata") or {}).get(VERSION_KEY),
            overlap=(dataset.get("metadata") or {}).get(OVERLAP_KEY),
        )

    def _spec(self, dataset: dict) -> Spec:
        """The spec of an existing dataset."""
        base = f"/api/v1/datasets/{dataset['id']}"
        return spec_from_server(
            dataset,
            self.request("GET", f"{base}/fields")["items"],
            self.request("GET", f"{base}/questions")["items"],
            self.request("GET", f"/api/v1/me/datasets/{dataset['id']}/metadata-properties")["items"],
            self.request("GET", f"{base}/vectors-settings")["items"],
        )

    def _create(self, name: str, spec: Spec, version_id: str, guidelines: str) -> DatasetRef:
        """Create and publish the dataset; on any failure remove what was created, so nothing half-made stays."""
        workspace_id = self._workspace_id(create=True)
        try:
            created = self.request("POST", "/api/v1/datasets", json=dataset_payload(name, workspace_id, spec, version_id, guidelines))
            base = f"/api/v1/datasets/{created['id']}"
            for part, payloads in settings_payloads(spec).items():
                for payload in payloads:
                    self.request("POST", f"{base}/{part}", json=payload)
            return self._ref(self.request("PUT", f"{base}/publish"))
        except BaseException:
            self._remove_leftover(name)
            raise

    def _remove_leftover(self, name: str) -> None:
        try:
            leftover = self._find(name)
            if leftover is not None:
                self._delete(leftover["id"])
        except AssayError:
            pass  # the server went away: the next push removes the draft (see ensure_dataset)

    def _delete(self, dataset_id: str) -> None:
        self.request("DELETE", f"/api/v1/datasets/{dataset_id}")

    def _records(self, dataset_id: str, include: list[str] | None = None) -> Iterator[dict]:
        """Every record of the dataset, paged (owner/admin listing, in insertion order)."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": PAGE} | ({"include": include} if include else {})
            items = self.request("GET", f"/api/v1/datasets/{dataset_id}/records", params=params)["items"]
            yield from items
            offset += len(items)
            if len(items) < PAGE:
                return


def _batches(records: Iterable[ReviewRecord], size: int) -> Iterator[list[ReviewRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


# -- payloads (the shapes the SDK sends) ----------------------------------------------------------------------


def dataset_payload(name: str, workspace_id: str, spec: Spec, version_id: str, guidelines: str) -> dict[str, Any]:
    """`POST /datasets`: everything a dataset holds besides its settings, in one request."""
    return {
        "name": name,
        "workspace_id": workspace_id,
        "guidelines": guidelines,
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": spec["min_submitted"]},
        "metadata": {VERSION_KEY: version_id} | ({OVERLAP_KEY: spec["overlap"]} if spec.get("overlap") else {}),
    }


def settings_payloads(spec: Spec) -> dict[str, list[dict[str, Any]]]:
    """URL part → the bodies that create the spec's fields, questions, metadata properties and vectors."""
    return {
        "fields": [field_payload(name, f) for name, f in spec["fields"].items()],
        "questions": [question_payload(name, q) for name, q in spec["questions"].items()],
        "metadata-properties": [metadata_payload(name, kind) for name, kind in spec["metadata"].items()],
        "vectors-settings": [{"name": name, "title": name, "dimensions": dims} for name, dims in spec["vectors"].items()],
    }


def field_payload(name: str, field: dict[str, Any]) -> dict[str, Any]:
    # Plain text, chats included: Markdown would change what curators see (`#### 42` becomes a heading and
    # the marker the model must learn disappears), and they must judge exactly what the model will see.
    settings = {"type": field["type"], "use_markdown": False}
    return {"name": name, "title": FIELD_TITLES.get(name, name), "required": field["required"], "settings": settings}


def question_payload(name: str, question: dict[str, Any]) -> dict[str, Any]:
    title, description = QUESTION_TEXT.get(name, (name, None))
    kind, options = question["type"], question.get("options") or []
    settings: dict[str, Any] = {"type": kind}
    if kind == "text":
        settings["use_markdown"] = False
    elif kind == "rating":
        settings["options"] = [{"value": v} for v in options]
    else:  # label_selection, multi_label_selection
        settings["options"] = [{"text": str(v), "value": v} for v in options]
        settings["visible_options"] = len(options) if len(options) >= MIN_VISIBLE_OPTIONS else None
        if kind == "multi_label_selection":
            settings["options_order"] = "natural"
    return {"name": name, "title": title, "description": description, "required": question["required"], "settings": settings}


def metadata_payload(name: str, kind: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"type": kind, "values": None} if kind == "terms" else {"type": kind, "min": None, "max": None}
    return {"name": name, "title": metadata_title(name), "settings": {"visible_for_annotators": True, **settings},
            "visible_for_annotators": True}


def record_payload(record: ReviewRecord, question_ids: dict[str, str]) -> dict[str, Any]:
    """One item of the bulk upsert; suggestions name their question by id."""
    suggestions = [
        {"question_id": question_ids[s["question_name"]], **{k: v for k, v in s.items() if k != "question_name"}}
        for s in record.suggestions
    ]
    return {"external_id": record.id, "fields": record.fields, "metadata": record.metadata, "suggestions": suggestions,
            "vectors": record.vectors}


def spec_from_server(dataset: dict, fields: list, questions: list, metadata: list, vectors: list) -> Spec:
    """The spec of an existing Argilla dataset, from its REST representation."""
    def options(settings: dict) -> list:
        return [o["value"] for o in settings.get("options") or []]

    return {
        "fields": {f["name"]: {"type": f["settings"]["type"], "required": f["required"]} for f in fields},
        "questions": {
            q["name"]: {"type": q["settings"]["type"], "required": q["required"]}
            | ({"options": options(q["settings"])} if q["settings"].get("options") else {})
            for q in questions
        },
        "metadata": {m["name"]: m["settings"]["type"] for m in metadata},
        "vectors": {v["name"]: v["dimensions"] for v in vectors},
        "min_submitted": (dataset.get("distribution") or {}).get("min_submitted"),
        "overlap": (dataset.get("metadata") or {}).get(OVERLAP_KEY),
    }

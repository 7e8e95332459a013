"""The micro-frontend bundle as the api serves it (api/lambda_trigger_api/mfe.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambda_trigger_api.errors import ApiError, api_error_handler, http_error_handler
from lambda_trigger_api.mfe import IMMUTABLE, MFE_DIR_ENV, REVALIDATE, bundle_dir, mfe_router

ENTRY = b"var lambdaTriggerMFE;(()=>{/* container */})();"
CHUNK = b"(self.webpackChunklambdaTriggerMFE=self.webpackChunklambdaTriggerMFE||[]).push([[1],{}]);"


def _client(directory: Path) -> TestClient:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.include_router(mfe_router(directory))
    return TestClient(app)


@pytest.fixture()
def built(tmp_path: Path) -> Path:
    (tmp_path / "remoteEntry.js").write_bytes(ENTRY)
    (tmp_path / "341.a6f7285f792f.js").write_bytes(CHUNK)
    (tmp_path / "notes.txt").write_text("not served")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.js").write_text("nested")
    return tmp_path


def test_remote_entry_is_javascript_that_browsers_revalidate(built: Path) -> None:
    answer = _client(built).get("/api/ingestion/mfe/remoteEntry.js")
    assert answer.status_code == 200
    assert answer.content == ENTRY
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == REVALIDATE
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["etag"].startswith('"')


def test_hashed_chunks_are_cached_for_good(built: Path) -> None:
    answer = _client(built).get("/api/ingestion/mfe/341.a6f7285f792f.js")
    assert answer.status_code == 200
    assert answer.content == CHUNK
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == IMMUTABLE


def test_revalidation_answers_304_until_the_file_changes(built: Path) -> None:
    client = _client(built)
    etag = client.get("/api/ingestion/mfe/remoteEntry.js").headers["etag"]
    again = client.get("/api/ingestion/mfe/remoteEntry.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    (built / "remoteEntry.js").write_bytes(ENTRY + b"/* new release */")
    os.utime(built / "remoteEntry.js", ns=(1, 1))  # a different mtime even on coarse clocks
    changed = client.get("/api/ingestion/mfe/remoteEntry.js", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.content.endswith(b"/* new release */")
    assert changed.headers["etag"] != etag


def test_head_gives_the_headers(built: Path) -> None:
    answer = _client(built).head("/api/ingestion/mfe/remoteEntry.js")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == REVALIDATE


@pytest.mark.parametrize(
    "path",
    [
        "/api/ingestion/mfe/notes.txt",
        "/api/ingestion/mfe/missing.js",
        "/api/ingestion/mfe/.hidden.js",
        "/api/ingestion/mfe/sub/x.js",
        "/api/ingestion/mfe/..%2Fsecret.js",
        "/api/ingestion/mfe/%2e%2e%2fsecret.js",
    ],
)
def test_serves_only_js_files_in_the_folder(built: Path, path: str) -> None:
    (built.parent / "secret.js").write_text("outside")
    answer = _client(built).get(path)
    assert answer.status_code == 404
    assert answer.json()["status"] == "failed"
    assert "outside" not in answer.text


def test_an_unbuilt_bundle_says_how_to_build_it(tmp_path: Path) -> None:
    answer = _client(tmp_path / "nothing-here").get("/api/ingestion/mfe/remoteEntry.js")
    assert answer.status_code == 404
    assert answer.json() == {
        "status": "failed",
        "error": "mfe_not_built",
        "message": "The micro-frontend bundle is not built: run `make mfe` "
        f"(or set {MFE_DIR_ENV} to the folder holding remoteEntry.js).",
    }


def test_the_folder_can_be_configured(monkeypatch: pytest.MonkeyPatch, built: Path) -> None:
    monkeypatch.setenv(MFE_DIR_ENV, str(built))
    assert bundle_dir() == built
    monkeypatch.delenv(MFE_DIR_ENV)
    assert bundle_dir().name == "mfe_dist"

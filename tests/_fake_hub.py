"""A small local Hugging Face Hub for tests: a threaded HTTP server on 127.0.0.1.

It speaks the endpoints huggingface_hub's real client uses to create a repo, commit files
(``preupload`` answers "regular" for every file, so the NDJSON commit carries the content
base64-inline), create a branch, describe a repo / revision, list its tree and serve files
(``resolve/{revision}/{path}``, HEAD and GET, with ``X-Repo-Commit``, ``ETag`` = git blob
SHA-1 and ``Content-Length``). Repos live in memory as immutable commits. Writes need a
Bearer token; private repos need one to be read. Errors carry the ``X-Error-Code`` headers
the client maps to ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` /
``EntryNotFoundError``.

Use::

    with FakeHub() as hub:            # random free port, stopped on exit
        os.environ["HF_ENDPOINT"] = hub.url
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


def git_blob_sha1(data: bytes) -> str:
    """What git (and the Hub's ETag for regular files) calls the file's id."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Repo:
    def __init__(self, private: bool):
        self.private = private
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}


class FakeHub:
    """In-memory Hub on a random local port (see the module docstring)."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.lock = threading.Lock()
        self._counter = itertools.count()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- state --------------------------------------------------------------------------
    def new_commit(self, repo: _Repo, files: dict[str, bytes], message: str) -> str:
        seed = f"{next(self._counter)}:{message}:{sorted(files)}".encode()
        sha = hashlib.sha1(seed).hexdigest()
        repo.commits[sha] = files
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision (for assertions)."""
        repo = self.repos[repo_id]
        return repo.commits[repo.branches.get(revision, revision)]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # --- responses ----------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None):
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None, **headers: str):
        extra = {"X-Error-Message": message, **headers}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    # --- request parsing ----------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") and len(auth) > 7 else None

    def _repo(self, repo_id: str, write: bool = False) -> _Repo | None:
        """The repo, or None after sending the error the real Hub would send."""
        repo = self.fake.repos.get(repo_id)
        if repo is None or (repo.private and self._token() is None):
            self._error(404 if self._token() else 401, "Repository not found", "RepoNotFound")
            return None
        if write and self._token() is None:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        return repo

    def _commit(self, repo: _Repo, revision: str) -> str | None:
        sha = repo.branches.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        split = urlsplit(self.path)
        with self.fake.lock:
            self.fake.requests.append((self.command, split.path))
        return [unquote(p) for p in split.path.strip("/").split("/")], parse_qs(split.query)

    # --- verbs --------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts, _ = self._route()
        with self.fake.lock:
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api_get(parts[2] + "/" + parts[3], parts[4:])
            if parts[:2] == ["api", "models"] or parts == [""]:
                return self._json(200, [])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
        self._error(404, f"no route for {self.path}")

    def do_POST(self) -> None:
        parts, query = self._route()
        body = self._body()
        with self.fake.lock:
            if parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return self._validate_yaml(json.loads(body))
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, action, rev = parts[2] + "/" + parts[3], parts[4], "/".join(parts[5:])
                if action == "preupload":
                    return self._preupload(repo_id, rev, json.loads(body))
                if action == "commit":
                    return self._commit_files(repo_id, rev, body, query)
                if action == "branch":
                    return self._create_branch(repo_id, rev)
        self._error(404, f"no route for POST {self.path}")

    # --- endpoints ----------------------------------------------------------------------
    def _create_repo(self, payload: dict) -> None:
        if self._token() is None:
            return self._error(401, "Invalid credentials in Authorization header")
        if payload.get("type", "model") != "model":
            return self._error(400, "the fake hub only hosts model repos")
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        url = f"{self.fake.url}/{repo_id}"
        if repo_id in self.fake.repos:
            return self._error(409, "You already created this model repo", url=url)
        repo = _Repo(private=payload.get("visibility") == "private" or bool(payload.get("private")))
        repo.branches["main"] = self.fake.new_commit(repo, {}, "initial commit")
        self.fake.repos[repo_id] = repo
        self._json(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        if content.startswith("---"):
            front = content.split("---", 2)[1]
            try:
                yaml.safe_load(front)
            except yaml.YAMLError as err:
                return self._json(400, {"errors": [{"message": str(err)}], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo_id: str, revision: str, payload: dict) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        sha = repo.branches.get(revision)
        current = repo.commits[sha] if sha else {}
        files = []
        for f in payload["files"]:
            old = current.get(f["path"])
            oid = git_blob_sha1(old) if old is not None else None
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})  # fmt: skip
        self._json(200, {"files": files})

    def _commit_files(self, repo_id: str, revision: str, body: bytes, query: dict) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if query.get("create_pr"):
            return self._error(400, "the fake hub does not do pull requests")
        parent = repo.branches.get(revision)
        if parent is None:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        files = dict(repo.commits[parent])
        summary = ""
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, f"unsupported encoding {value.get('encoding')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:  # lfsFile never comes: preupload says "regular" for everything
                return self._error(400, f"unsupported commit operation {key}")
        sha = self.fake.new_commit(repo, files, summary)
        repo.branches[revision] = sha
        self._json(
            200,
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{self.fake.url}/{repo_id}/commit/{sha}",
                "pullRequestUrl": None,
            },
        )

    def _create_branch(self, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if branch in repo.branches:
            return self._error(409, f"Reference {branch} already exists")
        repo.branches[branch] = repo.branches["main"]
        self._json(200, {})

    def _api_get(self, repo_id: str, rest: list[str]) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if not rest or rest[0] == "revision":
            sha = self._commit(repo, "/".join(rest[1:]) if rest else "main")
            if sha is None:
                return
            siblings = [{"rfilename": p} for p in sorted(repo.commits[sha])]
            return self._json(
                200,
                {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                 "siblings": siblings, "tags": [], "lastModified": "2025-01-01T00:00:00.000Z"},
            )  # fmt: skip
        if rest[0] == "tree" and len(rest) >= 2:
            sha = self._commit(repo, rest[1])
            if sha is None:
                return
            prefix = "/".join(rest[2:]).strip("/")
            entries, folders = [], set()
            for path, content in sorted(repo.commits[sha].items()):
                if prefix and not path.startswith(prefix + "/"):
                    continue
                entries.append(
                    {
                        "type": "file",
                        "oid": git_blob_sha1(content),
                        "size": len(content),
                        "path": path,
                    }  # fmt: skip
                )
                folders.update("/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1))
            entries += [
                {
                    "type": "directory",
                    "oid": hashlib.sha1(d.encode()).hexdigest(),
                    "size": 0,
                    "path": d,
                }  # fmt: skip
                for d in sorted(folders)
                if not prefix or d.startswith(prefix + "/")
            ]
            return self._json(200, entries)
        self._error(404, f"no route for {self.path}")

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = self._commit(repo, revision)
        if sha is None:
            return
        content = repo.commits[sha].get(path)
        if content is None:
            return self._error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": sha})
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": sha,
            "ETag": f'"{git_blob_sha1(content)}"',
            "Accept-Ranges": "bytes",
        }
        start = 0
        ranged = (self.headers.get("Range") or "").removeprefix("bytes=")
        if ranged and ranged.split("-")[0].isdigit():
            start = int(ranged.split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        body = content[start:]
        if self.command == "HEAD":
            headers["Content-Length"] = str(len(content))
        self._send(206 if ranged else 200, body, headers)

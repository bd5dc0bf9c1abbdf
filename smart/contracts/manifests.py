"""Reading manifests from YAML files, with errors that name the file, the line and the path.

``smart contract validate``, ``smart apply`` and the tests read manifests
through here. A YAML file may hold several documents; each is parsed into
:class:`~smart.contracts.models.SmartContract` or
:class:`~smart.contracts.models.Station` by its ``kind``, then a contract's
semantics are checked. Every problem becomes a :class:`ManifestError` like
``contracts/pt-1.yaml:42: spec.rules[3].limits.max: … (expected a number)``:
the YAML node's line is found by walking the parsed node tree along the
error's path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from smart.contracts import semantics
from smart.contracts.models import SmartContract, Station

Manifest = SmartContract | Station


@dataclass(frozen=True, slots=True)
class ManifestError:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestsInvalid(ValueError):
    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True, slots=True)
class Loaded:
    file: str
    manifest: Manifest


def _line(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the node at ``path``, or of the deepest node on the way."""
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            continue  # a discriminator tag in the error path, or a missing key: stay on the parent
        node = child
        best = node.start_mark.line + 1
    return best


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_KINDS: dict[str, type[SmartContract] | type[Station]] = {"SmartContract": SmartContract, "Station": Station}


def _clean_loc(loc: tuple[str | int, ...], document: Any) -> tuple[str | int, ...]:
    """Drop the union tags pydantic inserts (``rules.3.measurement.limits``) that are not in the data."""
    out: list[str | int] = []
    value = document
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
            out.append(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
            out.append(part)
        elif isinstance(value, dict) and isinstance(part, str) and part == value.get("kind"):
            continue
        elif isinstance(part, str) and not part.startswith(("function-", "tagged-union")):
            value = None
            out.append(part)
    return tuple(out)


def _expected(error: Any) -> str:
    message = str(error["msg"])
    kind = str(error["type"])
    hints = {
        "missing": "expected this field",
        "extra_forbidden": "expected no such field",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "int_parsing": "expected an integer",
        "string_pattern_mismatch": "expected text matching " + str(error.get("ctx", {}).get("pattern", "")),
        "literal_error": "expected " + str(error.get("ctx", {}).get("expected", "")),
        "union_tag_invalid": "expected kind " + str(error.get("ctx", {}).get("expected_tags", "")),
    }
    hint = hints.get(kind)
    return f"{message} ({hint})" if hint and hint not in message else message


def parse_document(
    document: Any, *, file: str, node: yaml.Node | None
) -> tuple[Manifest | None, list[ManifestError]]:
    if not isinstance(document, dict):
        return None, [ManifestError(file, _line(node, ()), "", "expected a mapping (a Kubernetes manifest)")]
    kind = document.get("kind")
    model = _KINDS.get(str(kind))
    if model is None:
        return None, [
            ManifestError(
                file,
                _line(node, ("kind",)),
                "kind",
                f"unknown kind {kind!r} (expected SmartContract or Station)",
            )
        ]
    try:
        manifest: Manifest = model.model_validate(document)
    except ValidationError as err:
        errors = []
        for error in err.errors():
            loc = _clean_loc(tuple(error["loc"]), document)
            errors.append(ManifestError(file, _line(node, loc), _dotted(loc), _expected(error)))
        return None, errors
    if isinstance(manifest, SmartContract):
        found = semantics.problems(manifest.spec)
        if found:
            return None, [
                ManifestError(file, _line(node, _path_parts(p.path)), p.path, p.message) for p in found
            ]
    return manifest, []


def _path_parts(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for segment in path.replace("]", "").split("."):
        name, *indices = segment.split("[")
        parts.append(name)
        parts.extend(int(i) for i in indices)
    return tuple(parts)


def load_text(text: str, *, file: str) -> tuple[list[Manifest], list[ManifestError]]:
    manifests: list[Manifest] = []
    errors: list[ManifestError] = []
    try:
        nodes = list(yaml.compose_all(text))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        return [], [ManifestError(file, mark.line + 1 if mark else None, "", f"not valid YAML: {err}")]
    for node, document in zip(nodes, documents, strict=True):
        if document is None:
            continue
        manifest, found = parse_document(document, file=file, node=node)
        errors.extend(found)
        if manifest is not None:
            manifests.append(manifest)
    return manifests, errors


def files(paths: list[Path]) -> Iterator[Path]:
    """YAML files named, or found (sorted) in named directories.

    Hidden entries are skipped: a Kubernetes ConfigMap mounted as a folder (the hub's contracts on
    Kubernetes) holds each file beside hidden ``..data`` and ``..<timestamp>`` copies of it, which
    would load every manifest two or three times.
    """
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield path


def load(paths: list[Path]) -> list[Loaded]:
    """Every manifest in ``paths``; raises :class:`ManifestsInvalid` with every error of every file."""
    loaded: list[Loaded] = []
    errors: list[ManifestError] = []
    for path in files(paths):
        try:
            text = path.read_text()
        except OSError as err:
            errors.append(ManifestError(str(path), None, "", f"cannot read: {err.strerror}"))
            continue
        manifests, found = load_text(text, file=str(path))
        errors.extend(found)
        loaded.extend(Loaded(str(path), manifest) for manifest in manifests)
    if errors:
        raise ManifestsInvalid(errors)
    return loaded

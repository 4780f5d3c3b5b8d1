"""JSON Schema (as OpenAI takes it for tools and `json_schema`) → Gemini's `Schema`. Pure.

Gemini's `Schema` is a subset of OpenAPI 3.0 (https://ai.google.dev/api/caching#Schema) and Google rejects
any field it does not know ("Invalid JSON payload received. Unknown name ..."). So the schema is rebuilt
from what Gemini understands:

- kept: `type` (upper-cased: STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT), `description`, `title`,
  `properties`, `required` (names that are properties), `items`, `enum` (string values only), `nullable`,
  `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `minItems`, `maxItems`, `minProperties`,
  `maxProperties`, `default`, `example`, and `format` when it is one Gemini accepts (float, double, int32,
  int64, enum, date-time);
- rewritten: `$ref` to `#/$defs/...` or `#/definitions/...` is inlined (a recursive schema raises
  `InvalidRequest`: Gemini has no references); `type: [X, "null"]` and `anyOf`/`oneOf` with a
  `{"type": "null"}` member become `nullable: true`; `oneOf` becomes `anyOf`; `allOf` members are merged
  into one schema; a string `const` becomes a one-value `enum`;
- dropped: `additionalProperties`, `patternProperties`, `unevaluatedProperties`, `propertyNames`,
  `dependentRequired`, `dependentSchemas`, `not`, `if`/`then`/`else`, `prefixItems` and list-form `items`,
  `contains`, `uniqueItems`, `multipleOf`, `exclusiveMinimum`, `exclusiveMaximum`, `examples`, other
  `format`s (email, uri, uuid, date...), non-string `enum` and `const` values, `$schema`, `$id`,
  `$comment`, `readOnly`, `writeOnly`, `deprecated`, `strict`, and any keyword not listed above.

The model is constrained only as far as the kept keywords go; the reply is passed on unvalidated.
"""

from __future__ import annotations

from typing import Any

from providers.errors import InvalidRequest

_COPIED = (
    "description",
    "title",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "default",
    "example",
)
_FORMATS = frozenset({"float", "double", "int32", "int64", "enum", "date-time"})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_MAX_DEPTH = 64


def schema_to_gemini(schema: dict[str, Any], *, param: str, ordered: bool = False) -> dict[str, Any]:
    """Translate `schema`; `param` names it in errors. With `ordered`, objects also carry `propertyOrdering`
    (the JSON key order of `properties`), which Gemini follows when it writes structured output."""
    return _Converter(schema, param, ordered).convert(schema, 0, ())


class _Converter:
    def __init__(self, root: dict[str, Any], param: str, ordered: bool) -> None:
        self.root = root
        self.param = param
        self.ordered = ordered

    def fail(self, reason: str) -> InvalidRequest:
        return InvalidRequest(f"This JSON Schema cannot be sent to Gemini: {reason}.", param=self.param)

    def resolve(self, node: dict[str, Any], refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """`node` with its `$ref` inlined (sibling keywords win), and the chain of references followed."""
        while isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in refs:
                raise self.fail(f"{ref} refers to itself (recursive schemas are not supported)")
            target = self._lookup(ref)
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            refs = (*refs, ref)
        return node, refs

    def _lookup(self, ref: str) -> dict[str, Any]:
        container, _, name = ref.removeprefix("#/").partition("/")
        defs = self.root.get(container) if ref.startswith("#/") and container in {"$defs", "definitions"} else None
        target = defs.get(name) if isinstance(defs, dict) else None
        if not isinstance(target, dict):
            raise self.fail(f"unresolvable $ref {ref!r} (only local #/$defs/... references)")
        return target

    def convert(self, node: Any, depth: int, refs: tuple[str, ...]) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise self.fail(f"nested deeper than {_MAX_DEPTH} levels")
        if not isinstance(node, dict):
            return {}
        node, refs = self.resolve(node, refs)
        node = self._merge_all_of(node, refs)
        out: dict[str, Any] = {}
        variants = node.get("anyOf") if "anyOf" in node else node.get("oneOf")
        if isinstance(variants, list):
            self._variants(variants, out, depth, refs)
        self._type(node.get("type"), out)
        for key in _COPIED:
            if key in node:
                out[key] = node[key]
        if isinstance(node.get("format"), str) and node["format"] in _FORMATS:
            out["format"] = node["format"]
        self._enum(node, out)
        if node.get("nullable") is True:
            out["nullable"] = True
        properties = node.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {name: self.convert(sub, depth + 1, refs) for name, sub in properties.items()}
            required = [name for name in node.get("required") or [] if name in properties]
            if required:
                out["required"] = required
            if self.ordered and properties:
                out["propertyOrdering"] = list(properties)
        if isinstance(node.get("items"), dict):
            out["items"] = self.convert(node["items"], depth + 1, refs)
        return out

    def _merge_all_of(self, node: dict[str, Any], refs: tuple[str, ...]) -> dict[str, Any]:
        """`node` with its `allOf` members merged in, in order; the node's own keywords win."""
        members = node.get("allOf")
        if not isinstance(members, list):
            return node
        own = {k: v for k, v in node.items() if k != "allOf"}
        parts = [self._merge_all_of(self.resolve(m, refs)[0], refs) for m in members if isinstance(m, dict)]
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in [*parts, own]:
            properties.update(part.get("properties") or {})
            required.extend(part.get("required") or [])
            merged.update(part)
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = list(dict.fromkeys(required))
        return merged

    def _variants(self, variants: list[Any], out: dict[str, Any], depth: int, refs: tuple[str, ...]) -> None:
        kept = []
        for variant in variants:
            if isinstance(variant, dict) and self.resolve(variant, refs)[0].get("type") == "null":
                out["nullable"] = True
            else:
                kept.append(self.convert(variant, depth + 1, refs))
        if len(kept) == 1:
            out.update(kept[0])
        elif kept:
            out["anyOf"] = kept

    @staticmethod
    def _type(kind: Any, out: dict[str, Any]) -> None:
        kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
        if "null" in kinds:
            out["nullable"] = True
        known = [k for k in kinds if k in _TYPES]
        if len(known) == 1:
            out["type"] = known[0].upper()
        elif len(known) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in known]

    @staticmethod
    def _enum(node: dict[str, Any], out: dict[str, Any]) -> None:
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if not isinstance(values, list):
            return
        if None in values:
            out["nullable"] = True
        strings = [v for v in values if v is not None]
        if strings and all(isinstance(v, str) for v in strings):
            out["enum"] = strings
            out.setdefault("type", "STRING")

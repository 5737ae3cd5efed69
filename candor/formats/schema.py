"""Our JSON Schema → GBNF converter, so an answer always matches the caller's schema.

The grammar accepts a subset of what the schema allows, never more: properties come in the
schema's order, optional ones may be left out, and only declared properties are produced (also
when additionalProperties is true or absent, which the schema allows but does not need). Anything
the grammar cannot enforce (pattern, uniqueItems, multipleOf, non-integer bounds, most formats…)
is refused up front with the keyword and its place in the schema, rather than ignored and then
failing after generation. Annotations (title, description, default, examples…) are ignored.
`oneOf` is generated like `anyOf`; exclusivity is left to the schema (pydantic's discriminated
unions are exclusive by their const tags) and checked after generation. Recursive `$ref`s work;
the model decides how deep it nests them. Where the schema sets no bound, `Limits` does: strings
without maxLength hold up to max_string characters, arrays without maxItems up to max_items
items (never below minLength/minItems), and free-form values ({} or true) nest max_depth deep.
"""

from __future__ import annotations

import json
import math
from typing import Any

from candor.errors import InvalidRequestError
from candor.formats import json_grammar as jg
from candor.formats.gbnf import Grammar, alt, lit
from candor.formats.limits import DEFAULT_LIMITS, Limits

ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment", "readOnly",
               "writeOnly", "deprecated", "discriminator", "$defs", "definitions"}
SUPPORTED = {"type", "enum", "const", "properties", "required", "additionalProperties", "anyOf", "oneOf",
             "allOf", "$ref", "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength",
             "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_DIGIT = "[0-9]"
FORMATS = {
    # Years 1000-2999, days limited per month (29 February left out): every date exists.
    "date": ('[12] [0-9]{3} "-" ("0" [13578] "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | "1" [02] "-" '
             '("0" [1-9] | [12] [0-9] | "3" [01]) | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | '
             '"02-" ("0" [1-9] | "1" [0-9] | "2" [0-8]))'),
    "time": ('([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
             '("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])'),
    "uuid": '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}',
}
FORMATS["date-time"] = f'{FORMATS["date"]} "T" {FORMATS["time"]}'


def pointer(path: list[str | int]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def refuse(what: str, path: list[str | int], field: str = "schema") -> InvalidRequestError:
    return InvalidRequestError(f"{what} at {pointer(path)}", field=field)


class Converter:
    """Turns one schema (with its $defs) into grammar rules."""

    def __init__(self, root: Any, grammar: Grammar, limits: Limits = DEFAULT_LIMITS, field: str = "schema"):
        self.root, self.g, self.limits, self.field = root, grammar, limits, field
        self.refs: dict[str, str] = {}
        jg.primitives(grammar, limits)

    def fail(self, what: str, path: list[str | int]) -> InvalidRequestError:
        return refuse(what, path, self.field)

    def convert(self, schema: Any, path: list[str | int]) -> str:
        """A GBNF expression (usually a rule name) for values matching `schema`."""
        if schema is True or schema == {} or (isinstance(schema, dict) and set(schema) <= ANNOTATIONS):
            return jg.free_value(self.g, 1, self.limits)
        if schema is False:
            raise self.fail("schema false matches nothing", path)
        if not isinstance(schema, dict):
            raise self.fail(f"a schema must be an object or a boolean, got {type(schema).__name__}", path)
        for key in schema:
            if key not in SUPPORTED and key not in ANNOTATIONS and not key.startswith("x-"):
                raise self.fail(f"unsupported keyword {key!r} (Candor cannot enforce it while generating)",
                                path + [key])
        combiners = [k for k in ("$ref", "anyOf", "oneOf", "allOf", "const", "enum") if k in schema]
        if combiners:
            constraints = {k for k in schema if not k.startswith("x-")} - ANNOTATIONS - {combiners[0], "type"}
            if len(combiners) > 1 or constraints:
                other = min(set(combiners[1:]) | constraints)
                raise self.fail(f"keyword {other!r} next to {combiners[0]!r} is not supported", path + [other])
            return self.combined(combiners[0], schema, path)
        types = schema.get("type", self.implied_type(schema))
        if types is None:
            return jg.free_value(self.g, 1, self.limits)
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or not types or any(t not in TYPES for t in types):
            raise self.fail(f"type must be one of {', '.join(TYPES)} or a list of them", path + ["type"])
        return alt([self.typed(t, schema, path) for t in dict.fromkeys(types)])

    @staticmethod
    def implied_type(schema: dict) -> str | None:
        if {"properties", "required", "additionalProperties"} & set(schema):
            return "object"
        if {"items", "prefixItems", "minItems", "maxItems"} & set(schema):
            return "array"
        if {"minLength", "maxLength", "format"} & set(schema):
            return "string"
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(schema):
            return "number"
        return None

    def combined(self, key: str, schema: dict, path: list[str | int]) -> str:
        value = schema[key]
        if key == "$ref":
            return self.ref(value, path + ["$ref"])
        if key == "const":
            return lit(json.dumps(value, ensure_ascii=False))
        if key == "enum":
            if not isinstance(value, list) or not value:
                raise self.fail("enum must be a non-empty list", path + ["enum"])
            return alt([lit(json.dumps(v, ensure_ascii=False)) for v in value])
        if not isinstance(value, list) or not value:
            raise self.fail(f"{key} must be a non-empty list of schemas", path + [key])
        if key == "allOf":
            if len(value) != 1:
                raise self.fail("allOf with more than one schema is not supported", path + [key])
            return self.convert(value[0], path + [key, 0])
        return alt([self.convert(sub, path + [key, i]) for i, sub in enumerate(value)])

    def ref(self, ref: Any, path: list[str | int]) -> str:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.fail(f"only local $refs (#/$defs/…) are supported, got {ref!r}", path)
        if ref in self.refs:
            return self.refs[ref]
        target: Any = self.root
        parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]] if ref != "#" else []
        for part in parts:
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise self.fail(f"$ref {ref!r} points at nothing", path)
        name = self.g.name("ref-" + (parts[-1] if parts else "root"))
        self.refs[ref] = name  # before converting, so recursive schemas refer back to it
        self.g.define(name, self.convert(target, list[str | int](parts)))
        return name

    def typed(self, kind: str, schema: dict, path: list[str | int]) -> str:
        if kind == "object":
            return self.object(schema, path)
        if kind == "array":
            return self.array(schema, path)
        if kind == "string":
            return self.string(schema, path)
        if kind in ("number", "integer"):
            return self.number(kind, schema, path)
        return "json-bool" if kind == "boolean" else "json-null"

    # -- objects -------------------------------------------------------------------------------
    def object(self, schema: dict, path: list[str | int]) -> str:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(props, dict):
            raise self.fail("properties must be an object", path + ["properties"])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail("required must be a list of property names", path + ["required"])
        names = list(props) + [r for r in required if r not in props]
        if extra is False and len(names) > len(props):
            raise self.fail(f"required property {names[len(props)]!r} is not in properties and "
                            "additionalProperties is false", path + ["required"])
        if not names:
            if extra is False:
                return f'"{{" {jg.WS} "}}"'
            if isinstance(extra, dict) and set(extra) - ANNOTATIONS:  # a map such as dict[str, int]
                value = self.convert(extra, path + ["additionalProperties"])
                kv = f'json-string ":" {jg.SP} {value}'
                return self.g.add(_hint(path, "map"), jg.mapping(kv, self.limits.max_items))
            return jg.free_object(self.g, 1, self.limits)
        pairs = []
        for name in names:
            value = self.convert(props.get(name, True), path + ["properties", name])
            pairs.append(self.g.add(_hint(path, name), f'{lit(json.dumps(name, ensure_ascii=False))} ":" '
                                                       f"{jg.SP} {value}"))
        needed = [name in required for name in names]

        def after(i: int) -> str:  # the properties from i on, once one has been written
            return " ".join(f'"," {jg.WS} {p}' if need else f'("," {jg.WS} {p})?'
                            for p, need in zip(pairs[i:], needed[i:]))

        # first(i): the properties from i on, the first one written being i or later.
        first_required = needed.index(True) if any(needed) else len(names) - 1
        rest_of: dict[int, str] = {}
        for i in range(first_required, -1, -1):
            options = [f"{pairs[i]} {after(i + 1)}".strip()]
            if not needed[i] and i + 1 in rest_of:
                options.append(rest_of[i + 1])
            rest_of[i] = self.g.add(_hint(path, f"from-{i}"), " | ".join(options))
        body = f"{rest_of[0]} {jg.WS}"
        if not any(needed):
            body = f"({body})?"
        return self.g.add(_hint(path, "object"), f'"{{" {jg.WS} {body} "}}"')

    # -- arrays --------------------------------------------------------------------------------
    def array(self, schema: dict, path: list[str | int]) -> str:
        lo, hi = self.count(schema, "minItems", path), self.bound(schema, "maxItems", path)
        if hi is not None and hi < lo:
            raise self.fail("maxItems is below minItems", path + ["maxItems"])
        if "prefixItems" in schema:
            return self.tuple(schema, lo, hi, path)
        item = self.convert(schema.get("items", True), path + ["items"])
        if hi is None:
            hi = max(lo, self.limits.max_items)
        return self.g.add(_hint(path, "array"), jg.sequence(item, lo, hi))

    def tuple(self, schema: dict, lo: int, hi: int | None, path: list[str | int]) -> str:
        prefix = schema["prefixItems"]
        if not isinstance(prefix, list) or not prefix:
            raise self.fail("prefixItems must be a non-empty list", path + ["prefixItems"])
        if schema.get("items", False) is not False:
            raise self.fail("prefixItems with an items schema is not supported (use items: false)",
                            path + ["items"])
        count = len(prefix) if hi is None else min(hi, len(prefix))
        if lo > count:
            raise self.fail("minItems is more than prefixItems allows", path + ["minItems"])
        items = [self.convert(s, path + ["prefixItems", i]) for i, s in enumerate(prefix[:count])]
        tail = ""
        for i in range(count - 1, lo - 1, -1):  # the optional tail, innermost first
            tail = f'("," {jg.WS} {items[i]} {tail})?' if i > 0 else f"({items[0]} {tail})?"
        head = " ".join(items[0:1] + [f'"," {jg.WS} {x}' for x in items[1:lo]])
        body = f"{head} {tail}".strip() if lo else tail
        return self.g.add(_hint(path, "tuple"), f'"[" {jg.WS} {body} {jg.WS} "]"' if body else f'"[" {jg.WS} "]"')

    def count(self, schema: dict, key: str, path: list[str | int]) -> int:
        """A lower bound such as minItems (0 when absent)."""
        value = self.bound(schema, key, path)
        return 0 if value is None else value

    def bound(self, schema: dict, key: str, path: list[str | int]) -> int | None:
        """An upper bound such as maxItems (None when absent)."""
        if key not in schema:
            return None
        value = schema[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{key} must be a non-negative integer", path + [key])
        return value

    # -- scalars -------------------------------------------------------------------------------
    def string(self, schema: dict, path: list[str | int]) -> str:
        lo, hi = self.count(schema, "minLength", path), self.bound(schema, "maxLength", path)
        if hi is not None and hi < lo:
            raise self.fail("maxLength is below minLength", path + ["maxLength"])
        fmt = schema.get("format")
        if fmt is None:
            return jg.string_of_length(lo, max(lo, self.limits.max_string) if hi is None else hi)
        if fmt not in FORMATS:
            raise self.fail(f"format {fmt!r} is not supported (supported: {', '.join(FORMATS)})",
                            path + ["format"])
        if "minLength" in schema or "maxLength" in schema:
            raise self.fail("minLength/maxLength next to format is not supported", path + ["format"])
        return self.g.shared(f"format-{fmt}", f'"\\"" {FORMATS[fmt]} "\\""')

    def number(self, kind: str, schema: dict, path: list[str | int]) -> str:
        bounds = {k: schema[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
                  if k in schema}
        if not bounds:
            return "json-int" if kind == "integer" else "json-number"
        for key, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self.fail(f"{key} must be a finite number", path + [key])
            if kind == "number" and value != int(value):
                raise self.fail(f"a non-integer {key} on a number is not supported", path + [key])
        lo, lo_incl = _tighter_low(bounds)
        hi, hi_incl = _tighter_high(bounds)
        if kind == "integer":
            lo_i = None if lo is None else (math.ceil(lo) if lo_incl else math.floor(lo) + 1)
            hi_i = None if hi is None else (math.floor(hi) if hi_incl else math.ceil(hi) - 1)
            expr = jg.integer_range(lo_i, hi_i)
        else:
            expr = jg.number_range(None if lo is None else int(lo), lo_incl, None if hi is None else int(hi), hi_incl)
        if expr is None:
            raise self.fail("the bounds leave no possible value", path)
        return self.g.add(_hint(path, kind), expr)


def _tighter_low(bounds: dict) -> tuple[float | None, bool]:
    options = [(bounds["minimum"], True)] if "minimum" in bounds else []
    options += [(bounds["exclusiveMinimum"], False)] if "exclusiveMinimum" in bounds else []
    return max(options, key=lambda o: (o[0], not o[1])) if options else (None, True)


def _tighter_high(bounds: dict) -> tuple[float | None, bool]:
    options = [(bounds["maximum"], True)] if "maximum" in bounds else []
    options += [(bounds["exclusiveMaximum"], False)] if "exclusiveMaximum" in bounds else []
    return min(options, key=lambda o: (o[0], o[1])) if options else (None, True)


def _hint(path: list[str | int], leaf: str) -> str:
    names = [str(p) for p in path if p not in ("properties", "items", "$defs", "definitions")]
    return "-".join((names[-2:] if names else []) + [leaf])[-40:]


def check_schema(schema: Any, field: str = "schema", limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a schema that is not valid JSON Schema, or that uses what we cannot enforce."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, (dict, bool)):
        raise InvalidRequestError(f"must be a JSON object, got {type(schema).__name__}", field=field)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = pointer(list(exc.path))
        raise InvalidRequestError(f"not a valid JSON Schema: {exc.message} (at {where})", field=field) from None
    schema_grammar(schema, limits, field=field)


def schema_grammar(schema: Any, limits: Limits = DEFAULT_LIMITS, field: str = "schema") -> str:
    g = Grammar()
    root = Converter(schema, g, limits, field).convert(schema, [])
    return g.render(root)

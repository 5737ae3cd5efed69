"""Formatted output: the grammars (checked by llama.cpp's own grammar engine), the parsers, the
schema converter's refusals, real constrained generations and `candor complete --format`."""

from __future__ import annotations

import ctypes
import json
import math
import re

import pytest
import yaml
from test_cli import run

from candor import formats
from candor.chat import Message
from candor.chat.render import render
from candor.engine.base import GenerateRequest, SamplingParams, collect
from candor.errors import InvalidRequestError
from candor.formats import json_grammar
from candor.formats.gbnf import Grammar

# What pydantic v2 emits for a Book model (nested model, str enum, bounded list, Optional field).
BOOK = {
    "$defs": {
        "Author": {"properties": {
            "name": {"maxLength": 40, "title": "Name", "type": "string"},
            "born": {"anyOf": [{"maximum": 2025, "minimum": 1000, "type": "integer"}, {"type": "null"}],
                     "default": None, "title": "Born"}},
            "required": ["name"], "title": "Author", "type": "object"},
        "Genre": {"enum": ["fiction", "science", "history"], "title": "Genre", "type": "string"}},
    "properties": {
        "title": {"maxLength": 60, "title": "Title", "type": "string"},
        "author": {"$ref": "#/$defs/Author"},
        "year": {"maximum": 2025, "minimum": 0, "title": "Year", "type": "integer"},
        "genre": {"$ref": "#/$defs/Genre"},
        "tags": {"items": {"maxLength": 20, "type": "string"}, "maxItems": 3, "title": "Tags", "type": "array"}},
    "required": ["title", "author", "year", "genre"], "title": "Book", "type": "object"}


# -- llama.cpp as the judge of what a grammar accepts --------------------------------------------

def accepts(engine, grammar: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler lets `text` be generated and then end (EOS).

    Uses the engine's vocabulary directly: a sampler that is never used to generate, so the
    grammar's meaning is tested without a model run (and a grammar llama.cpp cannot parse fails
    the assertion instead of crashing the process)."""
    import llama_cpp

    llm = engine._llm
    vocab = llm._model.vocab
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp could not parse the grammar"
    try:
        tokens = llm.tokenize(text.encode(), add_bos=False, special=False)
        assert llm.detokenize(tokens).decode() == text
        eos = llama_cpp.llama_vocab_eos(vocab)
        for i, token in enumerate(tokens + [eos]):
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if math.isinf(data[0].logit):
                return False
            if i < len(tokens):  # EOS is only checked: accepting it would end the grammar
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


def test_every_grammar_compiles_in_llama_cpp(engine):
    grammars = [formats.grammar_for(f) for f in formats.FORMATS]
    grammars += [formats.grammar_for("json", BOOK), formats.grammar_for("xml", tags=["a", "b"], root="a")]
    grammars += [formats.grammar_for("yaml", max_depth=1), formats.grammar_for("markdown", max_blocks=1)]
    for grammar in grammars:
        assert accepts(engine, grammar, "") is False  # parses, and the empty answer is never complete


def test_json_schema_grammar(engine):
    g = formats.grammar_for("json", BOOK)
    good = '{"title": "Emma", "author": {"name": "Jane Austen"}, "year": 1815, "genre": "fiction"}'
    assert accepts(engine, g, good)
    assert accepts(engine, g, '{\n  "title": "E", "author": {"name": "J", "born": 1775}, "year": 0,\n'
                              '  "genre": "history", "tags": ["a", "b"]\n}')
    assert accepts(engine, g, good.replace('"born"', "")) and accepts(engine, g, good.replace(": ", ":"))
    for bad in [
        good.replace('"fiction"', '"poetry"'),  # not in the enum
        good.replace("1815", "2026"), good.replace("1815", "-5"), good.replace("1815", "18.5"),  # bounds, type
        good.replace('"year": 1815, ', ""),  # required property missing
        good.replace('"Emma"', '"' + "x" * 61 + '"'),  # maxLength
        good[:-1] + ', "tags": ["a", "b", "c", "d"]}',  # maxItems
        good[:-1] + ', "isbn": "1"}',  # undeclared property
        '{"author": {"name": "J"}, "title": "Emma", "year": 1815, "genre": "fiction"}',  # order
        good.replace('"Jane Austen"}', '"J", "born": 999}'),  # $ref'd object's bounds
        " " + good, good.replace("{", "{  ", 1), good.replace(", ", ",\n\n"),  # unbounded whitespace
    ]:
        assert not accepts(engine, g, bad), bad


def test_pydantic_generated_schema(engine):
    """A schema straight from pydantic: formats, discriminated union, map, tuple, recursion, bounds."""
    pydantic = pytest.importorskip("pydantic")
    import datetime
    import uuid
    from typing import Annotated, Literal

    class Cat(pydantic.BaseModel):
        kind: Literal["cat"]
        lives: int = pydantic.Field(ge=0, le=9)

    class Dog(pydantic.BaseModel):
        kind: Literal["dog"]
        good: bool = True

    class Owner(pydantic.BaseModel):
        id: uuid.UUID
        born: datetime.date
        seen: datetime.datetime
        pets: list[Annotated[Cat | Dog, pydantic.Field(discriminator="kind")]]
        scores: dict[str, int]
        point: tuple[int, str]
        ratio: float = pydantic.Field(gt=0, lt=1)
        parent: Owner | None = None

    schema = Owner.model_json_schema()
    g = formats.grammar_for("json", schema)
    good = {"id": "0b6f0f7e-7d1c-4a4e-9a55-1f2f3c4d5e6f", "born": "2000-01-31", "seen": "2020-05-01T10:00:00Z",
            "pets": [{"kind": "cat", "lives": 3}, {"kind": "dog"}], "scores": {"a": 1}, "point": [1, "x"],
            "ratio": 0.5}
    for doc in (good, {**good, "parent": {**good, "parent": None}}):
        assert accepts(engine, g, json.dumps(doc))
        Owner.model_validate(formats.validate("json", json.dumps(doc), schema))
    for bad in [{**good, "ratio": 1}, {**good, "ratio": 0}, {**good, "born": "2001-02-30"}, {**good, "point": [1]},
                {**good, "pets": [{"kind": "cat", "lives": 10}]}, {**good, "pets": [{"kind": "cow"}]}]:
        assert not accepts(engine, g, json.dumps(bad)), bad
    class Tagged(pydantic.BaseModel):
        tags: set[str]
    with pytest.raises(InvalidRequestError, match="'uniqueItems'.*#/properties/tags/uniqueItems"):
        formats.grammar_for("json", Tagged.model_json_schema())


def test_free_json_object_grammar(engine):
    g = formats.grammar_for("json", max_depth=2, max_items=3, max_string=5)
    assert accepts(engine, g, '{"a": [1, -2.5e3, true], "b": {"c": "\\u00e9\\n"}, "d": null}')
    assert accepts(engine, g, "{}")
    for bad in ['[1]', '{"a": NaN}', '{"a": [[[1]]]}', '{"a": 1, "b": 2, "c": 3, "d": 4}', '{"abcdef": 1}',
                '{"a": "\\ud800"}', '{"a": 01}', '{"a": 1e999}']:
        assert not accepts(engine, g, bad), bad


def test_xml_grammar_matches_close_tags(engine):
    g = formats.grammar_for("xml", tags=["book", "title", "books"], root="books")
    good = '<?xml version="1.0" encoding="UTF-8"?>\n<books>\n  <book><title>A &amp; B</title></book>\n  <book/>\n</books>'
    assert accepts(engine, g, good)
    formats.validate("xml", good, tags=["book", "title", "books"], root="books")
    for bad in ["<books><book></books></book>", "<books>a & b</books>", "<books>a < b</books>",
                '<books id="1"></books>', "<books><author>x</author></books>", "<book></book>",
                "<books></books>\n<books></books>", "<books><title>one\n\ntwo</title></books>"]:
        assert not accepts(engine, g, bad), bad


def test_yaml_grammar_keeps_scalars_strings(engine):
    g = formats.grammar_for("yaml")
    good = 'country: Norway NO\nanswer: "no"\nnote: nothing\nok: true\nitems:\n  - apple\n  - 3\n  - name: pear\n    size: 1.5'
    assert accepts(engine, g, good)
    assert yaml.safe_load(good) == {"country": "Norway NO", "answer": "no", "note": "nothing", "ok": True,
                                    "items": ["apple", 3, {"name": "pear", "size": 1.5}]}
    assert accepts(engine, g, "- a\n- - b\n  - c")
    for bad in ["answer: no", "answer: Yes", "switch: off", "yes: 1", "time: 10:30", "a: b # c", "n: 012",
                "key:  two spaces", "a: 1\n\nb: 2", "a:\n    - too deep an indent", "Human: hi", "just a string",
                "answer: NULL"]:
        assert not accepts(engine, g, bad), bad


def test_markdown_grammar_structure(engine):
    g = formats.grammar_for("markdown")
    good = ("# Fizz\n\nA tool that `fizzes` things.\n\n- one\n  - nested\n- two\n\n1. first\n2. second\n\n"
            "```python\nprint('hi')\n\n# a comment\n```\n\n| a | b |\n| --- | :---: |\n| 1 | 2 |\n\n> quoted")
    assert accepts(engine, g, good)
    formats.validate("markdown", good)
    for bad in ["```python\nprint('hi')", "Some <b>bold</b> text", "| a | b |\n| --- | --- |\n| 1 |",
                "Intro\n\nHuman: next turn", "```\ncode ``` inside\n```", "    indented code", "Title\n---",
                "- item\n\n\n- item", "1. x\n\n# ok\n\n***"]:
        assert not accepts(engine, g, bad), bad


# -- converter refusals and options ---------------------------------------------------------------

@pytest.mark.parametrize("schema, keyword, where", [
    ({"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}, "pattern",
     "#/properties/code/pattern"),
    ({"type": "string", "format": "email"}, "email", "#/format"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems", "#/uniqueItems"),
    ({"$defs": {"N": {"type": "integer", "multipleOf": 5}}, "$ref": "#/$defs/N"}, "multipleOf",
     "#/$defs/N/multipleOf"),
    ({"type": "number", "maximum": 2.5}, "maximum", "#/maximum"),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "allOf", "#/allOf"),
    ({"$ref": "https://example.com/s.json"}, "$ref", "#/$ref"),
    ({"not": {"type": "string"}}, "not", "#/not"),
])
def test_unsupported_schema_keywords_are_named_with_their_path(schema, keyword, where):
    with pytest.raises(InvalidRequestError) as info:
        formats.grammar_for("json", schema)
    assert info.value.field == "schema" and info.value.status_code == 400
    assert keyword in info.value.message and where in info.value.message


def test_invalid_schemas_and_options_are_refused():
    with pytest.raises(InvalidRequestError, match=r"schema: not a valid JSON Schema: 'strin' is not valid"):
        formats.check_schema({"type": "object", "properties": {"a": {"type": "strin"}}})
    with pytest.raises(InvalidRequestError, match="schema: must be a JSON object"):
        formats.check_schema([1])
    with pytest.raises(InvalidRequestError, match=r"\$ref '#/\$defs/Missing' points at nothing"):
        formats.grammar_for("json", {"$ref": "#/$defs/Missing"})
    cases = [(("json",), {"bogus": 1}, "bogus"), (("yaml",), {"max_depth": 0}, "max_depth"),
             (("xml",), {"tags": ["1bad"]}, "tags"), (("markdown", {"type": "object"}), {}, "schema"),
             (("toml",), {}, "format"), (("markdown",), {"max_string": 5}, "max_string")]
    for args, options, field in cases:
        with pytest.raises(InvalidRequestError) as info:
            formats.grammar_for(*args, **options)
        assert info.value.field == field


def test_grammar_builder_refuses_undefined_rules():
    g = Grammar()
    g.add("x", "missing-rule")
    with pytest.raises(ValueError, match="undefined rule 'missing-rule'"):
        g.render("x")


def _as_regex(expr: str) -> re.Pattern:
    """The GBNF subset the number rules use (literals, classes, groups, |, {m,n}) as a regex."""
    expr = re.sub(r'"((?:\\.|[^"\\])*)"', lambda m: re.escape(m.group(1)), expr)
    return re.compile("^(?:" + expr.replace(" ", "") + ")$")


def test_integer_and_number_ranges_are_exact():
    for lo, hi in [(0, 0), (3, 117), (None, 5), (-20, -3), (-7, None), (1, 1000), (-1000, 250)]:
        rx = _as_regex(json_grammar.integer_range(lo, hi))
        for n in range(-1100, 1100):
            assert bool(rx.match(str(n))) == ((lo is None or n >= lo) and (hi is None or n <= hi)), (lo, hi, n)
    for lo, lo_in, hi, hi_in in [(0, False, None, False), (0, True, 1, True), (-3, False, 2, False), (-5, True, -2, True)]:
        rx = _as_regex(json_grammar.number_range(lo, lo_in, hi, hi_in))
        for tenths in range(-80, 80):
            text = f"{tenths / 10:.1f}"
            v = float(text)
            inside = (lo is None or v > lo or (lo_in and v == lo)) and (hi is None or v < hi or (hi_in and v == hi))
            if text != "-0.0":
                assert bool(rx.match(text)) == inside, (lo, hi, text)


# -- parsers and errors ----------------------------------------------------------------------------

def test_validate_reports_what_failed():
    good = {"title": "Emma", "author": {"name": "Jane"}, "year": 1815, "genre": "fiction"}
    assert formats.validate("json", json.dumps(good), BOOK) == good
    failures = [
        ("json", json.dumps({**good, "genre": "poetry"}), BOOK, "at #/genre: 'poetry' is not one of"),
        ("json", '{"a": NaN}', None, "not valid JSON"), ("json", "[1]", None, "not an object"),
        ("xml", "<a><b></a>", None, "not well-formed XML"), ("xml", '<a b="1"/>', None, "has attributes"),
        ("yaml", "just text", None, "not a mapping or a list"),
        ("yaml", "yes: 1", None, "key True is a bool"), ("markdown", "```\ncode", None, "never closed"),
        ("markdown", "Hi <div>x</div>", None, "raw HTML"), ("markdown", "| a | b |\n|---|---|\n| 1 |", None, "cells"),
    ]
    for fmt, text, schema, message in failures:
        with pytest.raises(formats.FormatError, match=re.escape(message)) as info:
            formats.validate(fmt, text, schema)
        assert info.value.status_code == 500 and info.value.error_type == "api_error"


def test_incomplete_output_is_a_distinct_client_error():
    with pytest.raises(formats.IncompleteOutputError) as info:
        formats.check_output("json", '{"a": ', "max_tokens", output_tokens=3)
    assert info.value.status_code == 400 and info.value.field == "max_tokens"
    assert "cut off by max_tokens after 3 tokens" in info.value.message and "raise max_tokens" in info.value.message
    with pytest.raises(formats.IncompleteOutputError, match="stop sequence"):
        formats.check_finish("yaml", "stop_sequence")
    assert formats.check_output("json", '{"a": 1}', "end_turn") == {"a": 1}


# -- the real model, constrained, at temperature 0 -------------------------------------------------

async def generate(engine, prompt: str, grammar: str, max_tokens: int) -> tuple[str, str]:
    rendered = render([Message("user", prompt)])
    text, finish = await collect(engine.generate(GenerateRequest(
        prompt=rendered.text, max_tokens=max_tokens, sampling=SamplingParams(temperature=0.0),
        end_sequences=rendered.end_sequences, grammar=grammar)))
    return text.lstrip(), finish.stop_reason


async def test_model_json_matches_pydantic_style_schema(engine):
    text, stop = await generate(engine, "Describe the novel Pride and Prejudice as JSON.",
                                formats.grammar_for("json", BOOK), 160)
    book = formats.check_output("json", text, stop, BOOK)
    assert set(BOOK["required"]) <= set(book) <= set(BOOK["properties"])
    assert list(book) == [k for k in BOOK["properties"] if k in book]  # schema order
    assert book["genre"] in ("fiction", "science", "history") and 0 <= book["year"] <= 2025
    assert isinstance(book["author"]["name"], str) and len(book["title"]) <= 60


async def test_model_xml_parses(engine):
    tags = ["book", "title", "author", "year"]
    grammar = formats.grammar_for("xml", tags=tags, root="book", max_depth=2, max_items=4, max_string=40)
    text, stop = await generate(engine, "Describe a book in XML with its title, author and year.", grammar, 200)
    root = formats.check_output("xml", text, stop, tags=tags, root="book")
    assert root.tag == "book" and all(child.tag in tags and len(child) == 0 for child in root)
    assert text.rstrip().endswith("</book>") or text.rstrip().endswith("<book/>")


async def test_model_yaml_parses(engine):
    grammar = formats.grammar_for("yaml", max_depth=1, max_items=3, max_string=32)
    text, stop = await generate(engine, "Describe a cat in YAML with name, age and color.", grammar, 120)
    value = formats.check_output("yaml", text, stop)
    assert value == yaml.safe_load(text) and isinstance(value, (dict, list)) and 1 <= len(value) <= 3
    if isinstance(value, dict):
        assert all(isinstance(k, str) and not isinstance(v, (dict, list)) for k, v in value.items())


async def test_model_markdown_code_fence_is_closed(engine):
    prompt = "Show the example again:\n\n```python\nprint('hello')\n```"
    text, stop = await generate(engine, prompt, formats.grammar_for("markdown", max_blocks=2, max_items=4), 120)
    tokens = formats.check_output("markdown", text, stop)
    fences = [t for t in tokens if t.type == "fence"]
    assert fences and text.count("```") == 2 * len(fences)
    assert text.rstrip().endswith("```") or fences[-1].map[1] < text.count("\n") + 1


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_complete_format_json_schema(candor_bin, tmp_path):
    schema = tmp_path / "book.json"
    schema.write_text(json.dumps(BOOK))
    result = run(candor_bin, "complete", "Describe the novel Emma as JSON.", "--format", "json", "--schema",
                 str(schema), "--temperature", "0", "--max-tokens", "160", "--json", check=True)
    out = json.loads(result.stdout)
    assert out["format"] == "json" and out["stop_reason"] == "end_turn"
    assert out["parsed"] == json.loads(out["text"])
    assert set(BOOK["required"]) <= set(out["parsed"]) and out["parsed"]["genre"] in ("fiction", "science", "history")


def test_cli_format_errors_exit_2(candor_bin, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "string", "pattern": "^a"}')
    result = run(candor_bin, "complete", "hi", "--format", "json", "--schema", str(bad))
    assert result.returncode == 2 and str(bad) in result.stderr and "'pattern'" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    result = run(candor_bin, "complete", "hi", "--format", "json", "--schema", str(broken))
    assert result.returncode == 2 and f"{broken} is not valid JSON" in result.stderr
    result = run(candor_bin, "complete", "hi", "--format", "json", "--schema", str(tmp_path / "absent.json"))
    assert result.returncode == 2 and "absent.json" in result.stderr
    result = run(candor_bin, "complete", "hi", "--format", "yaml", "--schema", str(bad))
    assert result.returncode == 2 and "--schema needs --format json" in result.stderr
    result = run(candor_bin, "complete", "Write a long essay.", "--format", "markdown", "--temperature", "0",
                 "--max-tokens", "4")
    assert result.returncode == 2 and "cut off by max_tokens" in result.stderr and result.stdout == ""


async def test_engine_refuses_a_grammar_llama_cpp_cannot_parse(engine):
    # llama.cpp would crash the process at the first sampled token; the engine refuses it first
    for bad in ["root ::= missing-rule", "root ::= (", "value ::= \"a\""]:
        with pytest.raises(InvalidRequestError, match="grammar"):
            await collect(engine.generate(GenerateRequest(prompt="hi", max_tokens=2, grammar=bad)))
    text, _ = await collect(engine.generate(GenerateRequest(prompt="hi", max_tokens=2,
                                                            sampling=SamplingParams(temperature=0.0))))
    assert text  # the engine still works


def test_allow_end_lets_the_turn_end_after_a_complete_value(engine):
    end = "\n\nHuman:"
    for fmt, value in [("json", '{"a": 1}'), ("yaml", "a: b"), ("markdown", "Hello.")]:
        grammar = formats.allow_end(formats.grammar_for(fmt), end)
        assert accepts(engine, grammar, value) and accepts(engine, grammar, value + end)
    grammar = formats.allow_end(formats.grammar_for("json"), end)
    assert not accepts(engine, grammar, '{"a": 1' + end)  # only after a complete value


async def test_sample_then_check_matches_filtering_the_whole_vocabulary(engine, model_path):
    """The engine's fast constrained sampling picks exactly what llama-cpp-python's own grammar
    sampling picks (greedy), including the tokens the grammar refuses."""
    import llama_cpp

    grammar = formats.grammar_for("yaml")
    rendered = render([Message("user", "List three fruits and their colours in YAML.")])
    tokens = engine.tokenize(rendered.text)
    reference = llama_cpp.Llama(model_path=str(model_path), n_ctx=512, verbose=False)
    try:
        expected = []
        for token in reference.generate(tokens, temp=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0,
                                        grammar=llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)):
            if len(expected) == 40:
                break
            expected.append(token)
    finally:
        reference.close()
    text, finish = await collect(engine.generate(GenerateRequest(
        prompt=rendered.text, max_tokens=40, sampling=SamplingParams(temperature=0.0), grammar=grammar)))
    assert finish.usage.output_tokens == 40 and engine.last_full_grammar_passes > 0  # the slow path ran too
    assert text == engine.detokenize(expected)
